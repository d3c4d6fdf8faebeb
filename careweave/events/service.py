"""The events service: the dispatcher and a delivery worker, run together as one background task.

``careweave serve`` runs one in-process (setting ``events_worker``); ``careweave worker`` runs the
same service as its own process. Several may run at once: the dispatcher's cursor moves by
compare-and-set and deliveries are leased per subscription (see dispatch.py and worker.py).

The server wakes the dispatcher after each commit (:meth:`EventService.wake`, wired to
``Services.wake_events``); other processes' commits are found by polling every ``poll_ms``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from careweave.errors import Issue
from careweave.events.admission import check_servable
from careweave.events.channels.base import Channel
from careweave.events.channels.hookclient import FastRestHookChannel, HookClient
from careweave.events.dispatch import Dispatcher, StatusRequest, TenantTools, tenant_topics
from careweave.events.mpi_feed import MPI_TOPIC, MpiFeed
from careweave.events.retry import RetryPolicy
from careweave.events.status import write_status
from careweave.events.topic import Topic
from careweave.events.websocket_hub import WebsocketHub
from careweave.events.worker import DeliveryWorker, WorkerConfig
from careweave.fhir.fhirpath import FhirPathEngine
from careweave.store.base import Store, Tenant, Transaction
from careweave.store.sql import events as events_sql
from careweave.store.sql.components import Sql

__all__ = ["EventConfig", "EventService"]

log = logging.getLogger("careweave.events")
_WS_POLL_MS = 100


@dataclass(frozen=True, slots=True)
class EventConfig:
    base_url: str
    policy: RetryPolicy = field(default_factory=RetryPolicy)
    lease_ms: int = 15_000
    poll_ms: int = 500
    concurrency: int = 32
    signing_secret: bytes | None = None
    nats_url: str = ""
    builtin_topics: tuple[Topic, ...] = ()


def wall_ms() -> int:
    return time.time_ns() // 1_000_000


class EventService:
    def __init__(
        self,
        store: Store,
        tools_of: Callable[[Tenant], Awaitable[TenantTools]],
        engine: FhirPathEngine,
        config: EventConfig,
        *,
        clock: Callable[[], int] = wall_ms,
        extra_channels: dict[str, Channel] | None = None,
    ) -> None:
        self._store = store
        self._tools_of = tools_of
        self._config = config
        self._clock = clock
        self._engine = engine
        self._extra = dict(extra_channels or {})
        self._wake = asyncio.Event()
        self.dispatcher = Dispatcher(
            store,
            tools_of,
            engine,
            builtin_topics=config.builtin_topics,
            clock=clock,
            on_status=self._write_statuses,
        )
        self.worker: DeliveryWorker | None = None
        self.mpi_feed = MpiFeed(
            store, self._mpi_subscribers, clock, position=lambda: self.dispatcher.position
        )
        self.hub = WebsocketHub(
            store, config.signing_secret or b"", config.base_url, store.tenant, on_bind=self._bound
        )

    async def _mpi_subscribers(self, tid: int) -> list[str]:
        return await self.dispatcher.topic_subscribers(tid, MPI_TOPIC)

    async def admit(self, resource: dict[str, Any], tenant: Tenant) -> list[Issue]:
        """A Subscription about to be written: the issues that stop this tenant's subscription from
        being served (its criteria with the tenant's parameters; its topic among the tenant's)."""
        tools = await self._tools_of(tenant)
        builtin = self._config.builtin_topics
        topics = await tenant_topics(self._store, tenant, tools.ctx, self._engine, builtin)
        return check_servable(resource, tools.ctx, topics)

    def wake(self) -> None:
        """A commit happened in this process: dispatch now rather than at the next poll."""
        self._wake.set()

    async def _index_of(self, tenant: Tenant) -> Callable[[dict[str, Any]], Any]:
        return (await self._tools_of(tenant)).indexer.index

    async def _bound(self, tenant: Tenant, sid: str) -> None:
        """A websocket client bound: its subscription's waiting notifications are due now."""
        now = self._clock()
        await self._store.sql_write(lambda sql: events_sql.due_now(sql, tenant.key, sid, now))
        if self.worker is not None:
            self.worker.wake()

    async def run(self, stop: asyncio.Event, *, websocket: bool = True) -> None:
        """Dispatch and deliver until ``stop`` is set; ``websocket``: deliver on this process's
        websocket connections (``careweave serve``; a separate worker process has none)."""
        async with contextlib.AsyncExitStack() as stack:
            client = HookClient()
            stack.push_async_callback(client.aclose)
            channels: dict[str, Channel] = {"rest-hook": FastRestHookChannel(client), **self._extra}
            if websocket:
                channels["websocket"] = self.hub
            if self._config.nats_url:
                channels["nats"] = await stack.enter_async_context(_nats(self._config.nats_url))
            config = self._worker_config()
            bound = self.hub.bound_pairs if websocket else None
            worker = DeliveryWorker(
                self._store, channels, self._index_of, config, clock=self._clock, bound=bound
            )
            self.worker = worker
            tasks = [
                asyncio.create_task(self._dispatch_loop(stop, worker), name="careweave-dispatch"),
                asyncio.create_task(worker.run(stop), name="careweave-deliver"),
            ]
            try:
                await asyncio.gather(*tasks)
            finally:
                for task in tasks:
                    task.cancel()

    async def run_websocket(self, stop: asyncio.Event) -> None:
        """Deliver on this process's websocket clients only, until ``stop`` is set: for a
        ``careweave serve`` whose dispatching and other channels run in ``careweave worker``
        processes (worker.py rule 5). New events are found by polling (every ``poll_ms``, at most
        100 ms: one small query, made only while a client is bound here)."""
        config = self._worker_config()
        worker = DeliveryWorker(
            self._store,
            {"websocket": self.hub},
            self._index_of,
            replace(config, poll_ms=min(config.poll_ms, _WS_POLL_MS)),
            clock=self._clock,
            bound=self.hub.bound_pairs,
        )
        self.worker = worker
        await worker.run(stop)

    def _worker_config(self) -> WorkerConfig:
        return WorkerConfig(
            base_url=self._config.base_url,
            policy=self._config.policy,
            lease_ms=self._config.lease_ms,
            concurrency=self._config.concurrency,
            poll_ms=self._config.poll_ms,
            signing_secret=self._config.signing_secret,
        )

    async def _dispatch_loop(self, stop: asyncio.Event, worker: DeliveryWorker) -> None:
        while not stop.is_set():
            self._wake.clear()
            try:
                queued = await self.dispatcher.run_once()
                fed = await self.mpi_feed.run_once()
                queued = max(queued, fed) if min(queued, fed) < 0 else queued + fed
            except Exception:
                log.exception("dispatcher failed; retrying")
                queued = -1
            if queued > 0:
                worker.wake()
            if queued >= 0:
                continue
            waits = [asyncio.ensure_future(self._wake.wait()), asyncio.ensure_future(stop.wait())]
            try:
                await asyncio.wait(
                    waits, timeout=self._config.poll_ms / 1000, return_when=asyncio.FIRST_COMPLETED
                )
            finally:
                for w in waits:
                    w.cancel()

    async def _write_statuses(self, requests: Sequence[StatusRequest]) -> None:
        for tenant, sid, status, error in requests:
            index = await self._index_of(tenant)
            await self._store.sql_write_tenant(tenant, _status_job(tenant.key, sid, status, error, index))
        self.wake()


def _status_job(
    tid: int, sid: str, status: str, error: str | None, index: Callable[[dict[str, Any]], Any]
) -> Callable[[Sql, Transaction], None]:
    def job(sql: Sql, tx: Transaction) -> None:
        row = events_sql.subscription(sql, tid, sid)
        if row is not None:
            write_status(sql, tx, row.skey, sid, status, error=error, index=index)

    return job


@contextlib.asynccontextmanager
async def _nats(url: str) -> Any:
    import nats

    from careweave.events.channels.jetstream import JetStreamChannel, StreamSpec, ensure_stream

    client = await nats.connect(url, connect_timeout=5)
    try:
        js = client.jetstream()
        spec = StreamSpec()
        await ensure_stream(js, spec)
        yield JetStreamChannel(js, spec)
    finally:
        await client.close()
