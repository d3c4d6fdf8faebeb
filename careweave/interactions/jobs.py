"""The background job runner: reindexing (custom search parameters, $reindex) and Bulk Data
exports.

Rules:
1. Jobs live in the store (state, cursor, progress, payload), so a job interrupted by a restart
   resumes: a reindex from its cursor, an export from the first resource type it had not finished.
   The runner polls for queued jobs and can be woken at once through a :class:`JobSignal`.
2. A reindex works in chunks of ``chunk`` resources, each in one write transaction that reads the
   resources and writes their new index rows; progress is saved after every chunk. When a reindex
   for custom parameters finishes they become searchable (state ready).
3. An export reads each type's resources page by page (keyset paging on the search engine) and
   appends them to an NDJSON file: memory stays flat. A cancelled job stops at the next page.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any
from urllib.parse import parse_qsl

import orjson

from careweave.interactions.compartments import patient_membership
from careweave.interactions.context import Services
from careweave.search.params import SearchContext, parse_search
from careweave.search.plan import And, LastUpdated, Or, Predicate, QueryPlan, TypeIn
from careweave.search.values import POS_INF
from careweave.store.base import Job, Tenant

__all__ = ["JobRunner", "JobSignal"]

log = logging.getLogger("careweave.jobs")

_KINDS = ("reindex", "export")
_PAGE = 1000


class JobSignal:
    """Tells the runner there is work (set from any coroutine of the server's event loop)."""

    def __init__(self) -> None:
        self.event = asyncio.Event()

    def set(self) -> None:
        self.event.set()


class JobRunner:
    def __init__(
        self,
        services: Services,
        signal: JobSignal,
        *,
        poll_seconds: float = 1.0,
        chunk: int = 200,
        lease_seconds: float = 30.0,
    ) -> None:
        self._services = services
        # a running job whose runner reported no progress for this long is taken over (its process
        # died); every chunk or page reports progress, renewing the lease
        self.lease_ms = int(lease_seconds * 1000)
        self._signal = signal
        self._poll = poll_seconds
        self._chunk = chunk

    def wake(self) -> None:
        self._signal.set()

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                worked = await self.run_once()
            except Exception:
                log.exception("job runner failed; retrying")
                worked = False
            if not worked:
                self._signal.event.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._signal.event.wait(), self._poll)

    async def run_once(self) -> bool:
        """Run every queued job of every tenant once; True when there was one."""
        store = self._services.store
        worked = False
        for tenant in await store.tenants():
            job = await store.claim_job(tenant, _KINDS, self.lease_ms)
            while job is not None:
                worked = True
                try:
                    if job.kind == "reindex":
                        await self._reindex(tenant, job)
                    else:
                        await self._export(tenant, job)
                except Exception as exc:
                    log.exception("%s job %d failed", job.kind, job.jid)
                    await store.update_job(tenant, job.jid, state="failed", error=str(exc)[:500])
                job = await store.claim_job(tenant, _KINDS, self.lease_ms)
        return worked

    # -- reindex --------------------------------------------------------------------------------
    async def _reindex(self, tenant: Tenant, job: Job) -> None:
        store = self._services.store
        keys = frozenset(job.payload["keys"]) if job.payload.get("keys") else None
        types = list(job.payload.get("types") or [])
        total = job.total or await store.count(tenant, types)
        await store.update_job(tenant, job.jid, total=total)
        fresh = await store.tenant(tenant.name) or tenant
        indexer = (await self._services.search.of(fresh)).indexer
        cursor, done = job.cursor, job.done
        while True:
            last, n = await store.reindex_chunk(tenant, types, cursor, self._chunk, indexer.index, keys)
            if last is None:
                break
            cursor, done = last, done + n
            await store.update_job(tenant, job.jid, cursor=cursor, done=done)
        ready = (
            sorted(keys) if keys else [c.key for c in await store.custom_params(tenant) if c.state != "ready"]
        )
        if ready:
            await store.mark_params_ready(tenant, ready)
        await store.update_job(tenant, job.jid, state="done", done=done, total=done)
        self._services.tenants.invalidate(tenant.name)
        log.info("reindex job %d of tenant %s done: %d resources", job.jid, tenant.name, done)

    # -- export ---------------------------------------------------------------------------------
    async def _export(self, tenant: Tenant, job: Job) -> None:
        services, store, files = self._services, self._services.store, self._services.files
        payload: dict[str, Any] = dict(job.payload)
        types = await self._export_types(payload)
        patients = await self._export_patients(tenant, payload)
        filters = await self._type_filters(tenant, payload)
        if not job.total:
            await store.update_job(tenant, job.jid, total=await store.count(tenant, types))
        done = job.done
        for type_ in types:
            if type_ in payload["done"]:
                continue
            where: Predicate = TypeIn((type_,))
            if payload["level"] != "system" or patients is not None:
                where = patient_membership(services, patients, [type_])
            if payload.get("since") is not None:
                where = And((where, LastUpdated("ge", payload["since"], POS_INF)))
            if type_ in filters:
                where = And((where, Or(tuple(filters[type_]))))
            name = f"{type_}.ndjson"
            count, cancelled = await self._write_type(tenant, job, type_, where, name, done)
            if cancelled:
                files.remove_job(tenant.key, job.jid)
                return
            done += count
            if count:
                files.finish(tenant.key, job.jid, name)
                payload["output"].append({"type": type_, "file": name, "count": count})
            else:
                files.discard(tenant.key, job.jid, name)
            payload["done"].append(type_)
            await store.update_job(tenant, job.jid, payload=payload, done=done)
        await store.update_job(tenant, job.jid, state="done", done=done, payload=payload)
        log.info("export job %d of tenant %s done: %d resources", job.jid, tenant.name, done)

    async def _write_type(
        self, tenant: Tenant, job: Job, type_: str, where: Predicate, name: str, done: int
    ) -> tuple[int, bool]:
        store = self._services.store
        count = 0
        after: tuple[Any, ...] | None = None
        with self._services.files.create(tenant.key, job.jid, name) as out:
            while True:
                page = await store.search(tenant, QueryPlan((type_,), where, count=_PAGE, after=after))
                for resource in page.matches:
                    out.write(resource.body or b"{}")
                    out.write(b"\n")
                count += len(page.matches)
                current = next((j for j in await store.jobs(tenant, "export") if j.jid == job.jid), None)
                if current is None or current.state == "cancelled":
                    return count, True
                await store.update_job(tenant, job.jid, done=done + count)
                if page.next_after is None:
                    return count, False
                after = page.next_after

    async def _export_types(self, payload: dict[str, Any]) -> list[str]:
        services = self._services
        if payload["types"]:
            types = list(payload["types"])
        elif payload["level"] == "system":
            types = sorted(services.resource_types)
        else:
            types = sorted(set(services.compartments.get("Patient", {})) | {"Patient"})
        if payload["level"] != "system":
            allowed = set(services.compartments.get("Patient", {})) | {"Patient"}
            types = [t for t in types if t in allowed]
        return types

    async def _export_patients(self, tenant: Tenant, payload: dict[str, Any]) -> list[str] | None:
        """The patients an export is limited to (a Group's members, the ``patient`` parameter);
        None for every patient."""
        wanted: list[str] | None = list(payload.get("patients") or []) or None
        if payload["level"] != "group":
            return wanted
        group = await self._services.store.read(tenant, "Group", payload["group"])
        members: list[str] = []
        if group is not None and group.body is not None:
            for member in orjson.loads(group.body).get("member", ()):
                ref = (member.get("entity") or {}).get("reference", "")
                if ref.startswith("Patient/"):
                    members.append(ref.split("/", 1)[1])
        return [m for m in members if wanted is None or m in wanted]

    async def _type_filters(self, tenant: Tenant, payload: dict[str, Any]) -> dict[str, list[Predicate]]:
        services = self._services
        registry = (await services.search.of(tenant)).registry
        ctx = SearchContext(registry, services.resource_types, payload.get("base", ""), services.expand)
        out: dict[str, list[Predicate]] = {}
        for text in payload.get("filters") or []:
            type_, _, query = text.partition("?")
            parsed = parse_search(
                (type_,), parse_qsl(query, keep_blank_values=True), ctx, count=1, max_count=1, strict=True
            )
            if parsed.plan.where is not None:
                out.setdefault(type_, []).append(parsed.plan.where)
        return out
