"""The storage interface: what every backend (SQLite, PostgreSQL) provides.

Rules:
1. Every method takes the :class:`Tenant`; no backend statement runs without the tenant predicate.
2. Writes run as a function over a :class:`Transaction` inside :meth:`Store.write`: the function sees
   a serial, isolated view (the backend serialises writers), and either everything it wrote commits
   or nothing does. ``write`` returns only after the commit is durable: an acknowledged write is never
   lost.
3. Each stored version appends one row to the change log (history) in the same transaction. Its
   sequence number is monotonic and gap-free for readers; it is the outbox events read.
4. The versioning rules (version numbers, meta stamping, conditional semantics) are written once, over
   this interface, in ``store/writes.py``; backends only store rows.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

from careweave.search.index import IndexRows
from careweave.search.plan import QueryPlan
from careweave.store.sql.components import Sql

__all__ = [
    "Change",
    "HistoryPage",
    "HistoryQuery",
    "NewVersion",
    "SearchPage",
    "Store",
    "StoredResource",
    "Tenant",
    "Transaction",
]

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Tenant:
    """An organisation sharing the deployment. ``key`` is the storage key carried by every row."""

    key: int
    name: str
    settings: Mapping[str, Any] = field(default_factory=dict)
    params_generation: int = 0  # changes whenever the tenant's custom search parameters change

    def setting(self, name: str, default: Any = None) -> Any:
        return self.settings.get(name, default)


@dataclass(frozen=True, slots=True)
class CustomParam:
    """A tenant's own search parameter (from one of its SearchParameter resources), for one base.

    ``state``: ``pending`` while existing resources are being reindexed (new writes are indexed
    already), then ``ready`` (searchable)."""

    key: str
    resource_id: str
    url: str
    definition: Mapping[str, Any]
    state: str


@dataclass(frozen=True, slots=True)
class Job:
    """A background job (reindex, export), its progress kept in the store so it survives restarts.

    ``state``: queued, running, done, failed, cancelled. ``cursor`` is the job's own position
    (the last resource row key processed, for a reindex)."""

    jid: int
    tenant: int
    kind: str
    payload: Mapping[str, Any]
    state: str
    cursor: int
    done: int
    total: int
    created_ms: int
    updated_ms: int
    error: str | None = None


@dataclass(slots=True)
class StoredResource:
    """One version of a resource as stored: ``body`` is its JSON bytes (meta included), or None
    when this version is a deletion. Treated as immutable; not frozen because one is built per
    read (frozen construction costs ~6x)."""

    type: str
    id: str
    version: int
    updated_ms: int
    deleted: bool
    body: bytes | None
    method: str = ""  # POST | PUT | PATCH | DELETE (history entries)
    seq: int = 0  # change-log sequence number of this version


@dataclass(frozen=True, slots=True)
class NewVersion:
    """A version to append: computed by store/writes.py, stored verbatim by a backend."""

    type: str
    id: str
    version: int
    updated_ms: int
    deleted: bool
    body: bytes | None
    method: str
    index: IndexRows | None  # None for deletions (index rows are removed)


@dataclass(frozen=True, slots=True)
class HistoryQuery:
    type: str | None = None
    id: str | None = None
    since_ms: int | None = None
    at_ms: int | None = None  # _at: versions current at that instant (not yet used)
    count: int = 20
    before_seq: int | None = None  # paging cursor: only entries older than this sequence number


@dataclass(frozen=True, slots=True)
class HistoryPage:
    entries: Sequence[StoredResource]
    total: int | None
    next_before_seq: int | None  # cursor for the next (older) page, None on the last page


@dataclass(frozen=True, slots=True)
class SearchPage:
    """Matches of a search: current versions, in the plan's order, and the includes."""

    matches: Sequence[StoredResource]
    includes: Sequence[StoredResource]
    total: int | None
    next_after: tuple[Any, ...] | None  # keyset position after the last match; None: last page
    prev_before: tuple[Any, ...] | None  # keyset position before the first match; None: first page


@dataclass(frozen=True, slots=True)
class Change:
    """One committed change-log entry, as the outbox feed yields it."""

    seq: int
    tenant: int
    type: str
    id: str
    version: int
    updated_ms: int
    method: str
    body: bytes | None


class Transaction(Protocol):
    """A serialised write transaction. Methods are synchronous: they run on the backend's writer."""

    tenant: Tenant
    now_ms: int

    def current(self, type: str, id: str) -> StoredResource | None:
        """The current version (a deletion tombstone included), or None if never stored."""
        ...

    def prefetch(self, keys: Iterable[tuple[str, str]]) -> None:
        """Look up the current versions of many ``(type, id)`` at once, ahead of :meth:`current`
        asking for each (one statement per type instead of one per resource); what it finds is
        answered once. Only a saving: ``current`` gives the same answers without it."""
        ...

    def append(self, version: NewVersion) -> StoredResource:
        """Store a new version: current row, history row, index rows (replacing the old ones)."""
        ...

    def search_ids(self, plan: QueryPlan, limit: int) -> list[tuple[str, str]]:
        """(type, id) of current, non-deleted resources matching the plan, at most ``limit``."""
        ...

    def set_custom_params(self, resource_id: str, params: Sequence[CustomParam]) -> None:
        """Replace the custom parameters defined by SearchParameter ``resource_id`` (none: drop
        them), and move the tenant to a new parameter generation."""
        ...

    def add_job(self, kind: str, payload: Mapping[str, Any], total: int = 0) -> int:
        """Queue a background job; returns its id."""
        ...


class Store(Protocol):
    """A tenant-aware FHIR resource store. Implementations: store.sql.sqlite (and postgres)."""

    async def read(self, tenant: Tenant, type: str, id: str) -> StoredResource | None: ...

    async def vread(self, tenant: Tenant, type: str, id: str, version: int) -> StoredResource | None: ...

    async def history(self, tenant: Tenant, query: HistoryQuery) -> HistoryPage: ...

    async def search(self, tenant: Tenant, plan: QueryPlan) -> SearchPage: ...

    async def write(self, tenant: Tenant, fn: Callable[[Transaction], T]) -> T: ...

    async def changes(self, after_seq: int, limit: int) -> list[Change]: ...

    # tenants
    async def tenant(self, name: str) -> Tenant | None: ...

    async def tenants(self) -> list[Tenant]: ...

    async def create_tenant(self, name: str, settings: Mapping[str, Any] | None = None) -> Tenant: ...

    async def remove_tenant(self, name: str) -> bool: ...

    async def update_tenant_settings(self, name: str, settings: Mapping[str, Any]) -> Tenant: ...

    # custom search parameters and background jobs
    async def custom_params(self, tenant: Tenant) -> list[CustomParam]: ...

    async def tenant_by_key(self, key: int) -> Tenant | None: ...

    async def jobs(self, tenant: Tenant, kind: str | None = None) -> list[Job]: ...

    async def claim_job(self, tenant: Tenant, kinds: Sequence[str], lease_ms: int = 30_000) -> Job | None:
        """The tenant's oldest queued job of these kinds, now running; or a running one whose
        runner has not reported progress for ``lease_ms`` (its process died): progress reports
        (``update_job``) renew the lease, so two processes never run one job together."""
        ...

    async def update_job(self, tenant: Tenant, jid: int, **fields: Any) -> None: ...

    async def count(self, tenant: Tenant, types: Sequence[str]) -> int: ...

    async def reindex_chunk(
        self,
        tenant: Tenant,
        types: Sequence[str],
        after_rk: int,
        limit: int,
        index: Callable[[dict[str, Any]], IndexRows],
        keys: frozenset[str] | None,
    ) -> tuple[int | None, int]:
        """Re-extract index rows for the next ``limit`` current resources of ``types`` after row
        key ``after_rk`` (only the parameters ``keys``, or all when None), in one transaction.
        Returns the last row key done (None when there was nothing left) and how many."""
        ...

    async def mark_params_ready(self, tenant: Tenant, keys: Sequence[str]) -> None: ...

    # component SQL (events, HL7 v2, MPI: see store/sql/components.py)
    async def sql_read(self, fn: Callable[[Sql], T]) -> T: ...

    async def sql_write(self, fn: Callable[[Sql], T]) -> T: ...

    async def sql_write_tenant(self, tenant: Tenant, fn: Callable[[Sql, Transaction], T]) -> T: ...

    async def close(self) -> None: ...


Runner = Callable[[Callable[[], T]], Awaitable[T]]
