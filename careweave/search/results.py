"""Result parameters: _sort, _count, _include, _revinclude, _total, _summary, _elements, _cursor.

Rules (search.html section 3.1.1.5, 3.1.1.6 and 3.1.1.7):
1. ``_sort`` takes comma-separated parameter codes, ``-`` for descending; ``_id`` and
   ``_lastUpdated`` sort too. Composite and special parameters cannot be sorted.
2. ``_include`` / ``_revinclude`` take ``Source:param[:Target]`` or ``*``; ``:iterate`` (or the R3
   spelling ``:recurse``) repeats them over what they add.
3. ``_summary`` is one of true, text, data, count, false; ``_total`` one of none, estimate,
   accurate; ``_count`` is capped at the server's maximum.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from careweave.errors import error
from careweave.search.plan import Include, SortKey
from careweave.search.registry import SearchParamRegistry

__all__ = ["RESULT_PARAMS", "ResultOptions", "parse_results"]

RESULT_PARAMS = frozenset(
    {
        "_sort",
        "_count",
        "_include",
        "_revinclude",
        "_total",
        "_summary",
        "_elements",
        "_cursor",
        "_format",
        "_pretty",
    }
)
_SUMMARY = frozenset({"true", "text", "data", "count", "false"})
_TOTAL = frozenset({"none", "estimate", "accurate"})


@dataclass(frozen=True, slots=True)
class ResultOptions:
    count: int
    sort: tuple[SortKey, ...] = ()
    includes: tuple[Include, ...] = ()
    total: str = "none"
    summary: str | None = None
    elements: tuple[str, ...] = ()
    cursor: str | None = None
    total_given: bool = False


def parse_results(
    types: Sequence[str],
    items: Sequence[tuple[str, str]],
    registry: SearchParamRegistry,
    *,
    count: int,
    max_count: int,
) -> ResultOptions:
    sort: list[SortKey] = []
    includes: list[Include] = []
    total, total_given = "none", False
    summary: str | None = None
    elements: list[str] = []
    cursor: str | None = None
    for name, value in items:
        base, _, modifier = name.partition(":")
        if base == "_count":
            count = _count(value, max_count)
        elif base == "_sort":
            sort.extend(_sort(types, value, registry))
        elif base in ("_include", "_revinclude"):
            includes.extend(_include(types, base == "_revinclude", modifier, value, registry))
        elif base == "_total":
            if value not in _TOTAL:
                raise error("CW-5002", "_total is one of none, estimate, accurate")
            total, total_given = value, True
        elif base == "_summary":
            if value not in _SUMMARY:
                raise error("CW-5002", "_summary is one of true, text, data, count, false")
            summary = value
        elif base == "_elements":
            elements.extend(e.strip() for e in value.split(",") if e.strip())
        elif base == "_cursor":
            cursor = value
    if summary == "count":
        count = 0
    return ResultOptions(
        count, tuple(sort), tuple(includes), total, summary, tuple(elements), cursor, total_given
    )


def _count(value: str, max_count: int) -> int:
    try:
        count = int(value)
    except ValueError:
        raise error("CW-5002", f"_count must be a whole number, not {value!r}") from None
    if count < 0:
        raise error("CW-5002", "_count must not be negative")
    return min(count, max_count)


def _sort(types: Sequence[str], value: str, registry: SearchParamRegistry) -> list[SortKey]:
    keys = []
    for raw in value.split(","):
        raw = raw.strip()
        descending = raw.startswith("-")
        code = raw[1:] if descending else raw
        if code in ("_id", "_lastUpdated"):
            keys.append(SortKey(code, code, descending))
            continue
        type_ = types[0] if len(types) == 1 else "Resource"
        param = registry.get(type_, code)
        if param is None:
            raise error("CW-5002", f"cannot sort by {code!r}: not a search parameter of {type_}")
        if param.type in ("composite", "special"):
            raise error("CW-5002", f"cannot sort by {code!r} ({param.type})")
        keys.append(SortKey(param.key, param.type, descending))
    return keys


def _include(
    types: Sequence[str], rev: bool, modifier: str, value: str, registry: SearchParamRegistry
) -> list[Include]:
    """One _include/_revinclude value; ``*`` expands to every reference parameter it covers."""
    iterate = modifier in ("iterate", "recurse")
    if modifier and not iterate:
        raise error("CW-5002", f"unknown modifier :{modifier} on _include")
    name = "_revinclude" if rev else "_include"
    if value == "*":
        return [
            Include(t, p.key, None, rev, iterate)
            for t in types
            for p in registry.for_type(t)
            if p.type == "reference"
        ]
    pieces = value.split(":")
    if len(pieces) not in (2, 3):
        raise error("CW-5002", f"{name} takes Source:parameter[:Target], not {value!r}")
    source, code = pieces[0], pieces[1]
    target = pieces[2] if len(pieces) == 3 else None
    if code == "*":
        return [
            Include(source, p.key, target, rev, iterate)
            for p in registry.for_type(source)
            if p.type == "reference"
        ]
    param = registry.get(source, code)
    if param is None or param.type != "reference":
        raise error("CW-5002", f"{name}: {source} has no reference parameter {code!r}")
    if target is not None and param.targets and target not in param.targets:
        raise error("CW-5002", f"{name}: {source}.{code} cannot point at {target}")
    return [Include(source, param.key, target, rev, iterate)]
