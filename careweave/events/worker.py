"""The delivery worker: sends queued notifications, in order per subscription, at least once.

Rules:
1. A worker leases subscriptions (``ev_subscription.lease_*``, with an expiry it renews while it
   works) whose oldest pending notification is due, and sends that subscription's queue oldest
   first; only the head is ever in flight, so a subscription's notifications arrive in order
   (and so in order per patient). Several workers (processes) share the queue through the
   database; a crashed worker's leases expire and another takes over.
2. Every attempt is recorded (``ev_attempt``). Success marks the notification done; a failure
   schedules the next attempt (:func:`~careweave.events.retry.next_attempt`: exponential
   backoff, full jitter, ``Retry-After``) and stops the subscription's queue until then; giving
   up moves it and everything queued behind it to the dead-letter list and the Subscription to
   ``error``. A delivered handshake makes a ``requested`` Subscription ``active``. Outcome,
   attempt and status change commit in one transaction.
3. A notification is marked done only after the channel confirmed it: a crash in between sends it
   again (receivers de-duplicate on ``X-Careweave-Event-Id`` / Bundle.id and event numbers).
4. Heartbeats: an active subscription with a heartbeat period that has sent nothing for that long
   gets a ``heartbeat`` notification queued.
5. Websocket notifications can only leave from the process holding the client's socket: a worker
   given ``bound`` (the (tenant key, subscription id) pairs with a client bound in this process)
   leases websocket subscriptions among those only, so any number of ``careweave serve``
   processes, each with its own clients, share the queue with ``careweave worker`` processes
   (which have no websocket channel). A subscription with no client bound anywhere keeps its
   notifications queued, in order, until one binds.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import random as randomlib
import time
import uuid as uuidlib
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import orjson

from careweave.events.channels.base import Channel, DeliveryResult, delivery_for
from careweave.events.render import classic_request, render_delivery, tenant_base
from careweave.events.retry import GiveUp, RetryPolicy, next_attempt
from careweave.events.status import write_status
from careweave.events.subscription import SubscriptionSpec, read_subscription
from careweave.search.index import IndexRows
from careweave.store.base import Store, Tenant, Transaction
from careweave.store.sql import events as events_sql
from careweave.store.sql.components import Sql

__all__ = ["DeliveryWorker", "WorkerConfig"]

log = logging.getLogger("careweave.events")

Index = Callable[[Tenant], Awaitable[Callable[[dict[str, Any]], IndexRows]]]
Bound = Callable[[], Sequence[tuple[int, str]]]
_WS = "websocket"
_MAX_BOUND = 500  # pairs per claim (the rest wait for the next round)


@dataclass(frozen=True, slots=True)
class _Target:
    """What sending to one subscription needs, read once per lease."""

    tenant: Tenant
    spec: SubscriptionSpec
    channel: Channel
    index: Callable[[dict[str, Any]], IndexRows]
    base: str


@dataclass(frozen=True, slots=True)
class _Outcome:
    head: events_sql.DeliveryRow
    result: DeliveryResult
    attempt: int
    started: int
    ended: int


@dataclass(frozen=True, slots=True)
class WorkerConfig:
    base_url: str
    policy: RetryPolicy = field(default_factory=RetryPolicy)
    lease_ms: int = 15_000
    concurrency: int = 32
    batch: int = 64
    poll_ms: int = 500
    signing_secret: bytes | None = None


class DeliveryWorker:
    def __init__(
        self,
        store: Store,
        channels: Mapping[str, Channel],
        index_of: Index,
        config: WorkerConfig,
        *,
        clock: Callable[[], int] = lambda: time.time_ns() // 1_000_000,
        random: Callable[[], float] = randomlib.random,
        owner: str | None = None,
        bound: Bound | None = None,
    ) -> None:
        self._store = store
        self._channels = dict(channels)
        self._bound = bound if _WS in self._channels else None
        # rule 5: with ``bound``, the websocket channel is claimed apart, among the bound pairs
        self._general = [c for c in self._channels if c != _WS or self._bound is None]
        self._index_of = index_of
        self._config = config
        self._clock = clock
        self._random = random
        self.owner = owner or f"worker-{uuidlib.uuid4()}"
        self._wake = asyncio.Event()
        self.sent = 0

    def wake(self) -> None:
        self._wake.set()

    async def run(self, stop: asyncio.Event) -> None:
        """Keep up to ``concurrency`` subscriptions' queues draining until ``stop`` is set."""
        running: dict[int, asyncio.Task[None]] = {}
        try:
            while not stop.is_set():
                self._wake.clear()
                try:
                    claimed = await self._claim(self._config.concurrency - len(running))
                except Exception:
                    log.exception("delivery worker failed; retrying")
                    claimed = []
                for sub in claimed:
                    running[sub.skey] = asyncio.create_task(self._drain(sub))
                    running[sub.skey].add_done_callback(_forget(running, sub.skey))
                if not running:
                    with contextlib.suppress(Exception):
                        await self._heartbeats()
                wait_ms = self._config.poll_ms if running else await self._idle_ms()
                waits: list[asyncio.Future[Any]] = [
                    asyncio.ensure_future(self._wake.wait()),
                    asyncio.ensure_future(stop.wait()),
                ]
                waits.extend(asyncio.ensure_future(asyncio.shield(t)) for t in running.values())
                try:
                    await asyncio.wait(waits, timeout=wait_ms / 1000, return_when=asyncio.FIRST_COMPLETED)
                finally:
                    for w in waits:
                        w.cancel()
        finally:
            if running:
                await asyncio.gather(*running.values(), return_exceptions=True)

    def _pairs(self) -> list[tuple[int, str]] | None:
        return list(self._bound())[:_MAX_BOUND] if self._bound is not None else None

    def _serves(self, sub: events_sql.SubscriptionRow, pairs: Sequence[tuple[int, str]] | None) -> bool:
        if sub.channel in self._general:
            return True
        return sub.channel == _WS and pairs is not None and (sub.tid, sub.sid) in pairs

    async def _idle_ms(self) -> int:
        general, pairs = self._general, self._pairs()

        def earliest(sql: Sql) -> int | None:
            found = [events_sql.next_due_ms(sql, general)]
            if pairs:
                found.append(events_sql.next_due_ms(sql, [_WS], pairs))
            return min((d for d in found if d is not None), default=None)

        due = await self._store.sql_read(earliest) if general or pairs else None
        poll = self._config.poll_ms
        if due is None:
            return poll
        return max(10, min(poll, due - self._clock()))  # a due head may be another worker's

    async def _claim(self, room: int) -> list[events_sql.SubscriptionRow]:
        if room <= 0:
            return []
        now, lease = self._clock(), self._config.lease_ms
        general, pairs = self._general, self._pairs()
        if not general and not pairs:
            return []

        def claim(sql: Sql) -> list[events_sql.SubscriptionRow]:
            claimed = events_sql.claim(sql, self.owner, general, now, lease, room)
            if pairs and len(claimed) < room:
                claimed += events_sql.claim(sql, self.owner, [_WS], now, lease, room - len(claimed), pairs)
            return claimed

        found: list[events_sql.SubscriptionRow] = await self._store.sql_write(claim)
        return found

    async def run_once(self) -> bool:
        """Lease what is due and send it all (tests, tools); True when something was tried."""
        claimed = await self._claim(self._config.concurrency)
        if not claimed:
            await self._heartbeats()
            return False
        await asyncio.gather(*(self._drain(sub) for sub in claimed), return_exceptions=True)
        return True

    async def _drain(self, sub: events_sql.SubscriptionRow) -> None:
        """Send a leased subscription's due notifications, oldest first, a batch at a time; the
        outcomes of a batch commit together (a crash before that sends them again: rule 3)."""
        released = False
        try:
            target = await self._target(sub)
            if target is None:
                return
            leased_until = self._clock() + self._config.lease_ms
            while True:
                now = self._clock()
                if leased_until - now < self._config.lease_ms // 2:
                    leased_until = now + self._config.lease_ms
                    await self._store.sql_write(
                        functools.partial(
                            events_sql.renew, owner=self.owner, skeys=[sub.skey], until_ms=leased_until
                        )
                    )
                batch = await self._store.sql_read(
                    functools.partial(
                        events_sql.due_batch, skey=sub.skey, now_ms=now, limit=self._config.batch
                    )
                )
                if not batch:
                    return
                outcomes = []
                for head, rows in batch:
                    outcome = await self._send(sub, target, head, rows)
                    outcomes.append(outcome)
                    if not outcome.result.ok:
                        break
                record = self._record(sub, target, outcomes)
                released = await self._store.sql_write_tenant(target.tenant, record)
                self.sent += sum(1 for o in outcomes if o.result.ok)
                if released:
                    return
        except Exception:
            log.exception("delivery of subscription %s failed unexpectedly", sub.sid)
        finally:
            if not released:
                await self._store.sql_write(lambda sql: events_sql.release(sql, self.owner, sub.skey))

    async def _target(self, sub: events_sql.SubscriptionRow) -> _Target | None:
        store = self._store
        tenant = await store.tenant_by_key(sub.tid)
        stored = await store.read(tenant, "Subscription", sub.sid) if tenant is not None else None
        if tenant is None or stored is None or stored.deleted or stored.body is None:
            return None  # being deleted: the dispatcher drops its queue
        spec, _ = read_subscription(orjson.loads(stored.body))
        channel = self._channels.get(sub.channel)
        if spec is None or channel is None:
            return None
        index = await self._index_of(tenant)
        return _Target(tenant, spec, channel, index, tenant_base(self._config.base_url, tenant.name))

    async def _send(
        self,
        sub: events_sql.SubscriptionRow,
        target: _Target,
        head: events_sql.DeliveryRow,
        rows: Sequence[events_sql.EventRow],
    ) -> _Outcome:
        """Send one notification (rule 3: never raises for a failed delivery)."""
        classic = target.spec.topic is None and sub.channel == "rest-hook" and head.kind == "event"
        if classic:
            method, endpoint, body = await classic_request(self._store, target.tenant, target.spec, rows)
        else:
            body = await render_delivery(
                self._store, target.tenant, target.spec, sub.status, head, rows, target.base
            )
        attempt = head.attempts + 1
        numbers = tuple(r.number for r in rows) if head.kind == "event" else ()
        delivery = delivery_for(
            target.spec,
            tenant=target.tenant.name,
            delivery_id=head.uuid,
            body=body,
            event_numbers=numbers,
            source=next((r.source for r in rows if r.source), None),
            attempt=attempt,
            signing_secret=self._config.signing_secret,
        )
        if classic:
            delivery = replace(delivery, method=method, endpoint=endpoint)
        started = self._clock()
        try:
            result = await target.channel.deliver(delivery)
        except Exception as exc:  # a channel must not raise; if one does, it is a retryable failure
            result = DeliveryResult(False, error=f"{type(exc).__name__}", retryable=True)
        return _Outcome(head, result, attempt, started, self._clock())

    def _record(
        self, sub: events_sql.SubscriptionRow, target: _Target, outcomes: Sequence[_Outcome]
    ) -> Callable[[Sql, Transaction], bool]:
        """Rule 2: every attempt, its outcome and a status change, in one transaction; the lease
        goes in it too when nothing more is due (True: released)."""
        plans = [self._plan(o) for o in outcomes]

        def write(sql: Sql, tx: Transaction) -> bool:
            for outcome, (state, due, first, reason) in zip(outcomes, plans, strict=True):
                head, result = outcome.head, outcome.result
                error = result.error or (f"HTTP {result.status}" if result.status else None)
                events_sql.record_attempt(
                    sql,
                    head,
                    attempt=outcome.attempt,
                    at_ms=outcome.started,
                    ok=result.ok,
                    status=result.status,
                    error=error,
                    duration_ms=max(0, outcome.ended - outcome.started),
                )
                events_sql.finish_delivery(
                    sql,
                    head,
                    state=state,
                    attempts=outcome.attempt,
                    due_ms=due,
                    first_attempt_ms=first,
                    error=reason,
                    now_ms=outcome.ended,
                )
                if state == "done" and head.kind == "handshake":
                    write_status(sql, tx, sub.skey, sub.sid, "active", error=None, index=target.index)
                elif state == "dead":
                    write_status(sql, tx, sub.skey, sub.sid, "error", error=reason, index=target.index)
                    log.warning("subscription %s: deliveries gave up (%s)", sub.sid, reason)
            following = events_sql.delivery_head(sql, sub.skey)
            if following is None or following.due_ms > outcomes[-1].ended or plans[-1][0] != "done":
                events_sql.release(sql, self.owner, sub.skey)
                return True
            return False

        return write

    def _plan(self, outcome: _Outcome) -> tuple[str, int, int, str | None]:
        """(state, due, first attempt, reason) after one attempt."""
        head, result = outcome.head, outcome.result
        first = head.first_attempt_ms or outcome.started
        if result.ok:
            return "done", head.due_ms, first, None
        error = result.error or (f"HTTP {result.status}" if result.status else None)
        decision = next_attempt(
            self._config.policy,
            attempt=outcome.attempt,
            first_attempt_ms=first,
            now_ms=outcome.ended,
            random=self._random,
            retryable=result.retryable,
            retry_after_s=result.retry_after_s,
        )
        if isinstance(decision, GiveUp):
            return "dead", outcome.ended, first, f"{decision.reason}; last error: {error}"
        return "pending", decision.at_ms, first, error

    async def _heartbeats(self) -> None:
        now, pairs = self._clock(), self._pairs()
        if not self._general and not pairs:
            return

        def serves(sub: events_sql.SubscriptionRow) -> bool:
            return self._serves(sub, pairs)

        def queue(sql: Sql) -> int:
            made = 0
            for sub in events_sql.subscriptions(sql):
                if sub.status != "active" or not sub.heartbeat_s or not serves(sub):
                    continue
                if now - sub.last_sent_ms < sub.heartbeat_s * 1000:
                    continue
                if events_sql.delivery_head(sql, sub.skey) is not None:
                    continue
                events_sql.insert_delivery(
                    sql,
                    sub.skey,
                    sub.tid,
                    uuid=str(uuidlib.uuid4()),
                    kind="heartbeat",
                    numbers=(sub.last_number, sub.last_number),
                    now_ms=now,
                )
                events_sql.touch(sql, sub.skey, now)
                made += 1
            return made

        if await self._store.sql_read(lambda sql: _heartbeat_due(sql, now, serves)):
            await self._store.sql_write(queue)


def _forget(running: dict[int, asyncio.Task[None]], skey: int) -> Callable[[asyncio.Task[None]], None]:
    def done(_: asyncio.Task[None]) -> None:
        running.pop(skey, None)

    return done


def _heartbeat_due(sql: Sql, now: int, serves: Callable[[events_sql.SubscriptionRow], bool]) -> bool:
    for sub in events_sql.subscriptions(sql):
        live = sub.status == "active" and sub.heartbeat_s and serves(sub)
        if live and now - sub.last_sent_ms >= (sub.heartbeat_s or 0) * 1000:
            return True
    return False
