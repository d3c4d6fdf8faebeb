"""Query plans: a dialect-free description of a search, compiled to SQL by each backend.

Rules:
1. A plan is data (frozen dataclasses). ``store.sql`` compiles it; ``search.match`` evaluates it
   against one resource in memory. Neither adds meaning the plan does not state.
2. Predicates combine with :class:`And`, :class:`Or` and :class:`Not`. Parameters are named by the
   same stable keys as index rows (``"Patient.identifier"``).
3. Ranges are half-open ``[lo, hi)``; ``prefix`` is one of eq ne gt lt ge le sa eb ap, with the
   semantics of search.html section 3.1.1.4, applied by :mod:`careweave.search.ranges`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "And",
    "Chain",
    "CompositeMatch",
    "DateMatch",
    "Has",
    "IdIn",
    "Include",
    "LastUpdated",
    "ListMember",
    "Missing",
    "Near",
    "Not",
    "NumberMatch",
    "Or",
    "Predicate",
    "QuantityMatch",
    "QueryPlan",
    "RefIn",
    "RefMatch",
    "SortKey",
    "StringMatch",
    "TextSearch",
    "TokenIn",
    "TokenMatch",
    "TokenText",
    "TypeIn",
    "UriMatch",
]


@dataclass(frozen=True, slots=True)
class IdIn:
    ids: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class TypeIn:
    types: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class LastUpdated:
    prefix: str
    lo: int
    hi: int


@dataclass(frozen=True, slots=True)
class TokenMatch:
    """``system`` None: any system; "" : no system (``|code``). ``code`` None: any code."""

    param: str
    system: str | None
    code: str | None


@dataclass(frozen=True, slots=True)
class TokenText:
    param: str
    text: str  # normalised


@dataclass(frozen=True, slots=True)
class TokenIn:
    """The code is one of ``codes`` (``:in``, an expanded value set)."""

    param: str
    codes: tuple[tuple[str | None, str], ...]


@dataclass(frozen=True, slots=True)
class StringMatch:
    param: str
    value: str  # normalised for starts/contains, as given for exact
    mode: str  # starts | contains | exact | phonetic (value is a Soundex code)


@dataclass(frozen=True, slots=True)
class RefMatch:
    """A reference to ``type/id`` (type None: any type), or to an absolute or canonical ``url``."""

    param: str
    type: str | None
    id: str | None
    url: str | None = None


@dataclass(frozen=True, slots=True)
class RefIn:
    """A reference to any of ``type/id`` for the ``ids`` (group exports: the group's patients)."""

    param: str
    type: str
    ids: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class DateMatch:
    param: str
    prefix: str
    lo: int
    hi: int


@dataclass(frozen=True, slots=True)
class NumberMatch:
    param: str
    prefix: str
    value: float
    lo: float
    hi: float


@dataclass(frozen=True, slots=True)
class QuantityMatch:
    param: str
    prefix: str
    value: float
    lo: float
    hi: float
    system: str | None
    code: str | None


@dataclass(frozen=True, slots=True)
class UriMatch:
    param: str
    value: str
    mode: str  # exact | below | above


@dataclass(frozen=True, slots=True)
class CompositeMatch:
    """Components of one composite value, each a predicate on its own parameter type.

    ``parts`` hold :class:`TokenMatch`, :class:`StringMatch`, :class:`RefMatch`,
    :class:`QuantityMatch`, :class:`NumberMatch` or :class:`DateMatch` whose ``param`` is the
    composite's key; they must all hold for the same composite row."""

    param: str
    parts: tuple[Any, ...]


@dataclass(frozen=True, slots=True)
class Missing:
    param: str
    kind: str  # the parameter type: which index holds its rows
    missing: bool


@dataclass(frozen=True, slots=True)
class Chain:
    """The reference ``param`` points at a ``target_type`` resource matching ``where``."""

    param: str
    target_type: str
    where: Predicate


@dataclass(frozen=True, slots=True)
class Has:
    """Some ``source_type`` resource refers to this one through ``param`` and matches ``where``."""

    source_type: str
    param: str
    where: Predicate | None


@dataclass(frozen=True, slots=True)
class TextSearch:
    field: str  # narrative | content
    query: str


@dataclass(frozen=True, slots=True)
class Near:
    param: str
    latitude: float
    longitude: float
    distance_km: float


@dataclass(frozen=True, slots=True)
class ListMember:
    list_id: str


@dataclass(frozen=True, slots=True)
class And:
    parts: tuple[Predicate, ...]


@dataclass(frozen=True, slots=True)
class Or:
    parts: tuple[Predicate, ...]


@dataclass(frozen=True, slots=True)
class Not:
    part: Predicate


Predicate = (
    IdIn
    | TypeIn
    | LastUpdated
    | TokenMatch
    | TokenText
    | TokenIn
    | StringMatch
    | RefMatch
    | RefIn
    | DateMatch
    | NumberMatch
    | QuantityMatch
    | UriMatch
    | CompositeMatch
    | Missing
    | Chain
    | Has
    | TextSearch
    | Near
    | ListMember
    | And
    | Or
    | Not
)


@dataclass(frozen=True, slots=True)
class SortKey:
    """Sort by a parameter: ``kind`` is its type, or ``_id`` / ``_lastUpdated``."""

    param: str
    kind: str
    descending: bool = False


@dataclass(frozen=True, slots=True)
class Include:
    """``_include`` (rev=False): follow ``param`` of ``source_type`` matches to ``target_type``;
    ``_revinclude`` (rev=True): add ``source_type`` resources whose ``param`` points at a match.
    ``param`` None means every reference parameter of the source type (``*``)."""

    source_type: str
    param: str | None
    target_type: str | None
    rev: bool
    iterate: bool = False


@dataclass(frozen=True, slots=True)
class QueryPlan:
    """A search over ``types`` (empty: every type)."""

    types: tuple[str, ...]
    where: Predicate | None = None
    sort: tuple[SortKey, ...] = ()
    count: int = 20
    after: tuple[Any, ...] | None = None  # keyset cursor: sort key values and rk of the last row
    before: tuple[Any, ...] | None = None  # keyset cursor for the previous page
    total: str = "none"  # none | estimate | accurate
    includes: tuple[Include, ...] = ()
    options: dict[str, Any] = field(default_factory=dict)
