"""Tenants and their search parameters, as interactions see them.

Rules:
1. :class:`TenantDirectory` remembers known tenants for ``ttl`` seconds (unknown names are always
   looked up, so a tenant created by another process is served at once); whatever changes a tenant
   in this process invalidates it at once.
2. :class:`TenantSearch` gives a tenant's search registry (the specification's parameters and its
   ready custom ones) and its indexer (also the pending ones, so new writes are indexed while a
   reindex catches up). Both are rebuilt only when the tenant's parameter generation changes.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from careweave.fhir.fhirpath import FhirPathEngine
from careweave.search.custom import registry_with
from careweave.search.indexer import Indexer
from careweave.search.registry import SearchParamRegistry
from careweave.store.base import Store, Tenant

__all__ = ["SearchState", "TenantDirectory", "TenantSearch"]


class TenantDirectory:
    def __init__(self, store: Store, ttl: float = 1.0) -> None:
        self._store = store
        self._ttl = ttl
        self._known: dict[str, tuple[float, Tenant]] = {}

    async def get(self, name: str) -> Tenant | None:
        now = time.monotonic()
        known = self._known.get(name)
        if known is not None and known[0] > now:
            return known[1]
        tenant = await self._store.tenant(name)
        if tenant is None:
            self._known.pop(name, None)
        elif self._ttl > 0:
            self._known[name] = (now + self._ttl, tenant)
        return tenant

    def invalidate(self, name: str) -> None:
        self._known.pop(name, None)


@dataclass(frozen=True, slots=True)
class SearchState:
    registry: SearchParamRegistry  # what can be searched
    indexer: Indexer  # what writes index
    pending: frozenset[str]  # custom parameter keys still being reindexed


class TenantSearch:
    def __init__(
        self,
        store: Store,
        base: SearchParamRegistry,
        indexer: Indexer,
        engine: FhirPathEngine,
        code_systems: dict[str, str],
    ) -> None:
        self._store = store
        self._base = SearchState(base, indexer, frozenset())
        self._engine = engine
        self._code_systems = code_systems
        self._cache: dict[int, tuple[int, SearchState]] = {}

    @property
    def base(self) -> SearchState:
        return self._base

    async def of(self, tenant: Tenant) -> SearchState:
        if tenant.params_generation == 0:
            return self._base
        hit = self._cache.get(tenant.key)
        if hit is not None and hit[0] == tenant.params_generation:
            return hit[1]
        custom = await self._store.custom_params(tenant)
        state = self._base
        if custom:
            base = self._base.registry
            searchable = registry_with(base, [(c.key, c.definition) for c in custom if c.state == "ready"])
            writable = registry_with(base, [(c.key, c.definition) for c in custom])
            state = SearchState(
                searchable,
                Indexer(writable, self._engine, self._code_systems),
                frozenset(c.key for c in custom if c.state != "ready"),
            )
        self._cache[tenant.key] = (tenant.params_generation, state)
        return state
