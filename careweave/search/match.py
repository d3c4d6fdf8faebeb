"""Evaluate a :class:`~careweave.search.plan.QueryPlan` against one resource in memory.

The answer is exactly what :mod:`careweave.store.sql.compile` would find for that resource, given the
same index rows (:class:`~careweave.search.index.IndexRows`): subscriptions decide with it which
changes to notify, and tests use it as an oracle beside the SQL.

Rules:
1. Three answers: True, False, and None, "cannot tell in memory". Chains, ``_has``, ``_list``
   (they need other resources), ``_text``/``_content`` (the full-text index) and ``near`` are None;
   so is an ``ap`` date or ``_lastUpdated`` without ``now_ms``, and ``_lastUpdated`` on a resource
   whose update time is not known. The caller asks the database then.
2. And, Or and Not combine answers with Kleene's three-valued logic: ``False and None`` is False,
   ``True or None`` is True, ``not None`` is None. A plan whose answer does not depend on an
   unknown part is decided.
3. Row conditions follow SQL, NULL included: a comparison with a missing column value (a composite
   component a row does not have) is unknown, and a row matches only when all its conditions are
   true. The comparisons are the compiler's own (:func:`date_conditions`,
   :func:`point_conditions`), so the two cannot drift apart in meaning.
4. A resource whose type the plan does not search never matches.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from careweave.search.index import IndexRows
from careweave.search.plan import (
    And,
    Chain,
    CompositeMatch,
    DateMatch,
    Has,
    IdIn,
    LastUpdated,
    ListMember,
    Missing,
    Near,
    Not,
    NumberMatch,
    Or,
    Predicate,
    QuantityMatch,
    QueryPlan,
    RefIn,
    RefMatch,
    StringMatch,
    TextSearch,
    TokenIn,
    TokenMatch,
    TokenText,
    TypeIn,
    UriMatch,
)
from careweave.search.values import date_range

__all__ = [
    "UNDECIDABLE",
    "Candidate",
    "Truth",
    "date_conditions",
    "matches",
    "matches_candidate",
    "needs_database",
    "point_conditions",
]

Truth = bool | None  # None: unknown (SQL NULL, or "cannot tell in memory")

UNDECIDABLE: tuple[type, ...] = (Chain, Has, ListMember, TextSearch, Near)
"""Predicate kinds the matcher never decides (rule 1)."""

_HIGH = "\U0010ffff"  # the compiler's upper bound for "starts with" ranges
_DAY_MS = 86_400_000
_ROW_LISTS = (
    "tokens",
    "token_texts",
    "strings",
    "references",
    "dates",
    "numbers",
    "quantities",
    "uris",
    "composites",
    "geo",
)
_KIND_ROWS = {  # Missing.kind -> the rows that hold it (the compiler's TABLE_OF_KIND)
    "token": "tokens",
    "string": "strings",
    "reference": "references",
    "date": "dates",
    "number": "numbers",
    "quantity": "quantities",
    "uri": "uris",
    "composite": "composites",
    "special": "geo",
}


@dataclass(frozen=True, slots=True)
class Candidate:
    """One resource version ready to be matched: its type, id, update time and index rows grouped
    by parameter key. Build it once with :meth:`of` and match it against many plans."""

    type: str
    id: str
    updated_ms: int | None
    rows: Mapping[str, Mapping[str, list[tuple[Any, ...]]]] = field(repr=False)

    @classmethod
    def of(cls, resource: Mapping[str, Any], rows: IndexRows, updated_ms: int | None = None) -> Candidate:
        """``updated_ms`` defaults to ``meta.lastUpdated`` (None when the resource has none)."""
        grouped: dict[str, dict[str, list[tuple[Any, ...]]]] = {}
        for name in _ROW_LISTS:
            by_param: dict[str, list[tuple[Any, ...]]] = {}
            for row in getattr(rows, name):
                by_param.setdefault(row[0], []).append(row)
            grouped[name] = by_param
        if updated_ms is None:
            updated_ms = _last_updated(resource)
        return cls(str(resource.get("resourceType", "")), str(resource.get("id", "")), updated_ms, grouped)

    def of_param(self, kind: str, param: str) -> list[tuple[Any, ...]]:
        return self.rows[kind].get(param, [])


def _last_updated(resource: Mapping[str, Any]) -> int | None:
    meta = resource.get("meta")
    stamp = meta.get("lastUpdated") if isinstance(meta, Mapping) else None
    found = date_range(stamp) if isinstance(stamp, str) else None
    return None if found is None else found[0]


def matches(
    plan: QueryPlan,
    resource: Mapping[str, Any],
    rows: IndexRows,
    *,
    now_ms: int | None = None,
    updated_ms: int | None = None,
) -> bool | None:
    """Whether the database would return ``resource`` (whose index rows are ``rows``) for ``plan``;
    None when that cannot be told in memory (rule 1). ``now_ms`` is the clock ``ap`` measures
    from; ``updated_ms`` the resource's update time (default: its ``meta.lastUpdated``)."""
    return matches_candidate(plan, Candidate.of(resource, rows, updated_ms), now_ms=now_ms)


def matches_candidate(plan: QueryPlan, candidate: Candidate, *, now_ms: int | None = None) -> bool | None:
    """:func:`matches` for a prepared :class:`Candidate`."""
    if plan.types and candidate.type not in plan.types:
        return False
    if plan.where is None:
        return True
    return _Evaluator(candidate, now_ms).truth(plan.where)


def needs_database(pred: Predicate | None) -> bool:
    """Whether ``pred`` holds a part the matcher never decides (rule 1; ``ap`` aside)."""
    if pred is None:
        return False
    if isinstance(pred, UNDECIDABLE):
        return True
    if isinstance(pred, (And, Or)):
        return any(needs_database(p) for p in pred.parts)
    if isinstance(pred, Not):
        return needs_database(pred.part)
    return False


# -- three-valued logic ----------------------------------------------------------------------
def _all(values: list[Truth]) -> Truth:
    if False in values:
        return False
    return None if None in values else True


def _any(values: list[Truth]) -> Truth:
    if True in values:
        return True
    return None if None in values else False


def _not(value: Truth) -> Truth:
    return None if value is None else not value


def _lt(a: Any, b: Any) -> Truth:
    return None if a is None or b is None else a < b


def _le(a: Any, b: Any) -> Truth:
    return None if a is None or b is None else a <= b


def _eq(a: Any, b: Any) -> Truth:
    return None if a is None or b is None else a == b


# -- ranges: the compiler's conditions, as three-valued functions ------------------------------
def _approx_window(lo: int, hi: int, now_ms: int) -> tuple[int, int]:
    gap = max(abs(now_ms - lo), abs(now_ms - hi))
    margin = max(gap // 10, _DAY_MS)
    return lo - margin, hi + margin


def date_conditions(prefix: str, lo: Any, hi: Any, s_lo: int, s_hi: int, now_ms: int | None) -> Truth:
    """A stored range ``[lo, hi)`` against the search range ``[s_lo, s_hi)`` (search.html 3.1.1.4),
    the compiler's ``_range_dates`` condition by condition; ``ap`` without ``now_ms`` is unknown."""
    if prefix == "eq":
        return _all([_le(s_lo, lo), _lt(lo, s_hi), _le(hi, s_hi)])
    if prefix == "ne":
        return _not(_all([_le(s_lo, lo), _le(hi, s_hi)]))
    if prefix == "gt":
        return _lt(s_hi, hi)
    if prefix == "lt":
        return _lt(lo, s_lo)
    if prefix == "ge":
        inside = _all([_le(s_lo, lo), _le(hi, s_hi)])
        return _all([_lt(s_lo, hi), _any([_lt(s_hi, hi), inside])])
    if prefix == "le":
        inside = _all([_le(s_lo, lo), _le(hi, s_hi)])
        return _all([_lt(lo, s_hi), _any([_lt(lo, s_lo), inside])])
    if prefix == "sa":
        return _le(s_hi, lo)
    if prefix == "eb":
        return _le(hi, s_lo)
    if now_ms is None:
        return None
    w_lo, w_hi = _approx_window(s_lo, s_hi, now_ms)
    return _all([_lt(lo, w_hi), _lt(w_lo, hi)])


def point_conditions(prefix: str, lo: Any, hi: Any, value: float, s_lo: float, s_hi: float) -> Truth:
    """Stored numbers or quantities (points, or a Range ``[lo, hi]``) against a search value, the
    compiler's ``_range_points`` condition by condition."""
    if prefix == "eq":
        return _all([_le(s_lo, lo), _lt(hi, s_hi)])
    if prefix == "ne":
        return _not(_all([_le(s_lo, lo), _lt(hi, s_hi)]))
    if prefix == "gt":
        return _lt(value, hi)
    if prefix == "lt":
        return _lt(lo, value)
    if prefix == "ge":
        return _le(value, hi)
    if prefix == "le":
        return _le(lo, value)
    if prefix == "sa":
        return _lt(value, lo)
    if prefix == "eb":
        return _lt(hi, value)
    margin = abs(value) * 0.1
    return _all([_le(lo, value + margin), _le(value - margin, hi)])


def _starts(text: Any, value: str) -> Truth:
    """``text >= value AND text < value || U+10FFFF`` (the compiler's starts-with)."""
    return _all([_le(value, text), _lt(text, value + _HIGH)])


def _system_is(system: Any, wanted: str | None) -> Truth:
    """Token system rule: None any system, "" no system, else that system."""
    if wanted is None:
        return True
    if wanted == "":
        return system is None
    return _eq(system, wanted)


# -- the evaluator -----------------------------------------------------------------------------
class _Evaluator:
    """Evaluates predicates for one candidate; the table below maps each kind to its method."""

    def __init__(self, candidate: Candidate, now_ms: int | None) -> None:
        self.c = candidate
        self.now_ms = now_ms

    def truth(self, pred: Predicate) -> Truth:
        method = _METHODS.get(type(pred))
        return None if method is None else method(self, pred)

    def any_row(self, kind: str, param: str, test: Callable[[tuple[Any, ...]], Truth]) -> Truth:
        """Rows of ``param`` in ``kind``: True if one passes ``test`` (EXISTS keeps true rows only)."""
        return any(test(row) is True for row in self.c.of_param(kind, param))

    def and_(self, pred: And) -> Truth:
        out: list[Truth] = []
        for part in pred.parts:
            value = self.truth(part)
            if value is False:
                return False
            out.append(value)
        return _all(out)

    def or_(self, pred: Or) -> Truth:
        out: list[Truth] = []
        for part in pred.parts:
            value = self.truth(part)
            if value is True:
                return True
            out.append(value)
        return _any(out)

    def not_(self, pred: Not) -> Truth:
        return _not(self.truth(pred.part))

    def id_in(self, pred: IdIn) -> Truth:
        return self.c.id in pred.ids

    def type_in(self, pred: TypeIn) -> Truth:
        return self.c.type in pred.types

    def last_updated(self, pred: LastUpdated) -> Truth:
        at = self.c.updated_ms
        if at is None:
            return None
        return date_conditions(pred.prefix, at, at + 1, pred.lo, pred.hi, self.now_ms)

    def missing(self, pred: Missing) -> Truth:
        present = bool(self.c.of_param(_KIND_ROWS.get(pred.kind, "tokens"), pred.param))
        return not present if pred.missing else present

    def token(self, pred: TokenMatch) -> Truth:
        code, system = pred.code, pred.system
        return self.any_row(
            "tokens",
            pred.param,
            lambda r: _all([True if code is None else _eq(r[2], code), _system_is(r[1], system)]),
        )

    def token_text(self, pred: TokenText) -> Truth:
        text, word = pred.text, " " + pred.text
        return self.any_row("token_texts", pred.param, lambda r: _any([_starts(r[1], text), word in r[1]]))

    def token_in(self, pred: TokenIn) -> Truth:
        codes = pred.codes
        if not codes:
            return False

        def test(r: tuple[Any, ...]) -> Truth:
            return _any([_eq(r[2], c) if s is None else _all([_eq(r[2], c), _eq(r[1], s)]) for s, c in codes])

        return self.any_row("tokens", pred.param, test)

    def string(self, pred: StringMatch) -> Truth:
        value, mode = pred.value, pred.mode
        if mode == "exact":
            return self.any_row("strings", pred.param, lambda r: _eq(r[2], value))
        if mode == "phonetic":
            return self.any_row("strings", pred.param, lambda r: _eq(r[1], value))
        if mode == "contains":
            return self.any_row("strings", pred.param, lambda r: value in r[1])
        return self.any_row("strings", pred.param, lambda r: _starts(r[1], value))

    def reference(self, pred: RefMatch) -> Truth:
        def test(r: tuple[Any, ...]) -> Truth:
            conds: list[Truth] = []
            if pred.url is not None:
                conds.append(_eq(r[3], pred.url))
            if pred.id is not None:
                conds.append(_eq(r[2], pred.id))
            if pred.type is not None:
                conds.append(_eq(r[1], pred.type))
            return _all(conds)

        return self.any_row("references", pred.param, test)

    def ref_in(self, pred: RefIn) -> Truth:
        ids = frozenset(pred.ids)
        return self.any_row("references", pred.param, lambda r: _all([_eq(r[1], pred.type), r[2] in ids]))

    def date(self, pred: DateMatch) -> Truth:
        rows = self.c.of_param("dates", pred.param)
        if not rows:
            return False
        if pred.prefix == "ap" and self.now_ms is None:
            return None
        return self.any_row(
            "dates",
            pred.param,
            lambda r: date_conditions(pred.prefix, r[1], r[2], pred.lo, pred.hi, self.now_ms),
        )

    def number(self, pred: NumberMatch) -> Truth:
        return self.any_row(
            "numbers",
            pred.param,
            lambda r: point_conditions(pred.prefix, r[1], r[2], pred.value, pred.lo, pred.hi),
        )

    def quantity(self, pred: QuantityMatch) -> Truth:
        def test(r: tuple[Any, ...]) -> Truth:
            conds: list[Truth] = []
            if pred.code is not None:
                conds.append(_eq(r[2], pred.code))
            if pred.system is not None:
                conds.append(_eq(r[1], pred.system))
            conds.append(point_conditions(pred.prefix, r[3], r[4], pred.value, pred.lo, pred.hi))
            return _all(conds)

        return self.any_row("quantities", pred.param, test)

    def uri(self, pred: UriMatch) -> Truth:
        value = pred.value
        if pred.mode == "below":
            return self.any_row("uris", pred.param, lambda r: _starts(r[1], value))
        if pred.mode == "above":
            return self.any_row("uris", pred.param, lambda r: value[: len(r[1])] == r[1])
        return self.any_row("uris", pred.param, lambda r: _eq(r[1], value))

    def composite(self, pred: CompositeMatch) -> Truth:
        tests = [_component_test(i, part, self.now_ms) for i, part in enumerate(pred.parts, 1)]
        checks = [t for t in tests if t is not None]
        if len(checks) < len(tests):  # rule 1: no column for a part, or ap without the clock
            return None if self.c.of_param("composites", pred.param) else False
        return self.any_row("composites", pred.param, lambda r: _all([check(r) for check in checks]))

    def undecidable(self, pred: Predicate) -> Truth:
        return None


RowTest = Callable[[tuple[Any, ...]], Truth]
# composite row: (param, s1, v1, s2, v2, lo2, hi2, lo3, hi3); columns per component position
_COLUMNS: dict[int, tuple[int | None, int | None, int | None, int | None]] = {
    1: (1, 2, None, None),
    2: (3, 4, 5, 6),
    3: (None, None, 7, 8),
}
_NEEDS_CODE = (TokenMatch, StringMatch, RefMatch, UriMatch, QuantityMatch)
_NEEDS_RANGE = (DateMatch, QuantityMatch, NumberMatch)


def _component_test(position: int, part: Any, now_ms: int | None) -> RowTest | None:
    """The compiler's ``_component`` conditions for one part, as a test of a composite row; None
    when the part needs a column its position does not have, or the clock for ``ap``."""
    s, v, lo, hi = _COLUMNS.get(position, (None, None, None, None))
    if isinstance(part, _NEEDS_CODE) and (s is None or v is None):
        return None
    if isinstance(part, _NEEDS_RANGE) and (lo is None or hi is None):
        return None
    if isinstance(part, DateMatch) and part.prefix == "ap" and now_ms is None:
        return None
    return _component_row_test(part, s or 0, v or 0, lo or 0, hi or 0, now_ms)


def _component_row_test(part: Any, s: int, v: int, lo: int, hi: int, now_ms: int | None) -> RowTest:
    if isinstance(part, TokenMatch):
        code, system = part.code, part.system
        return lambda r: _all([True if code is None else _eq(r[v], code), _system_is(r[s], system)])
    if isinstance(part, StringMatch):
        value = part.value
        if part.mode == "exact":
            return lambda r: _eq(r[v], value)
        return lambda r: _starts(r[v], value)  # contains and phonetic too, as the compiler does
    if isinstance(part, (RefMatch, UriMatch)):
        wanted = part.value if isinstance(part, UriMatch) else part.id or part.url or ""
        return lambda r: _eq(r[v], wanted)
    if isinstance(part, DateMatch):
        return lambda r: date_conditions(part.prefix, r[lo], r[hi], part.lo, part.hi, now_ms)
    if isinstance(part, QuantityMatch):

        def quantity(r: tuple[Any, ...]) -> Truth:
            conds = [point_conditions(part.prefix, r[lo], r[hi], part.value, part.lo, part.hi)]
            if part.code is not None:
                conds.append(_eq(r[v], part.code))
            if part.system is not None:
                conds.append(_eq(r[s], part.system))
            return _all(conds)

        return quantity
    if isinstance(part, NumberMatch):
        return lambda r: point_conditions(part.prefix, r[lo], r[hi], part.value, part.lo, part.hi)
    return lambda r: False


_METHODS: dict[type, Callable[[_Evaluator, Any], Truth]] = {
    And: _Evaluator.and_,
    Or: _Evaluator.or_,
    Not: _Evaluator.not_,
    IdIn: _Evaluator.id_in,
    TypeIn: _Evaluator.type_in,
    LastUpdated: _Evaluator.last_updated,
    Missing: _Evaluator.missing,
    TokenMatch: _Evaluator.token,
    TokenText: _Evaluator.token_text,
    TokenIn: _Evaluator.token_in,
    StringMatch: _Evaluator.string,
    RefMatch: _Evaluator.reference,
    RefIn: _Evaluator.ref_in,
    DateMatch: _Evaluator.date,
    NumberMatch: _Evaluator.number,
    QuantityMatch: _Evaluator.quantity,
    UriMatch: _Evaluator.uri,
    CompositeMatch: _Evaluator.composite,
    Chain: _Evaluator.undecidable,
    Has: _Evaluator.undecidable,
    ListMember: _Evaluator.undecidable,
    TextSearch: _Evaluator.undecidable,
    Near: _Evaluator.undecidable,
}
