"""The indexer as it was before its speed-up (careweave commit af4049d), frozen: the reference
that tests/search/test_index_reference.py holds the indexer to, row for row.

This is a copy of that commit's careweave/search/indexer.py, paths.py and extract.py, of
values.date_range and of IndexRows.finish, with only its imports changed. Do not edit it to follow
the indexer; change it only with a deliberate change to what the index rows are (and say so).
"""

from __future__ import annotations

import calendar
import html
import itertools
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

from careweave.fhir.elements import ElementModel, choice_key
from careweave.fhir.fhirpath import Expression, FhirPathEngine, FhirPathError, Node
from careweave.fhir.model import parse_reference
from careweave.search.index import FIRST, LAST, IndexRows
from careweave.search.registry import SearchParam, SearchParamRegistry, split_expression
from careweave.search.values import NEG_INF, POS_INF, normalise, soundex

__all__ = ["Indexer"]


# -- values.date_range --------------------------------------------------------------------------
_DATE_RE = re.compile(
    r"(?P<y>\d{4})(?:-(?P<m>\d{2})(?:-(?P<d>\d{2})"
    r"(?:T(?P<H>\d{2}):(?P<M>\d{2})(?::(?P<S>\d{2})(?:\.(?P<f>\d+))?)?"
    r"(?P<tz>Z|[+-]\d{2}:\d{2})?)?)?)?\Z"
)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _ms(dt: datetime) -> int:
    delta = dt - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1000 + delta.microseconds // 1000


def date_range(value: str) -> tuple[int, int] | None:
    """The ``[lo, hi)`` milliseconds a FHIR date, dateTime or instant covers; None if not one."""
    m = _DATE_RE.match(value.strip())
    if m is None:
        return None
    try:
        return _range(m)
    except (ValueError, OverflowError):
        return None


def _range(m: re.Match[str]) -> tuple[int, int]:
    year = int(m["y"])
    tz = UTC
    if m["tz"] and m["tz"] != "Z":
        sign = 1 if m["tz"][0] == "+" else -1
        hours, minutes = int(m["tz"][1:3]), int(m["tz"][4:6])
        tz = timezone(sign * timedelta(hours=hours, minutes=minutes))
    if m["m"] is None:
        start = datetime(year, 1, 1, tzinfo=tz)
        end = datetime(year + 1, 1, 1, tzinfo=tz) if year < 9999 else None
    elif m["d"] is None:
        month = int(m["m"])
        start = datetime(year, month, 1, tzinfo=tz)
        days = calendar.monthrange(year, month)[1]
        end = start + timedelta(days=days)
    elif m["H"] is None:
        start = datetime(year, int(m["m"]), int(m["d"]), tzinfo=tz)
        end = start + timedelta(days=1)
    else:
        second = int(m["S"]) if m["S"] is not None else 0
        start = datetime(year, int(m["m"]), int(m["d"]), int(m["H"]), int(m["M"]), min(second, 59), tzinfo=tz)
        if m["f"] is not None:
            digits = m["f"]
            millis = int((digits + "000")[:3])
            start += timedelta(milliseconds=millis)
            step = (
                timedelta(milliseconds=1)
                if len(digits) >= 3
                else timedelta(milliseconds=10 ** (3 - len(digits)))
            )
        elif m["S"] is not None:
            step = timedelta(seconds=1)
        else:
            step = timedelta(minutes=1)
        end = start + step
    lo = _ms(start)
    return lo, (_ms(end) if end is not None else POS_INF)


# -- IndexRows.finish -----------------------------------------------------------------------
def finish(rows: IndexRows) -> IndexRows:
    """IndexRows.finish as it was."""
    rows.tokens = _flag(rows.tokens, lambda r: r[2] or "", lambda r: r[2] or "", 3)
    rows.strings = _flag(rows.strings, lambda r: r[1], lambda r: r[1], 3)
    rows.references = _flag(rows.references, lambda r: r[2] or r[3] or "", lambda r: r[2] or r[3] or "", 4)
    rows.dates = _flag(rows.dates, lambda r: r[1], lambda r: r[2], 3)
    rows.numbers = _flag(rows.numbers, lambda r: r[1], lambda r: r[2], 3)
    rows.quantities = _flag(rows.quantities, lambda r: r[3], lambda r: r[4], 5)
    rows.uris = _flag(rows.uris, lambda r: r[1], lambda r: r[1], 2)
    rows.token_texts = list(dict.fromkeys(rows.token_texts))
    rows.composites = list(dict.fromkeys(rows.composites))
    return rows


def _flag(rows: list[Any], low: Callable[[Any], Any], high: Callable[[Any], Any], at: int) -> list[Any]:
    """Deduplicate rows and set FIRST/LAST (the element at ``at``) on the rows with the smallest and
    largest sort key of each parameter. Producers append rows with 0 there."""
    if not rows:
        return rows
    if len(rows) == 1:  # the smallest and the largest of its parameter
        r = rows[0]
        return [(*r[:at], FIRST | LAST, *r[at + 1 :])]
    unique = list(dict.fromkeys(rows))  # producers append flags 0, so equal rows are equal tuples
    first: dict[str, int] = {}
    last: dict[str, int] = {}
    for i, r in enumerate(unique):
        param = r[0]
        j = first.get(param)
        if j is None:
            first[param] = last[param] = i
            continue
        if low(r) < low(unique[j]):
            first[param] = i
        if high(r) > high(unique[last[param]]):
            last[param] = i
    flags = [0] * len(unique)
    for i in first.values():
        flags[i] |= FIRST
    for i in last.values():
        flags[i] |= LAST
    return [(*r[:at], flags[i], *r[at + 1 :]) if flags[i] else r for i, r in enumerate(unique)]


# -- paths -------------------------------------------------------------------------------------
_IDENT = r"[A-Za-z][A-Za-z0-9]*"
_PART = re.compile(
    rf"\(?\s*(?P<path>{_IDENT}(?:\.{_IDENT})+)"
    rf"(?P<filters>(?:\.(?:where\((?:resolve\(\) is {_IDENT}|{_IDENT}\s*=\s*'[^']*')\)"
    rf"|as\({_IDENT}\)|ofType\({_IDENT}\)))*)"
    rf"(?:\s+as\s+(?P<infix>{_IDENT}))?\s*\)?\Z"
)
_FILTER = re.compile(
    rf"\.(?:where\((?:resolve\(\) is (?P<resolve>{_IDENT})|(?P<field>{_IDENT})\s*=\s*'(?P<literal>[^']*)')\)"
    rf"|(?:as|ofType)\((?P<cast>{_IDENT})\))"
)

_CAST_THEN_PATH = re.compile(
    rf"\(\s*(?P<inner>{_IDENT}(?:\.{_IDENT})+\s+as\s+(?P<cast>{_IDENT}))\s*\)(?P<names>(?:\.{_IDENT})+)\Z"
)

Item = tuple[Any, str, str]  # a JSON value, its FHIR type code, its element path (Patient.gender)
Cursor = tuple[Any, str, str, str]  # value, type, context of its children, element path
Step = Callable[[list[Cursor]], list[Cursor]]


class PathAccessor:
    """A compiled simple expression: :meth:`values` gives (value, type) pairs for a resource."""

    def __init__(self, parts: list[list[Step]]) -> None:
        # every part but a bare type name starts with a child step, which takes the start value
        # directly rather than as a one-cursor list
        self._parts = [
            (steps[0], steps[1:]) if steps and isinstance(steps[0], _Child) else (None, steps)
            for steps in parts
        ]

    def values(self, resource: dict[str, Any], resource_type: str, context: str = "") -> list[Item]:
        """(value, type, element path) of ``resource`` (or of a value whose children are those of
        ``context``, for a relative accessor)."""
        return [(v, t, path) for v, t, _, path in self.cursors(resource, resource_type, context)]

    def cursors(self, resource: Any, resource_type: str, context: str = "") -> list[Cursor]:
        """Like :meth:`values`, with the context of each value's own children."""
        start = context or resource_type
        out: list[Cursor] | None = None
        for first, steps in self._parts:
            current = (
                first.first(resource, start)
                if first is not None
                else [(resource, resource_type, start, start)]
            )
            for step in steps:
                if not current:
                    break
                current = step(current)
            if out is None:
                out = current
            else:
                out.extend(current)
        return out if out is not None else []


def compile_path(model: ElementModel, type_: str, expression: str) -> PathAccessor | None:
    """The accessor for ``expression`` on ``type_``, or None when it is outside the simple subset.
    A part that is the bare type name (``Observation`` in ``Observation | Observation.component``)
    yields the resource itself."""
    parts: list[list[Step]] = []
    for text in split_expression(expression):
        text = text.strip()
        if text == type_:
            parts.append([])
            continue
        steps = _compile_part(model, type_, text, relative=False)
        if steps is None:
            return None
        parts.append(steps)
    return PathAccessor(parts)


def compile_relative(model: ElementModel, context: str, expression: str) -> PathAccessor | None:
    """An accessor for ``expression`` evaluated on a value whose children are those of
    ``context`` (a composite's component, e.g. ``value.as(Quantity)`` on Observation.component)."""
    parts: list[list[Step]] = []
    for text in split_expression(expression):
        steps = _compile_part(model, context, f"{context.split('.')[0]}.{text.strip()}", relative=True)
        if steps is None:
            return None
        parts.append(steps)
    return PathAccessor(parts)


def _compile_part(model: ElementModel, type_: str, text: str, relative: bool) -> list[Step] | None:
    tail = _CAST_THEN_PATH.match(text)
    if tail is not None:  # (Observation.value as CodeableConcept).text
        steps = _compile_part(model, type_, tail["inner"], relative)
        if steps is None:
            return None
        return _children(model, model.base_of_constraint(tail["cast"]), tail["names"].split(".")[1:], steps)
    m = _PART.match(text)
    if m is None or text.count("(") != text.count(")"):
        return None
    names = m["path"].split(".")
    if names[0] != type_.split(".")[0]:
        return None
    found = _children(model, type_, names[1:], [])
    if found is None:
        return None
    steps = found
    for f in _FILTER.finditer(m["filters"] or ""):
        if f["resolve"]:
            steps.append(_resolves_to(f["resolve"]))
        elif f["field"]:
            steps.append(_field_equals(f["field"], f["literal"]))
        else:
            _add_cast(model, steps, f["cast"])
    if m["infix"]:
        _add_cast(model, steps, m["infix"])
    return steps


def _add_cast(model: ElementModel, steps: list[Step], wanted: str) -> None:
    """A cast right after a child step keeps only the keys of the types it lets through
    (``Observation.value as Quantity`` reads ``valueQuantity`` alone); else it filters values."""
    last = steps[-1] if steps else None
    if isinstance(last, _Child):
        steps[-1] = last.only(lambda code: model.is_subtype(code, wanted))
    else:
        steps.append(_cast(model, wanted))


def _children(model: ElementModel, context: str, names: list[str], steps: list[Step]) -> list[Step] | None:
    """``steps`` followed by the child steps along ``names`` from ``context``; None when one of
    them is not an element there."""
    for name in names:
        element = model.children(context).get(name)
        if element is None:
            return None
        keys = (
            tuple((choice_key(name, t.code), t.code) for t in element.types)
            if element.choice
            else ((name, element.types[0].code if element.types else "BackboneElement"),)
        )
        if element.choice:
            next_context = "" if len(keys) > 1 else model.child_context(element, keys[0][1])
        else:
            next_context = model.child_context(element, keys[0][1])
        steps.append(_child(model, element.content, keys, next_context, element.path))
        context = next_context
    return steps


def _child(
    model: ElementModel,
    content: str | None,
    keys: tuple[tuple[str, str], ...],
    context: str,
    element_path: str,
) -> Step:
    fixed = tuple((key, code, content or (context or model.base_of_constraint(code))) for key, code in keys)
    return _Child(fixed, "." + element_path.rsplit(".", 1)[-1].removesuffix("[x]"))


class _Child:
    """The step to a child element. Everything but a value's element path (its parent's context
    plus the name) is fixed when it is compiled; the paths are remembered per parent context."""

    __slots__ = ("_fixed", "_name", "_paths")

    def __init__(self, fixed: tuple[tuple[str, str, str], ...], name: str) -> None:
        self._fixed = fixed  # (JSON key, its type code, the context of its children)
        self._name = name  # ".given"
        self._paths: dict[str, str] = {}

    def only(self, keep: Callable[[str], bool]) -> _Child:
        """This step for the types ``keep`` accepts alone."""
        return _Child(tuple(f for f in self._fixed if keep(f[1])), self._name)

    def __call__(self, items: list[Cursor]) -> list[Cursor]:
        out: list[Cursor] = []
        for value, _, parent_context, _ in items:
            out.extend(self.first(value, parent_context))
        return out

    def first(self, value: Any, parent_context: str) -> list[Cursor]:
        """The cursors of one value's children."""
        if value.__class__ is not dict:
            return []
        out: list[Cursor] = []
        for key, type_code, child_context in self._fixed:
            found = value.get(key)
            if found is None:
                continue
            path = self._paths.get(parent_context)
            if path is None:
                path = self._paths[parent_context] = parent_context + self._name
            if found.__class__ is list:
                out.extend([(v, type_code, child_context, path) for v in found if v is not None])
            else:
                out.append((found, type_code, child_context, path))
        return out


def _resolves_to(target: str) -> Step:
    def step(items: list[Cursor]) -> list[Cursor]:
        out = []
        for item in items:
            value = item[0]
            ref = value.get("reference") if value.__class__ is dict else None
            if isinstance(ref, str):
                parsed = parse_reference(ref)
                if parsed is not None and parsed.type == target:
                    out.append(item)
        return out

    return step


def _field_equals(field: str, literal: str) -> Step:
    def step(items: list[Cursor]) -> list[Cursor]:
        return [item for item in items if item[0].__class__ is dict and item[0].get(field) == literal]

    return step


def _cast(model: ElementModel, wanted: str) -> Step:
    subtype: dict[str, bool] = {}  # type code -> is it ``wanted`` or derived from it

    def step(items: list[Cursor]) -> list[Cursor]:
        out = []
        for item in items:
            found = subtype.get(item[1])
            if found is None:
                found = subtype[item[1]] = model.is_subtype(item[1], wanted)
            if found:
                out.append(item)
        return out

    return step


# -- extract -----------------------------------------------------------------------------------
_STRING_PARTS = {
    "HumanName": ("family", "given", "prefix", "suffix", "text"),
    "Address": ("line", "city", "district", "state", "postalCode", "country", "text"),
}
_QUANTITY_TYPES = frozenset(
    {"Quantity", "Age", "Duration", "Distance", "Count", "SimpleQuantity", "MoneyQuantity"}
)
_NUMBER_TYPES = frozenset({"integer", "decimal", "positiveInt", "unsignedInt", "integer64"})
_DATE_TYPES = frozenset({"date", "dateTime", "instant"})
_STRINGISH = frozenset(
    {"string", "markdown", "code", "id", "uri", "url", "canonical", "oid", "uuid", "xhtml"}
)
_MAX_STRING = 512
MAX_INDEX_STRING = _MAX_STRING  # index strings are cut to this; search values are cut the same way


class Context:
    """What extraction needs beyond the value: the code system implied by a code's binding."""

    def __init__(self, code_systems: Mapping[str, str] | None = None) -> None:
        self.code_systems = code_systems or {}  # element path -> system of its required binding

    def system_for_code(self, element_path: str | None) -> str | None:
        return self.code_systems.get(element_path or "")


def _strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, list):
        return [v for v in value if isinstance(v, str)]
    return []


# -- string ----------------------------------------------------------------------------------
def string_rows(rows: IndexRows, key: str, value: Any, type_: str, ctx: Context) -> None:
    if isinstance(value, str):
        texts = [value]
    elif isinstance(value, dict):
        parts = _STRING_PARTS.get(type_)
        texts = []
        if parts is None:
            texts = [v for v in value.values() if isinstance(v, str)]
        else:
            for part in parts:
                texts.extend(_strings(value.get(part)))
    else:
        return
    phonetic = key.endswith(".phonetic")
    for text in texts:
        if phonetic:  # one Soundex code per word of the name
            for word in text.split():
                code = soundex(word)
                if code:
                    rows.strings.append((key, code, word[:_MAX_STRING], 0))
            continue
        norm = normalise(text)
        if norm:
            rows.strings.append((key, norm[:_MAX_STRING], text[:_MAX_STRING], 0))


# -- token -----------------------------------------------------------------------------------
def _coding(rows: IndexRows, key: str, coding: Any) -> None:
    if not isinstance(coding, dict):
        return
    code = coding.get("code")
    system = coding.get("system")
    if isinstance(code, str) or isinstance(system, str):
        rows.tokens.append(
            (key, system if isinstance(system, str) else None, code if isinstance(code, str) else None, 0)
        )
    display = coding.get("display")
    if isinstance(display, str) and display.strip():
        rows.token_texts.append((key, normalise(display)))


def token_rows(
    rows: IndexRows, key: str, value: Any, type_: str, ctx: Context, element_path: str | None = None
) -> None:
    if type_ == "Coding":
        _coding(rows, key, value)
    elif type_ == "CodeableConcept" and isinstance(value, dict):
        for coding in value.get("coding", ()):
            _coding(rows, key, coding)
        text = value.get("text")
        if isinstance(text, str) and text.strip():
            rows.token_texts.append((key, normalise(text)))
    elif type_ == "Identifier" and isinstance(value, dict):
        _identifier(rows, key, value)
    elif type_ == "ContactPoint" and isinstance(value, dict):
        if isinstance(value.get("value"), str):
            rows.tokens.append((key, None, value["value"], 0))
    elif isinstance(value, bool):
        rows.tokens.append((key, None, "true" if value else "false", 0))
    elif type_ == "code" and isinstance(value, str):
        rows.tokens.append((key, ctx.system_for_code(element_path), value, 0))
    elif isinstance(value, str):
        rows.tokens.append((key, None, value, 0))
    elif isinstance(value, (int, Decimal, float)) and not isinstance(value, bool):
        rows.tokens.append((key, None, str(value), 0))


def _identifier(rows: IndexRows, key: str, ident: dict[str, Any]) -> None:
    system, val = ident.get("system"), ident.get("value")
    if isinstance(val, str) or isinstance(system, str):
        rows.tokens.append(
            (key, system if isinstance(system, str) else None, val if isinstance(val, str) else None, 0)
        )
    kind = ident.get("type")
    if isinstance(kind, dict) and isinstance(val, str):
        for coding in kind.get("coding", ()):
            if isinstance(coding, dict) and isinstance(coding.get("code"), str):
                of_type = f"{coding.get('system') or ''}|{coding['code']}"
                rows.tokens.append((f"{key}:of-type", of_type, val, 0))
        text = kind.get("text")
        if isinstance(text, str) and text.strip():
            rows.token_texts.append((key, normalise(text)))


# -- reference -------------------------------------------------------------------------------
def reference_rows(rows: IndexRows, key: str, value: Any, type_: str, ctx: Context) -> None:
    if isinstance(value, dict) and isinstance(value.get("resourceType"), str):
        # an embedded resource (Bundle.entry[0].resource for Bundle?composition=): its own type/id
        if isinstance(value.get("id"), str):
            rows.references.append((key, value["resourceType"], value["id"], None, 0))
        return
    if type_ == "Reference" and isinstance(value, dict):
        ref = value.get("reference")
        if isinstance(ref, str):
            _reference_string(rows, key, ref)
        ident = value.get("identifier")
        if isinstance(ident, dict):
            system, val = ident.get("system"), ident.get("value")
            if isinstance(val, str):
                rows.tokens.append((f"{key}:identifier", system if isinstance(system, str) else None, val, 0))
    elif isinstance(value, str):
        if type_ == "canonical" or "|" in value:
            base, _, version = value.partition("|")
            rows.references.append((key, None, None, base, 0))
            if version:
                rows.references.append((key, None, None, value, 0))
        else:
            _reference_string(rows, key, value)


def _reference_string(rows: IndexRows, key: str, ref: str) -> None:
    if ref.startswith("#"):
        return  # contained: not searchable outside its container
    parsed = parse_reference(ref)
    if parsed is None:
        rows.references.append((key, None, None, ref, 0))
    elif parsed.base is None:
        rows.references.append((key, parsed.type, parsed.id, None, 0))
    else:
        rows.references.append((key, parsed.type, parsed.id, ref.split("/_history/")[0], 0))


# -- date ------------------------------------------------------------------------------------
def date_rows(rows: IndexRows, key: str, value: Any, type_: str, ctx: Context) -> None:
    if isinstance(value, str):
        found = date_range(value)
        if found is not None:
            rows.dates.append((key, found[0], found[1], 0))
    elif type_ == "Period" and isinstance(value, dict):
        start = date_range(value["start"]) if isinstance(value.get("start"), str) else None
        end = date_range(value["end"]) if isinstance(value.get("end"), str) else None
        if start is not None or end is not None:
            rows.dates.append((key, start[0] if start else NEG_INF, end[1] if end else POS_INF, 0))
    elif type_ == "Timing" and isinstance(value, dict):
        for event in _strings(value.get("event")):
            date_rows(rows, key, event, "dateTime", ctx)
        repeat = value.get("repeat")
        if isinstance(repeat, dict) and isinstance(repeat.get("boundsPeriod"), dict):
            date_rows(rows, key, repeat["boundsPeriod"], "Period", ctx)


# -- number and quantity ---------------------------------------------------------------------
def _num(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float, Decimal)):
        return float(value)
    return None


def number_rows(rows: IndexRows, key: str, value: Any, type_: str, ctx: Context) -> None:
    if type_ in _NUMBER_TYPES or not isinstance(value, dict):
        n = _num(value)
        if n is not None:
            rows.numbers.append((key, n, n, 0))
    elif type_ == "Range":
        low = _num(value.get("low", {}).get("value")) if isinstance(value.get("low"), dict) else None
        high = _num(value.get("high", {}).get("value")) if isinstance(value.get("high"), dict) else None
        if low is not None or high is not None:
            rows.numbers.append(
                (key, low if low is not None else -1e308, high if high is not None else 1e308, 0)
            )
    elif type_ in _QUANTITY_TYPES:
        n = _num(value.get("value"))
        if n is not None:
            rows.numbers.append((key, n, n, 0))


def quantity_rows(rows: IndexRows, key: str, value: Any, type_: str, ctx: Context) -> None:
    if not isinstance(value, dict):
        n = _num(value)
        if n is not None:
            rows.quantities.append((key, None, None, n, n, 0))
        return
    if type_ == "Money":
        n = _num(value.get("value"))
        if n is not None:
            currency = value.get("currency")
            rows.quantities.append(
                (key, "urn:iso:std:iso:4217", currency if isinstance(currency, str) else None, n, n, 0)
            )
        return
    if type_ == "Range":
        low, high = value.get("low"), value.get("high")
        unit_of = low if isinstance(low, dict) else high if isinstance(high, dict) else {}
        lo = _num(low.get("value")) if isinstance(low, dict) else None
        hi = _num(high.get("value")) if isinstance(high, dict) else None
        if lo is None and hi is None:
            return
        lo_v, hi_v = lo if lo is not None else -1e308, hi if hi is not None else 1e308
        _quantity_units(rows, key, unit_of, lo_v, hi_v)
        return
    n = _num(value.get("value"))
    if n is not None:
        _quantity_units(rows, key, value, n, n)


def _quantity_units(rows: IndexRows, key: str, q: dict[str, Any], lo: float, hi: float) -> None:
    system = q.get("system") if isinstance(q.get("system"), str) else None
    code = q.get("code") if isinstance(q.get("code"), str) else None
    unit = q.get("unit") if isinstance(q.get("unit"), str) else None
    rows.quantities.append((key, system, code, lo, hi, 0))
    if unit is not None and unit != code:
        rows.quantities.append((key, None, unit, lo, hi, 0))


# -- uri -------------------------------------------------------------------------------------
def uri_rows(rows: IndexRows, key: str, value: Any, type_: str, ctx: Context) -> None:
    if isinstance(value, str):
        rows.uris.append((key, value, 0))


def special_rows(rows: IndexRows, key: str, value: Any, type_: str, ctx: Context) -> None:
    """``near`` on Location.position: latitude and longitude."""
    if isinstance(value, dict):
        lat, lon = _num(value.get("latitude")), _num(value.get("longitude"))
        if lat is not None and lon is not None:
            rows.geo.append((key, lat, lon))


EXTRACTORS: dict[str, Callable[..., None]] = {
    "string": string_rows,
    "token": token_rows,
    "reference": reference_rows,
    "date": date_rows,
    "number": number_rows,
    "quantity": quantity_rows,
    "uri": uri_rows,
    "special": special_rows,
}


# -- indexer -----------------------------------------------------------------------------------
_NOT_INDEXED = frozenset({"_id", "_lastUpdated", "_text", "_content", "_query", "_list", "_has"})
_TAG = re.compile(r"<[^>]+>")
_MAX_CONTENT = 20_000
_PATH_START = re.compile(r"\(*\s*([A-Z][A-Za-z]+)\.([a-z][A-Za-z0-9]*)")
_RELATIVE_START = re.compile(r"\(*\s*(%resource\.)?([a-z][A-Za-z0-9]*)(?:\.|\s|\)|\Z)")


@dataclass(frozen=True, slots=True)
class _Entry:
    """One parameter of one resource type, compiled for indexing."""

    param: SearchParam
    key: str
    type: str
    expression: Expression
    components: list[Expression]
    reads: frozenset[str] | None  # the top-level elements it reads; None: cannot be told
    needs: tuple[frozenset[str], ...] | None  # composites: a row needs all of one of these present
    accessor: PathAccessor | None  # a direct accessor when the expression is a simple path
    extract: Callable[..., None] | None
    kinds: tuple[str, ...]  # composites: each component's parameter type


Plan = list[_Entry]


def _top_elements(type_: str, expression: str) -> frozenset[str] | None:
    """The top-level element names an expression starts from (``Observation.code | (Observation.value
    as Quantity)`` -> {code, value}); None when some part does not start from one."""
    names = set()
    for part in split_expression(expression):
        m = _PATH_START.match(part)
        if m is None or m.group(1) != type_:
            return None
        names.add(m.group(2))
    return frozenset(names)


def _composite_needs(
    model: ElementModel, type_: str, expression: str, components: Sequence[str]
) -> tuple[frozenset[str], ...] | None:
    """Per part of a composite's expression, the top-level elements that must all be present for
    that focus to give a row (a component without values makes none); None when that cannot be
    told. ``Observation | Observation.component`` with components ``code`` and
    ``value.as(Quantity)`` -> ({code, value}, {component})."""
    top = model.children(type_)
    own: list[str] = []  # the element each component reads on a bare-type focus
    from_root: list[str] = []  # the elements %resource components read, whatever the focus
    for component in components:
        names: set[tuple[bool, str]] = set()
        for part in split_expression(component):
            m = _RELATIVE_START.match(part)
            if m is None:
                return None
            names.add((m.group(1) is not None, m.group(2)))
        if len(names) != 1:
            return None  # a component of several paths: any one of them would do
        rooted, name = names.pop()
        if rooted:
            if name not in top:
                return None
            from_root.append(name)
        own.append(name)
    out = []
    for part in split_expression(expression):
        part = part.strip()
        if part == type_:
            if any(name not in top for name in own):
                return None
            out.append(frozenset(own))
            continue
        elements = _top_elements(type_, part)
        if elements is None or len(elements) != 1 or compile_path(model, type_, part) is None:
            return None  # only a simple path surely finds nothing when its element is absent
        out.append(elements | frozenset(from_root))
    return tuple(out)


class Indexer:
    """Extracts index rows; built once (it compiles every parameter's expression lazily)."""

    def __init__(
        self,
        registry: SearchParamRegistry,
        engine: FhirPathEngine,
        code_systems: Mapping[str, str] | None = None,
        *,
        fast: bool = True,
    ) -> None:
        self._registry = registry
        # False: every expression through the FHIRPath engine, and no composite skipped for an
        # absent element: the general path the fast one is tested against
        self._fast = fast
        self._engine = engine
        self._ctx = Context(code_systems)
        self._plans: dict[str, Plan] = {}
        self._relatives: dict[tuple[str, str], tuple[PathAccessor, bool] | None] = {}
        self._names: dict[str, dict[str, str]] = {}  # type -> JSON key -> its element's name
        self.failures: dict[str, str] = {}

    def plan(self, type_: str) -> Plan:
        found = self._plans.get(type_)
        if found is None:
            entries = (self._entry(type_, param) for param in self._registry.for_type(type_))
            found = self._plans[type_] = [entry for entry in entries if entry is not None]
        return found

    def _entry(self, type_: str, param: SearchParam) -> _Entry | None:
        if param.code in _NOT_INDEXED or not param.expression:
            return None
        expression = param.expression
        if param.base in ("Resource", "DomainResource"):
            expression = expression.replace(f"{param.base}.", f"{type_}.", 1)
        try:
            compiled = self._engine.compile(expression)
            components = [self._engine.compile(c.expression) for c in param.components]
        except FhirPathError as exc:
            self.failures[f"{type_}.{param.code}"] = str(exc)
            return None
        model = self._engine.model
        composite = param.type == "composite"
        fast = self._fast
        return _Entry(
            param=param,
            key=param.key,
            type=param.type,
            expression=compiled,
            components=components,
            reads=_top_elements(type_, expression),
            needs=(
                _composite_needs(model, type_, expression, [c.expression for c in param.components])
                if composite and fast
                else None
            ),
            accessor=compile_path(model, type_, expression) if fast else None,
            extract=EXTRACTORS.get(param.type),
            kinds=self._component_kinds(param) if composite else (),
        )

    def _present(self, type_: str, resource: dict[str, Any]) -> set[str]:
        """The element names present at the top of a resource (``valueQuantity`` and
        ``_valueString`` count as ``value``)."""
        names = self._names.get(type_)
        if names is None:
            names = self._names[type_] = {}
        present = set()
        model = self._engine.model
        for key in resource:
            name = names.get(key)
            if name is None:
                found = model.resolve_key(type_, key[1:] if key.startswith("_") else key)
                if found is None:
                    continue  # not an element: not remembered, so unknown keys cannot grow the map
                name = names[key] = found[0].name
            present.add(name)
        return present

    def index(self, resource: dict[str, Any]) -> IndexRows:
        rows = IndexRows()
        type_ = resource.get("resourceType", "")
        root: Node | None = None
        present = self._present(type_, resource)
        seen: dict[Any, list[Node]] = {}
        ctx = self._ctx
        for entry in self.plan(type_):
            reads = entry.reads
            if reads is not None and reads.isdisjoint(present):
                continue
            needs = entry.needs
            if needs is not None and not any(need <= present for need in needs):
                continue
            accessor = entry.accessor
            kind = entry.type
            try:
                if kind == "composite":
                    if accessor is not None and self._composite_fast(rows, entry, accessor, resource, type_):
                        continue
                elif accessor is not None:
                    extract = entry.extract
                    if extract is None:
                        continue
                    if kind == "token":
                        for value, value_type, _, path in accessor.cursors(resource, type_):
                            token_rows(rows, entry.key, value, value_type, ctx, path)
                    else:
                        for value, value_type, _, _ in accessor.cursors(resource, type_):
                            extract(rows, entry.key, value, value_type, ctx)
                    continue
                if root is None:
                    root = self._engine.node(resource)
                expression = entry.expression
                nodes = seen.get(expression.text)
                if nodes is None:
                    nodes = seen[expression.text] = expression.evaluate_nodes(root)
                if kind == "composite":
                    self._composite(rows, entry, nodes, root, seen)
                    continue
                self._extract_nodes(rows, entry, nodes)
            except (FhirPathError, TypeError, ValueError, AttributeError) as exc:
                self.failures[f"{type_}.{entry.param.code}"] = f"{type(exc).__name__}: {exc}"
        rows.narrative = _narrative(resource)
        rows.content = _content(resource)
        return finish(rows)

    def _extract_nodes(self, rows: IndexRows, entry: _Entry, nodes: list[Node]) -> None:
        extract = entry.extract
        if extract is None:
            return
        for node in nodes:
            if entry.type == "token":
                token_rows(rows, entry.key, node.value, node.type, self._ctx, _element_path(node))
            else:
                extract(rows, entry.key, node.value, node.type, self._ctx)

    # -- composites ---------------------------------------------------------------------------
    def _relative(self, context: str, expression: str, type_: str) -> tuple[PathAccessor, bool] | None:
        """A component's accessor: relative to its focus, or from the resource for %resource."""
        key = (context, expression)
        if key not in self._relatives:
            if expression.startswith("%resource."):
                found = compile_path(self._engine.model, type_, f"{type_}.{expression[10:]}")
                self._relatives[key] = None if found is None else (found, True)
            else:
                found = compile_relative(self._engine.model, context, expression)
                self._relatives[key] = None if found is None else (found, False)
        return self._relatives[key]

    def _composite_fast(
        self,
        rows: IndexRows,
        entry: _Entry,
        focus: PathAccessor,
        resource: dict[str, Any],
        type_: str,
    ) -> bool:
        """Composite rows through accessors; False (nothing written) when a component needs the
        engine."""
        kinds = entry.kinds
        components = entry.param.components
        # the value components first: they are the ones most often absent (an Observation has one
        # value[x]), and a component without items means no rows for this focus at all
        order = [*range(1, len(kinds)), 0]
        combos: list[tuple[Any, ...]] = []
        for value, value_type, context, _ in focus.cursors(resource, type_):
            values: list[list[Component]] = [[] for _ in kinds]
            for i in order:
                found = self._relative(context, components[i].expression, type_)
                if found is None:
                    return False
                accessor, from_root = found
                items = (
                    accessor.values(resource, type_)
                    if from_root
                    else accessor.values(value, value_type, context)
                )
                values[i] = _component_items(kinds[i], items, self._ctx)
                if not values[i]:
                    break
            else:
                combos.extend(itertools.product(*values))
        rows.composites.extend(_composite_row(entry.key, combo) for combo in combos)
        return True

    def _component_kinds(self, param: SearchParam) -> tuple[str, ...]:
        kinds = []
        for component in param.components:
            definition = self._registry.by_url(component.definition)
            kinds.append(definition.type if definition is not None else "")
        return tuple(kinds)

    def _composite(
        self,
        rows: IndexRows,
        entry: _Entry,
        focuses: list[Node],
        root: Node,
        seen: dict[Any, list[Node]],
    ) -> None:
        for focus in focuses:
            values = []
            for kind, expr in zip(entry.kinds, entry.components, strict=True):
                key = (id(focus.value), expr.text)
                nodes = seen.get(key)
                if nodes is None:
                    nodes = seen[key] = expr.evaluate_nodes(root, context=focus)
                values.append(
                    _component_items(kind, [(n.value, n.type, _element_path(n)) for n in nodes], self._ctx)
                )
            for combo in itertools.product(*values):
                rows.composites.append(_composite_row(entry.key, combo))


def _element_path(node: Node) -> str | None:
    parent = node.parent
    if parent is None:
        return None
    return f"{parent.ctx}.{node.name}" if parent.ctx else None


Component = tuple[str | None, str | None, float | None, float | None]  # s, v, lo, hi


def _component_items(
    kind: str, items: Sequence[tuple[Any, str, str | None]], ctx: Context
) -> list[Component]:
    """The (system, value, low, high) of each item of a composite's component of type ``kind``."""
    if not items:
        return []
    if kind == "uri":
        return [(None, value, None, None) for value, _, _ in items if isinstance(value, str)]
    rows = IndexRows()  # one for all items: each appends its rows after the previous item's
    if kind == "token":
        for value, value_type, path in items:
            token_rows(rows, "", value, value_type, ctx, path)
        return [(s, c, None, None) for _, s, c, _ in rows.tokens]
    if kind not in _COMPONENT_ROWS:
        return []
    extract = EXTRACTORS[kind]
    for value, value_type, _ in items:
        extract(rows, "", value, value_type, ctx)
    return _COMPONENT_ROWS[kind](rows)


_COMPONENT_ROWS: dict[str, Callable[[IndexRows], list[Component]]] = {
    "quantity": lambda rows: [(s, c, lo, hi) for _, s, c, lo, hi, _ in rows.quantities],
    "number": lambda rows: [(None, None, lo, hi) for _, lo, hi, _ in rows.numbers],
    "date": lambda rows: [(None, None, float(lo), float(hi)) for _, lo, hi, _ in rows.dates],
    "string": lambda rows: [(None, norm, None, None) for _, norm, _, _ in rows.strings],
    "reference": lambda rows: [(t, i or u, None, None) for _, t, i, u, _ in rows.references],
}


def _composite_row(key: str, combo: tuple[Component, ...]) -> tuple[Any, ...]:
    first = combo[0]
    second = combo[1] if len(combo) > 1 else (None, None, None, None)
    third = combo[2] if len(combo) > 2 else (None, None, None, None)
    return (key, first[0], first[1], second[0], second[1], second[2], second[3], third[2], third[3])


def _narrative(resource: dict[str, Any]) -> str:
    text = resource.get("text")
    if isinstance(text, dict) and isinstance(text.get("div"), str):
        return normalise(html.unescape(_TAG.sub(" ", text["div"])))[:_MAX_CONTENT]
    return ""


_NOT_CONTENT = frozenset({"div", "resourceType", "id", "meta", "url", "system", "reference"})


def _content(resource: dict[str, Any]) -> str:
    """Every string value of the resource (not ids, urls, systems or references), for _content."""
    out: list[str] = []
    stack: list[Any] = [resource]
    pop, push, keep = stack.pop, stack.append, out.append
    while stack and len(out) < 2000:
        value = pop()
        if value.__class__ is dict:
            for k, v in value.items():
                if k not in _NOT_CONTENT:
                    push(v)
        elif value.__class__ is list:
            stack.extend(value)
        elif value.__class__ is str:
            keep(value)
    out.reverse()
    return normalise(" ".join(out))[:_MAX_CONTENT]
