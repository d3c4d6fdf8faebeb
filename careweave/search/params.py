"""Search parameters (query string items) -> a QueryPlan.

Interim scope: ``_id``, token parameters, ``_count``. Everything else is reported as not supported.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from careweave.errors import error
from careweave.search.plan import And, IdIn, Or, Predicate, QueryPlan, TokenMatch
from careweave.search.registry import SearchParamRegistry

__all__ = ["ParsedSearch", "parse_search"]

_RESULT_PARAMS = frozenset({"_count", "_format", "_pretty", "_summary", "_elements", "_total"})


@dataclass(frozen=True, slots=True)
class ParsedSearch:
    plan: QueryPlan
    ignored: tuple[str, ...] = ()
    used: tuple[tuple[str, str], ...] = field(default_factory=tuple)


def _split_or(value: str) -> list[str]:
    out, cur, escaped = [], [], False
    for ch in value:
        if escaped:
            cur.append(ch)
            escaped = False
        elif ch == "\\":
            cur.append(ch)
            escaped = True
        elif ch == ",":
            out.append("".join(cur))
            cur = []
        else:
            cur.append(ch)
    out.append("".join(cur))
    return out


def _unescape(value: str) -> str:
    return value.replace("\\,", ",").replace("\\|", "|").replace("\\$", "$").replace("\\\\", "\\")


def _split_token(value: str) -> tuple[str | None, str | None]:
    i = 0
    while i < len(value):
        if value[i] == "\\":
            i += 2
            continue
        if value[i] == "|":
            system, code = value[:i], value[i + 1 :]
            return _unescape(system), (_unescape(code) if code else None)
        i += 1
    return None, _unescape(value)


def parse_search(
    types: Sequence[str],
    items: Sequence[tuple[str, str]],
    registry: SearchParamRegistry,
    *,
    count: int,
    max_count: int,
) -> ParsedSearch:
    parts: list[Predicate] = []
    ignored: list[str] = []
    used: list[tuple[str, str]] = []
    for name, value in items:
        if name == "_count":
            try:
                count = int(value)
            except ValueError:
                raise error("CW-5002", f"_count must be a whole number, not {value!r}") from None
            if count < 0:
                raise error("CW-5002", "_count must not be negative")
            count = min(count, max_count)
            used.append((name, value))
            continue
        if name in _RESULT_PARAMS:
            continue
        if name == "_id":
            parts.append(IdIn(tuple(_unescape(v) for v in _split_or(value))))
            used.append((name, value))
            continue
        param = registry.get(types[0], name) if len(types) == 1 else None
        if param is not None and param.type == "token" and ":" not in name:
            alternatives: list[Predicate] = []
            for alt in _split_or(value):
                system, code = _split_token(alt)
                alternatives.append(TokenMatch(param.key, system, code))
            parts.append(alternatives[0] if len(alternatives) == 1 else Or(tuple(alternatives)))
            used.append((name, value))
            continue
        ignored.append(name)
    where: Predicate | None = None
    if len(parts) == 1:
        where = parts[0]
    elif parts:
        where = And(tuple(parts))
    return ParsedSearch(QueryPlan(tuple(types), where, count=count), tuple(ignored), tuple(used))


def is_supported(type_: str, param_code: str, registry: SearchParamRegistry) -> bool:
    """Whether searching ``type_`` by ``param_code`` is implemented (CapabilityStatement source)."""
    if param_code == "_id":
        return True
    param = registry.get(type_, param_code)
    return param is not None and param.type == "token" and param.code == "identifier"
