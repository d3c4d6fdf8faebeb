"""Search parameters (query string items) -> a QueryPlan (search.html).

Rules:
1. Repeating a parameter ANDs its occurrences; commas inside one value OR its alternatives;
   ``\\,``, ``\\|``, ``\\$`` and ``\\\\`` escape.
2. Unknown parameters, and known ones with a modifier we do not support, are collected in
   ``ignored`` (lenient handling: the caller reports them) unless ``strict`` is set, in which case
   they raise CW-5001. A malformed value always raises CW-5002.
3. Result parameters (``_sort``, ``_count``, ``_include`` ...) are parsed by :mod:`results`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from careweave.errors import error
from careweave.search.plan import (
    And,
    Chain,
    Has,
    IdIn,
    LastUpdated,
    ListMember,
    Missing,
    Not,
    Or,
    Predicate,
    QueryPlan,
    TextSearch,
    TypeIn,
)
from careweave.search.registry import SearchParam, SearchParamRegistry
from careweave.search.results import RESULT_PARAMS, ResultOptions, parse_results
from careweave.search.typed import typed_predicate
from careweave.search.values import date_range, split_escaped, split_prefix, unescape

__all__ = ["ParsedSearch", "SearchContext", "is_supported", "parse_search"]

_UNSUPPORTED = frozenset({"_query", "_filter", "_contained", "_containedType"})
_MODIFIER_SUPPORT = {
    "token": frozenset({"", "not", "text", "in", "not-in", "of-type", "missing"}),
    "string": frozenset({"", "exact", "contains", "missing"}),
    "reference": frozenset({"", "identifier", "missing"}),
    "date": frozenset({"", "missing"}),
    "number": frozenset({"", "missing"}),
    "quantity": frozenset({"", "missing"}),
    "uri": frozenset({"", "below", "above", "missing"}),
    "composite": frozenset({"", "missing"}),
    "special": frozenset({""}),
}


@dataclass(frozen=True, slots=True)
class SearchContext:
    """What parsing needs besides the parameters themselves."""

    registry: SearchParamRegistry
    resource_types: frozenset[str]
    base_url: str = ""
    expand: Callable[[str], list[tuple[str | None, str]] | None] | None = None


@dataclass(frozen=True, slots=True)
class ParsedSearch:
    plan: QueryPlan
    ignored: tuple[str, ...]
    used: tuple[tuple[str, str], ...]
    results: ResultOptions


class _Unsupported(Exception):
    """A parameter (or modifier) we do not support: ignored or refused per handling."""


def parse_search(
    types: Sequence[str],
    items: Sequence[tuple[str, str]],
    ctx: SearchContext,
    *,
    count: int,
    max_count: int,
    strict: bool = False,
) -> ParsedSearch:
    result_items = [(k, v) for k, v in items if k.split(":", 1)[0] in RESULT_PARAMS]
    results = parse_results(types, result_items, ctx.registry, count=count, max_count=max_count)
    all_types = tuple(types)
    parts: list[Predicate] = []
    ignored: list[str] = []
    used: list[tuple[str, str]] = [(k, v) for k, v in result_items if k != "_cursor"]
    for name, value in items:
        if name.split(":", 1)[0] in RESULT_PARAMS:
            continue
        if name == "_type":
            wanted = tuple(t.strip() for t in value.split(",") if t.strip())
            unknown = [t for t in wanted if t not in ctx.resource_types]
            if unknown:
                raise error("CW-5002", f"_type names unknown resource types: {', '.join(unknown)}")
            parts.append(TypeIn(wanted))
            used.append((name, value))
            continue
        try:
            parts.append(_parameter(all_types, name, value, ctx))
        except _Unsupported as exc:
            if strict:
                raise error("CW-5001", str(exc)) from None
            ignored.append(name)
            continue
        used.append((name, value))
    where: Predicate | None = None
    if len(parts) == 1:
        where = parts[0]
    elif parts:
        where = And(tuple(parts))
    plan = QueryPlan(
        types=all_types,
        where=where,
        sort=results.sort,
        count=results.count,
        total=results.total,
        includes=results.includes,
    )
    return ParsedSearch(plan, tuple(ignored), tuple(used), results)


def _alternatives(value: str) -> list[str]:
    return split_escaped(value, ",")


def _or(preds: list[Predicate]) -> Predicate:
    return preds[0] if len(preds) == 1 else Or(tuple(preds))


def _parameter(types: tuple[str, ...], name: str, value: str, ctx: SearchContext) -> Predicate:
    if name.startswith("_has:"):
        return _has(types, name, value, ctx)
    if name in _UNSUPPORTED:
        raise _Unsupported(f"{name} is not supported")
    if name == "_id":
        return IdIn(tuple(unescape(v) for v in _alternatives(value)))
    if name == "_lastUpdated":
        return _or([_last_updated(v) for v in _alternatives(value)])
    if name in ("_text", "_content"):
        if not value.strip():
            raise error("CW-5002", f"{name} needs some text")
        return TextSearch("narrative" if name == "_text" else "content", value)
    if name == "_list":
        return ListMember(value)
    if not types:
        return _for_any_type(name, value, ctx)
    if len(types) > 1:
        return _or([And((TypeIn((t,)), _parameter((t,), name, value, ctx))) for t in types])
    return _for_type(types[0], name, value, ctx)


def _for_any_type(name: str, value: str, ctx: SearchContext) -> Predicate:
    code = name.split(".", 1)[0].split(":", 1)[0]
    generic = ctx.registry.get("Resource", code)
    if generic is None:
        raise _Unsupported(f"{name} cannot be searched across all resource types (give _type)")
    return _for_type("Resource", name, value, ctx)


def _last_updated(value: str) -> Predicate:
    prefix, rest = split_prefix(value)
    found = date_range(rest)
    if found is None:
        raise error("CW-5002", f"_lastUpdated needs a date, not {value!r}")
    return LastUpdated(prefix, found[0], found[1])


def _for_type(type_: str, name: str, value: str, ctx: SearchContext) -> Predicate:
    head, dot, rest = name.partition(".")
    code, _, modifier = head.partition(":")
    param = ctx.registry.get(type_, code)
    if param is None:
        raise _Unsupported(f"{type_} has no search parameter {code!r}")
    if dot:
        return _chain(type_, param, modifier, rest, value, ctx)
    if modifier == "missing":
        if value not in ("true", "false"):
            raise error("CW-5002", f"{name} must be true or false")
        return Missing(param.key, param.type, value == "true")
    if param.type == "reference" and modifier and modifier in ctx.resource_types:
        return _or([typed_predicate(param, "", v, ctx, target=modifier) for v in _alternatives(value)])
    supported = _MODIFIER_SUPPORT.get(param.type, frozenset())
    if modifier not in supported:
        raise _Unsupported(f"the modifier :{modifier} is not supported on {code} ({param.type})")
    if modifier == "not":
        return Not(_or([typed_predicate(param, "", v, ctx) for v in _alternatives(value)]))
    if modifier == "not-in":
        return Not(typed_predicate(param, "in", value, ctx))
    if modifier == "in":
        return typed_predicate(param, "in", value, ctx)
    return _or([typed_predicate(param, modifier, v, ctx) for v in _alternatives(value)])


def _chain(
    type_: str, param: SearchParam, modifier: str, rest: str, value: str, ctx: SearchContext
) -> Predicate:
    if param.type != "reference":
        raise error("CW-5002", f"{param.code} is not a reference: it cannot be chained")
    targets = (modifier,) if modifier else param.targets
    if modifier and modifier not in ctx.resource_types:
        raise error("CW-5002", f"{modifier!r} is not a resource type")
    options: list[Predicate] = []
    chained_code = rest.split(".", 1)[0].split(":", 1)[0]
    for target in targets:
        if ctx.registry.get(target, chained_code) is None and not chained_code.startswith("_"):
            continue
        options.append(Chain(param.key, target, _for_type(target, rest, value, ctx)))
    if not options:
        raise _Unsupported(f"no target of {param.code} has a search parameter {chained_code!r}")
    return _or(options)


def _has(types: tuple[str, ...], name: str, value: str, ctx: SearchContext) -> Predicate:
    # _has:Source:param:rest  where rest is a parameter (or another _has:...) of Source
    pieces = name.split(":", 3)
    if len(pieces) < 4 or not pieces[1] or not pieces[2] or not pieces[3]:
        raise error("CW-5002", f"{name}: _has takes _has:Type:reference:parameter")
    _, source, ref_code, rest = pieces
    if source not in ctx.resource_types:
        raise error("CW-5002", f"_has names an unknown resource type {source!r}")
    ref = ctx.registry.get(source, ref_code)
    if ref is None or ref.type != "reference":
        raise error("CW-5002", f"{source} has no reference search parameter {ref_code!r}")
    inner = _parameter((source,), rest, value, ctx)
    return Has(source, ref.key, inner)


def is_supported(type_: str, code: str, registry: SearchParamRegistry) -> bool:
    """Whether searching ``type_`` by ``code`` is implemented (CapabilityStatement source)."""
    if code in ("_id", "_lastUpdated", "_text", "_content", "_list", "_has"):
        return True
    if code in _UNSUPPORTED:
        return False
    param = registry.get(type_, code)
    return param is not None and (param.type != "special" or param.code == "near")
