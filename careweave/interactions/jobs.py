"""The background job runner: reindexing for custom search parameters and ``$reindex``.

Rules:
1. Jobs live in the store (state, cursor, progress), so a job interrupted by a restart resumes
   from its cursor; the runner polls for queued jobs and can be woken at once.
2. A reindex works in chunks of ``chunk`` resources, each in one write transaction that reads the
   resources and writes their new index rows; progress is saved after every chunk.
3. When a reindex for custom parameters finishes they become searchable (state ready).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from careweave.interactions.tenants import TenantDirectory, TenantSearch
from careweave.store.base import Job, Store, Tenant

__all__ = ["JobRunner"]

log = logging.getLogger("careweave.jobs")


class JobRunner:
    def __init__(
        self,
        store: Store,
        search: TenantSearch,
        tenants: TenantDirectory,
        *,
        poll_seconds: float = 1.0,
        chunk: int = 200,
    ) -> None:
        self._store = store
        self._search = search
        self._tenants = tenants
        self._poll = poll_seconds
        self._chunk = chunk
        self._wake = asyncio.Event()

    def wake(self) -> None:
        self._wake.set()

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                worked = await self.run_once()
            except Exception:
                log.exception("job runner failed; retrying")
                worked = False
            if not worked:
                self._wake.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), self._poll)

    async def run_once(self) -> bool:
        """Run every queued job of every tenant once; True when there was one."""
        worked = False
        for tenant in await self._store.tenants():
            job = await self._store.claim_job(tenant, ("reindex",))
            while job is not None:
                worked = True
                await self._reindex(tenant, job)
                job = await self._store.claim_job(tenant, ("reindex",))
        return worked

    async def _reindex(self, tenant: Tenant, job: Job) -> None:
        keys = frozenset(job.payload["keys"]) if job.payload.get("keys") else None
        types = list(job.payload.get("types") or [])
        try:
            total = job.total or await self._store.count(tenant, types)
            await self._store.update_job(tenant, job.jid, total=total)
            fresh = await self._store.tenant(tenant.name) or tenant
            indexer = (await self._search.of(fresh)).indexer
            cursor, done = job.cursor, job.done
            while True:
                last, n = await self._store.reindex_chunk(
                    tenant, types, cursor, self._chunk, indexer.index, keys
                )
                if last is None:
                    break
                cursor, done = last, done + n
                await self._store.update_job(tenant, job.jid, cursor=cursor, done=done)
            ready = (
                sorted(keys)
                if keys
                else [c.key for c in await self._store.custom_params(tenant) if c.state != "ready"]
            )
            if ready:
                await self._store.mark_params_ready(tenant, ready)
            await self._store.update_job(tenant, job.jid, state="done", done=done, total=done)
            self._tenants.invalidate(tenant.name)
            log.info("reindex job %d of tenant %s done: %d resources", job.jid, tenant.name, done)
        except Exception as exc:
            log.exception("reindex job %d failed", job.jid)
            await self._store.update_job(tenant, job.jid, state="failed", error=str(exc)[:500])
