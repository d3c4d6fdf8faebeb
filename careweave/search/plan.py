"""Query plans: a dialect-free description of a search, compiled to SQL by each backend.

Rules:
1. A plan is data (frozen dataclasses). ``store.sql`` compiles it; ``search.match`` (subscriptions)
   evaluates it against one resource. Neither adds meaning the plan does not state.
2. Predicates are combined with :class:`And`, :class:`Or` and :class:`Not`. Parameters are named by
   the same stable keys as index rows (``"Patient.identifier"``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = ["And", "IdIn", "Not", "Or", "Predicate", "QueryPlan", "TokenMatch"]


@dataclass(frozen=True, slots=True)
class IdIn:
    ids: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class TokenMatch:
    """``param=[system|]code``: ``system`` None means any system; "" means no system (``|code``);
    ``code`` None means any code (``system|``)."""

    param: str
    system: str | None
    code: str | None


@dataclass(frozen=True, slots=True)
class And:
    parts: tuple[Predicate, ...]


@dataclass(frozen=True, slots=True)
class Or:
    parts: tuple[Predicate, ...]


@dataclass(frozen=True, slots=True)
class Not:
    part: Predicate


Predicate = IdIn | TokenMatch | And | Or | Not


@dataclass(frozen=True, slots=True)
class QueryPlan:
    """A search over one resource type (or several with ``types``)."""

    types: tuple[str, ...]
    where: Predicate | None = None
    count: int = 20
    after: tuple[Any, ...] | None = None  # keyset cursor
    total: str = "none"  # none | estimate | accurate
    options: dict[str, Any] = field(default_factory=dict)
