"""One search value of a typed parameter -> a predicate (search.html sections 3.1.1.x).

Rules:
1. token: ``[system]|[code]``, ``code``, ``|code``, ``system|``; ``:text`` searches displays and text
   (a word starting with the value); ``:of-type`` takes ``system|code|value``; ``:in`` a value set URL.
2. string: starts-with on the folded form by default; ``:exact`` compares the text as given;
   ``:contains`` anywhere.
3. reference: ``Type/id``, a bare ``id`` (any target type), an absolute URL (made relative when it
   is on this server's base), ``url|version`` for canonicals; ``:Type``; ``:identifier`` as a token.
4. number, date, quantity: a prefix and a value at its precision; quantity ``number|system|code``
   or ``number||code`` (unit or code).
5. uri: exact, ``:below`` (starts with), ``:above`` (is a prefix of the value).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from careweave.errors import error
from careweave.fhir.model import parse_reference
from careweave.search.plan import (
    CompositeMatch,
    DateMatch,
    Near,
    NumberMatch,
    Predicate,
    QuantityMatch,
    RefMatch,
    StringMatch,
    TokenIn,
    TokenMatch,
    TokenText,
    UriMatch,
)
from careweave.search.registry import SearchParam
from careweave.search.values import (
    date_range,
    normalise,
    number_range,
    soundex,
    split_escaped,
    split_prefix,
    unescape,
)

if TYPE_CHECKING:
    from careweave.search.params import SearchContext

__all__ = ["typed_predicate"]

_KM = {"km": 1.0, "m": 0.001, "mi": 1.609344, "[mi_i]": 1.609344}


def typed_predicate(
    param: SearchParam, modifier: str, value: str, ctx: SearchContext, target: str | None = None
) -> Predicate:
    kind = param.type
    if kind == "token":
        return _token(param, modifier, value, ctx)
    if kind == "string":
        return _string(param, modifier, value)
    if kind == "reference":
        return _reference(param, modifier, value, ctx, target)
    if kind == "date":
        return _date(param.key, value)
    if kind == "number":
        prefix, lo, hi, v = _number(param.code, value)
        return NumberMatch(param.key, prefix, v, lo, hi)
    if kind == "quantity":
        return _quantity(param.key, param.code, value)
    if kind == "uri":
        return UriMatch(
            param.key, unescape(value), {"below": "below", "above": "above"}.get(modifier, "exact")
        )
    if kind == "composite":
        return _composite(param, value, ctx)
    if kind == "special" and param.code == "near":
        return _near(param.key, value)
    raise error("CW-5001", f"{param.code} ({kind}) cannot be searched")


def _split_token(value: str) -> tuple[str | None, str | None]:
    pieces = split_escaped(value, "|")
    if len(pieces) == 1:
        return None, unescape(pieces[0]) or None
    system, code = unescape(pieces[0]), unescape("|".join(pieces[1:]))
    return system, code or None


def _token(param: SearchParam, modifier: str, value: str, ctx: SearchContext) -> Predicate:
    if modifier == "text":
        text = normalise(unescape(value))
        if not text:
            raise error("CW-5002", f"{param.code}:text needs some text")
        return TokenText(param.key, text)
    if modifier == "of-type":
        pieces = [unescape(p) for p in split_escaped(value, "|")]
        if len(pieces) != 3 or not pieces[1] or not pieces[2]:
            raise error("CW-5002", f"{param.code}:of-type takes system|code|value")
        return TokenMatch(f"{param.key}:of-type", f"{pieces[0]}|{pieces[1]}", pieces[2])
    if modifier == "in":
        codes = ctx.expand(unescape(value)) if ctx.expand is not None else None
        if codes is None:
            raise error("CW-5002", f"the value set {value!r} is not known to this server")
        return TokenIn(param.key, tuple(codes))
    system, code = _split_token(value)
    if system is None and code is None:
        raise error("CW-5002", f"{param.code} needs a code")
    return TokenMatch(param.key, system, code)


def _string(param: SearchParam, modifier: str, value: str) -> Predicate:
    raw = unescape(value)
    if param.code == "phonetic" and not modifier:
        codes = [soundex(word) for word in raw.split()]
        codes = [c for c in codes if c]
        if not codes:
            raise error("CW-5002", "phonetic needs a name with letters")
        return StringMatch(param.key, codes[0], "phonetic")
    if modifier == "exact":
        return StringMatch(param.key, raw, "exact")
    norm = normalise(raw)
    if not norm:
        raise error("CW-5002", f"{param.code} needs a non-empty value")
    return StringMatch(param.key, norm, "contains" if modifier == "contains" else "starts")


def _reference(
    param: SearchParam, modifier: str, value: str, ctx: SearchContext, target: str | None
) -> Predicate:
    raw = unescape(value)
    if modifier == "identifier":
        system, code = _split_token(value)
        if code is None:
            raise error("CW-5002", f"{param.code}:identifier needs a value")
        return TokenMatch(f"{param.key}:identifier", system, code)
    if not raw:
        raise error("CW-5002", f"{param.code} needs a reference")
    base = ctx.base_url.rstrip("/")
    if base and raw.startswith(base + "/"):
        raw = raw[len(base) + 1 :]
    if "|" in raw or (":" in raw and parse_reference(raw) is None):
        return RefMatch(param.key, None, None, raw)  # canonical (url|version) or a URN/URL
    parsed = parse_reference(raw)
    if parsed is not None:
        if target is not None and parsed.type != target:
            raise error("CW-5002", f"{param.code}:{target} cannot match a {parsed.type}")
        if parsed.base is not None:
            return RefMatch(param.key, None, None, raw.split("/_history/")[0])
        return RefMatch(param.key, parsed.type, parsed.id)
    if "/" in raw:
        raise error("CW-5002", f"{raw!r} is not a reference")
    return RefMatch(param.key, target, raw)


def _date(key: str, value: str) -> Predicate:
    prefix, rest = split_prefix(value)
    found = date_range(rest)
    if found is None:
        raise error("CW-5002", f"{value!r} is not a date (YYYY[-MM[-DD[Thh:mm[:ss][zone]]]])")
    return DateMatch(key, prefix, found[0], found[1])


def _number(code: str, value: str) -> tuple[str, float, float, float]:
    prefix, rest = split_prefix(value)
    found = number_range(rest)
    if found is None:
        raise error("CW-5002", f"{code}: {value!r} is not a number")
    v, lo, hi = found
    return prefix, float(lo), float(hi), float(v)


def _quantity(key: str, code: str, value: str) -> Predicate:
    pieces = [unescape(p) for p in split_escaped(value, "|")]
    prefix, lo, hi, v = _number(code, pieces[0])
    system = pieces[1] or None if len(pieces) > 1 else None
    unit = pieces[2] or None if len(pieces) > 2 else None
    if len(pieces) == 2 and pieces[1]:
        unit, system = pieces[1], None
    return QuantityMatch(key, prefix, v, lo, hi, system, unit)


def _composite(param: SearchParam, value: str, ctx: SearchContext) -> Predicate:
    values = split_escaped(value, "$")
    if len(values) != len(param.components):
        raise error(
            "CW-5002",
            f"{param.code} takes {len(param.components)} values separated by $",
        )
    parts: list[Any] = []
    for component, component_value in zip(param.components, values, strict=True):
        definition = ctx.registry.by_url(component.definition)
        if definition is None:
            raise error("CW-5001", f"{param.code}: unknown component {component.definition}")
        proxy = SearchParam(
            code=param.code,
            base=param.base,
            type=definition.type,
            expression=None,
            url=param.url,
        )
        parts.append(typed_predicate(proxy, "", component_value, ctx))
    return CompositeMatch(param.key, tuple(parts))


def _near(key: str, value: str) -> Predicate:
    pieces = value.split("|")
    try:
        lat, lon = float(pieces[0]), float(pieces[1])
        distance = float(pieces[2]) if len(pieces) > 2 and pieces[2] else 1.0
    except (ValueError, IndexError):
        raise error("CW-5002", "near takes latitude|longitude|distance|units") from None
    units = pieces[3] if len(pieces) > 3 and pieces[3] else "km"
    if units not in _KM:
        raise error("CW-5002", f"near: unknown distance unit {units!r} (km, m, mi)")
    return Near(key, lat, lon, distance * _KM[units])
