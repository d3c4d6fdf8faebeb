"""The HL7 v2 gateway service: durable receipt, ACK after the write, duplicates, error queue,
replay, routing and per-patient order. The MLLP listener and ``POST /hl7v2`` both call it.

Rules:
1. Nothing received is lost: every message is stored raw, with its status, before any answer is
   sent (``received`` -> ``processed`` | ``error`` | ``rejected``; store/sql/hl7.py). A message
   whose header cannot be read is stored as ``rejected`` too (in the default tenant).
2. Original mode (MSH-15 and MSH-16 empty): the message row, with its final status and ACK, and
   the FHIR resources it maps to commit in one transaction; then AA is sent. A message that
   cannot be mapped or validated commits as ``error`` (AE), one refused for what it is (header,
   type, version) as ``rejected`` (AR).
   Every write of a message goes through the group commit (:mod:`.commit`): messages handed
   over together share one transaction and its COMMIT, and each is answered only after it.
3. Enhanced mode (MSH-15 or MSH-16 valued): the raw message is committed as ``received`` and the
   commit ACK (CA) is sent at once if MSH-15 asks for it; processing follows in its own task
   (resources and the final status in one transaction), holding the message's place in line;
   the application ACK (MSH-16) goes over a new connection to the route's return address,
   retried with backoff (:mod:`.delivery`), or is kept in the row when there is none. At most
   ``backlog`` messages wait between the two; more slow the senders down. A crash (or a stop)
   between the two commits leaves the row ``received``: :meth:`Gateway.recover` processes such
   rows at start-up (mapping is idempotent: deterministic ids, PUT upserts, and an update that
   changes nothing stores no new version). ``POST /hl7v2`` waits for the processing and answers
   the application ACK.
4. Duplicates (same MSH-10 from the same MSH-3/MSH-4, in the same tenant) are answered with the
   stored reply and not processed again.
5. Writes go through careweave's validation, indexing and versioning (``prepare`` and
   ``writes.update``, the steps of a transaction Bundle of PUTs; :mod:`.resources`), so they are
   searchable and appear in the change log; the mapper adds a Provenance naming the source
   message. What a merge (A40) said is kept by later messages (``merge_patient``).
6. Order per patient: each message takes its place in the queue of every Patient it writes when
   it arrives (:class:`~careweave.gateway.ordering.KeyedLocks`) and is processed when first in
   line; messages about different patients run in parallel. With worker processes
   (``hl7_workers``) the place is taken in arrival order after the worker's mapping
   (:class:`~careweave.gateway.ordering.Turnstile`).
7. MSH-4 (upper case) picks the tenant through the routes (``careweave hl7 route``); unrouted
   facilities go to the default tenant. ``POST /t/{tenant}/hl7v2`` names the tenant itself.
8. Nothing here logs message content: only row ids, message types and outcomes.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo

from careweave.errors import CareweaveError, Category, error
from careweave.gateway.commit import Coming, GroupCommit
from careweave.gateway.delivery import AckSender, DeliveryConfig
from careweave.gateway.mllp import Peer
from careweave.gateway.ordering import KeyedLocks, Ticket, Turnstile
from careweave.gateway.resources import Item, Resources, Written, store
from careweave.gateway.work import ControlIds, Work, failure_reason, glance, now_ms, read, study
from careweave.gateway.workers import PreparePool, WorkerGone
from careweave.hl7v2.ack import ACCEPTED, Outcome, ack_wanted, build_ack, is_enhanced, outcome_of
from careweave.hl7v2.batch import build_batch_ack, is_batch, split_batch
from careweave.hl7v2.errors import Hl7v2Error
from careweave.hl7v2.mapping import MapOptions
from careweave.interactions.context import Services
from careweave.store.base import Tenant, Transaction
from careweave.store.sql import hl7 as sql
from careweave.store.sql.components import Sql
from careweave.store.sql.hl7 import AckDelivery, InboxRow, NewMessage, Route

__all__ = ["Gateway", "GatewayConfig", "Received"]

log = logging.getLogger("careweave.gateway")

RECEIVED, PROCESSED, ERROR, REJECTED = "received", "processed", "error", "rejected"
STATUSES = (RECEIVED, PROCESSED, ERROR, REJECTED)
ACK_STATES = ("pending", "sent", "failed", "kept")  # of the application ACK (delivery.py)


@dataclass(frozen=True, slots=True)
class GatewayConfig:
    """Deployment choices: the time zone of feeds without offsets, the default tenant, how long
    routes are cached, and how application ACKs are delivered (timeout, attempts, backoff)."""

    timezone: tzinfo
    default_tenant: str = "default"
    route_cache_seconds: float = 1.0
    ack_timeout: float = 10.0
    ack_attempts: int = 8  # application ACK delivery attempts before it is failed (delivery.py)
    ack_backoff: float = 2.0  # seconds before the first retry, doubling
    ack_backoff_max: float = 300.0
    backlog: int = 1000  # enhanced-mode messages received (CA sent) and not yet processed, at most
    commit_linger: float = 0.002  # seconds a write may wait for others to share its commit (commit.py)
    commit_group: int = 64  # messages written under one commit, at most


@dataclass(frozen=True, slots=True)
class Received:
    """What became of one message (or batch): ``reply`` is the answer on the connection (``b""``:
    none), ``application`` the application ACK (what ``POST /hl7v2`` answers)."""

    reply: bytes
    application: bytes
    status: str
    id: int | None = None
    duplicate: bool = False


def _status_of(failure: BaseException) -> str:
    """``rejected`` for what a message is (header, type, version), ``error`` for its content."""
    outcome = outcome_of(failure)
    return REJECTED if outcome.category is Category.UNSUPPORTED_MEDIA else ERROR


class Gateway:
    """The gateway service (rules 1-8); built by the composition root, one per process."""

    def __init__(
        self,
        services: Services,
        config: GatewayConfig,
        *,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        pool: PreparePool | None = None,
    ) -> None:
        self.services = services
        self.config = config
        self._options = MapOptions(timezone=config.timezone)
        self._clock = clock
        self._locks = KeyedLocks()
        self._turnstile = Turnstile()
        self._control_id = ControlIds()
        self._resources = Resources(services)
        self._pool = pool
        self._routes: dict[str, Route] = {}
        self._routes_until = 0.0
        c = config
        delivery = DeliveryConfig(c.ack_timeout, c.ack_attempts, c.ack_backoff, c.ack_backoff_max)
        self._acks_out = AckSender(services.store, delivery, self._return_address)
        self._processing: set[asyncio.Task[None]] = set()  # enhanced mode, after the CA
        self._in_flight: set[int] = set()  # ids of received messages being processed
        self._backlog = asyncio.Semaphore(config.backlog)
        self._group = GroupCommit(services.store, linger=config.commit_linger, max_group=config.commit_group)

    # -- receiving --------------------------------------------------------------------------------
    async def handle(self, payload: bytes, peer: Peer) -> bytes:
        """The MLLP handler: one frame (a message or a batch) in, the reply out."""
        source = f"mllp:{peer.host}:{peer.port}"
        return (await self.receive(payload, source)).reply

    async def receive(
        self, payload: bytes, source: str, tenant: Tenant | None = None, *, wait: bool = False
    ) -> Received:
        """Take one message or one batch (FHS/BHS); ``tenant`` overrides the routes. ``wait``:
        process enhanced-mode messages before answering too (``POST /hl7v2`` answers the
        application ACK)."""
        if is_batch(payload):
            return await self._batch(payload, source, tenant, wait)
        return await self._one_raw(payload, source, tenant, wait)

    async def _one_raw(self, raw: bytes, source: str, forced: Tenant | None, wait: bool) -> Received:
        coming = self._group.coming()  # it may share the commit of the messages ahead of it
        try:
            return await self._one_work(raw, source, forced, wait, coming)
        finally:
            coming.done()

    async def _one_work(
        self, raw: bytes, source: str, forced: Tenant | None, wait: bool, coming: Coming
    ) -> Received:
        if self._pool is None or len(raw) > self._pool.MAX_REQUEST:
            return await self._one(study(raw, source, self._options), forced, wait, None, coming)
        number = self._turnstile.take()  # rule 6: the place in line is taken on arrival
        try:
            work = glance(raw, source)  # the worker parses the rest
            tenant = forced or await self._tenant_for(work.facility)
            if work.failure is None and tenant.params_generation == 0:
                profiles = bool(tenant.setting("validate_profiles", False))
                try:
                    mapped = await self._pool.map_and_prepare(raw, self._options, profiles)
                    if mapped.failure is not None:  # read whole, as without workers
                        work = read(raw, source)
                        tenant = forced or await self._tenant_for(work.facility)
                    work.mapped = mapped if work.failure is None else None
                    work.failure = work.failure or mapped.error()
                except WorkerGone:  # the workers stopped: this process does their work
                    work = study(raw, source, self._options)
            elif work.failure is None:  # the tenant's own search parameters: all in this process
                work = study(raw, source, self._options)
            async with self._turnstile.turn(number):
                ticket = self._locks.enter(work.keys)
        finally:
            self._turnstile.give_up(number)
        return await self._one(work, tenant, wait, ticket, coming)

    async def _batch(self, payload: bytes, source: str, tenant: Tenant | None, wait: bool) -> Received:
        try:
            batch = split_batch(payload)
        except Hl7v2Error as exc:
            return await self._one(Work(payload, source, None, None, exc, "", "", "", "batch"), tenant, wait)
        results = [await self._one_raw(m, source, tenant, wait) for m in batch.messages]
        now, control = self._clock(), self._control_id()
        replies = [r.reply for r in results if r.reply]
        applications = [r.application for r in results if r.application]
        statuses = [r.status for r in results]
        worst = next((s for s in statuses if s in (ERROR, REJECTED)), statuses[0] if statuses else PROCESSED)
        return Received(
            build_batch_ack(batch, replies, timestamp=now, control_id=control),
            build_batch_ack(batch, applications, timestamp=now, control_id=control),
            worst,
        )

    async def _one(
        self,
        work: Work,
        forced: Tenant | None,
        wait: bool,
        ticket: Ticket | None = None,
        coming: Coming | None = None,
    ) -> Received:
        if ticket is None:
            ticket = self._locks.enter(work.keys)  # rule 6: our place in line is taken now
        handed_over = False
        try:
            tenant = forced or await self._tenant_for(work.facility)
            if work.ready and work.enhanced and not wait:
                if coming is not None:
                    coming.done()
                received, handed_over = await self._enhanced(tenant, work, ticket)
                return received
            if coming is not None:
                coming.done()  # ready to write, or waiting for a message ahead (maybe in the group)
            await self._locks.wait(ticket)
            if not work.ready:
                return await self._refuse(tenant, work, work.failure or Hl7v2Error("no mapping"))
            if work.enhanced:
                return await self._enhanced_now(tenant, work)
            return await self._original(tenant, work)
        finally:
            if not handed_over:
                self._locks.leave(ticket)

    def refusal(self, payload: bytes, exc: BaseException) -> bytes:
        """The AR for a message the gateway could not take (nothing was stored: send it again)."""
        return build_ack(payload, outcome_of(exc), timestamp=self._clock(), control_id=self._control_id())

    def _acks(self, work: Work, outcome: Outcome) -> tuple[bytes, bytes]:
        """(reply on the connection, application ACK) for an outcome (rules 2-3)."""
        now, control = self._clock(), self._control_id()
        source = work.message if work.message is not None else work.raw
        application = build_ack(source, outcome, timestamp=now, control_id=control)
        message = work.message
        if message is None or not is_enhanced(message):
            return application, application
        # committed (CA) unless refused for what it is (CR); content errors go in the application ACK
        committed = outcome if outcome.category is Category.UNSUPPORTED_MEDIA else ACCEPTED
        if not ack_wanted(message, committed, commit=True):
            return b"", application
        return build_ack(message, committed, commit=True, timestamp=now, control_id=control), application

    def _new(
        self,
        tenant: Tenant,
        work: Work,
        status: str,
        reason: str | None = None,
        reply: bytes | None = None,
        app_ack: bytes | None = None,
        app_ack_state: str | None = None,
    ) -> NewMessage:
        return NewMessage(
            tenant.key, work.sender, work.facility, work.control_id, work.kind, status, now_ms(),
            work.source, work.raw, reason, reply, app_ack if app_ack_state else None, app_ack_state,
        )  # fmt: skip

    async def _refuse(self, tenant: Tenant, work: Work, failure: Exception) -> Received:
        """A message that cannot be read or mapped: stored as rejected or error, in one commit."""
        outcome = outcome_of(failure)
        status = _status_of(failure)
        reply, application = self._acks(work, outcome)
        app_state = self._app_ack_state(work, outcome)
        new = self._new(tenant, work, status, failure_reason(outcome), reply, application, app_state)

        def job(conn: Sql) -> InboxRow | int:
            claimed = _claim(conn, new)
            if isinstance(claimed, InboxRow) or claimed > 0:
                return claimed
            sql.set_outcome(conn, new.tid, -claimed, status=status, reason=new.reason, reply=reply,
                            app_ack=new.app_ack, app_ack_state=app_state, now_ms=new.received_ms)  # fmt: skip
            return -claimed  # left received by a crash, or rejected before: now settled

        done = await self._group.write(tenant, lambda conn, tx: job(conn))
        if isinstance(done, InboxRow):
            return self._duplicate(done)
        log.info("hl7v2 message %d (%s) %s", done, work.kind or "unreadable", status)
        self._deliver(tenant, work, done, application, app_state)
        return Received(reply, application, status, done)

    def _duplicate(self, row: InboxRow) -> Received:
        log.info("hl7v2 message %d received again: answered with the stored reply", row.id)
        application = row.app_ack or row.reply or b""
        return Received(row.reply or b"", application, row.status, row.id, duplicate=True)

    async def _original(self, tenant: Tenant, work: Work) -> Received:
        """Rule 2: the row and the resources in one transaction."""
        try:
            prepared = await self._resources.prepared(tenant, work.bundle, work.mapped)
        except Exception as exc:  # validation (CareweaveError) or a bug: the error queue
            return await self._refuse(tenant, work, exc)
        reply, application = self._acks(work, ACCEPTED)
        new = self._new(tenant, work, PROCESSED, None, reply)

        known, remake = self._resources.stored, await self._resources.remaker(tenant)

        def job(conn: Sql, tx: Transaction) -> tuple[InboxRow | int, list[Written]]:
            claimed = _claim(conn, new)
            if isinstance(claimed, InboxRow):
                return claimed, []
            if claimed < 0:  # left received by a crash, or rejected before: ours to finish
                claimed = -claimed
                sql.set_outcome(conn, new.tid, claimed, status=PROCESSED, reason=None, reply=reply,
                                app_ack=None, app_ack_state=None, now_ms=tx.now_ms)  # fmt: skip
            return claimed, store(tx, prepared, known, remake, self._resources.checked(tx))

        try:
            done, written = await self._group.write(tenant, job)
        except Exception as exc:
            if isinstance(exc, CareweaveError) and exc.category is Category.BUSY:
                raise  # nothing stored, the sender gets AR and sends again
            return await self._refuse(tenant, work, exc)
        if isinstance(done, InboxRow):
            return self._duplicate(done)
        self._resources.remember(written)
        return Received(reply, application, PROCESSED, done)

    async def _receipt(self, tenant: Tenant, work: Work) -> InboxRow | int:
        """Rule 3's first commit: the raw message, ``received``; a duplicate's row, or the id."""
        new = self._new(tenant, work, RECEIVED)

        def receipt(conn: Sql) -> InboxRow | int:
            claimed = _claim(conn, new)
            return abs(claimed) if isinstance(claimed, int) else claimed

        return await self._group.write(tenant, lambda conn, tx: receipt(conn))

    async def _enhanced(self, tenant: Tenant, work: Work, ticket: Ticket) -> tuple[Received, bool]:
        """Rule 3: commit the raw message and answer the commit ACK at once; processing follows
        in its own task, which takes over the message's place in line (True when it did)."""
        await self._backlog.acquire()  # received but not yet processed: bounded
        try:
            done = await self._receipt(tenant, work)
        except BaseException:
            self._backlog.release()
            raise
        reply = self._acks(work, ACCEPTED)[0]
        if isinstance(done, InboxRow) or done in self._in_flight:
            self._backlog.release()
            if isinstance(done, InboxRow):
                return self._duplicate(done), False
            return Received(reply, b"", RECEIVED, done, duplicate=True), False  # being processed
        self._in_flight.add(done)
        task = asyncio.create_task(self._process_later(tenant, work, done, ticket))
        self._processing.add(task)
        task.add_done_callback(self._processing.discard)
        return Received(reply, b"", RECEIVED, done), True

    async def _process_later(self, tenant: Tenant, work: Work, id: int, ticket: Ticket) -> None:
        try:
            await self._locks.wait(ticket)
            await self._process(tenant, work, id)
        except Exception as exc:  # the row stays received: a resend or the next start processes it
            log.error("hl7v2 message %d left received: %s", id, type(exc).__name__)
        finally:
            self._locks.leave(ticket)
            self._in_flight.discard(id)
            self._backlog.release()

    async def _enhanced_now(self, tenant: Tenant, work: Work) -> Received:
        """Rule 3 with the processing awaited (``POST /hl7v2``: the answer is the application ACK)."""
        done = await self._receipt(tenant, work)
        if isinstance(done, InboxRow):
            return self._duplicate(done)
        return await self._process(tenant, work, done)

    async def _process(self, tenant: Tenant, work: Work, id: int) -> Received:
        """Process a stored message (enhanced mode, recovery, replay): resources and the final
        status in one transaction, or the error status and its reason."""
        outcome: Outcome = ACCEPTED
        prepared: list[Item] = []
        if not work.ready:
            outcome = outcome_of(work.failure or Hl7v2Error("no mapping"))
        else:
            try:
                prepared = await self._resources.prepared(tenant, work.bundle, work.mapped)
            except Exception as exc:  # validation (CareweaveError) or a bug: the error queue
                outcome = outcome_of(exc)
        reply, application = self._acks(work, outcome)
        app_state = self._app_ack_state(work, outcome)
        status = PROCESSED if outcome.accepted else (
            REJECTED if outcome.category is Category.UNSUPPORTED_MEDIA else ERROR)  # fmt: skip
        reason = None if outcome.accepted else failure_reason(outcome)

        known, remake = self._resources.stored, await self._resources.remaker(tenant)

        def job(conn: Sql, tx: Transaction) -> list[Written]:
            sql.set_outcome(conn, tenant.key, id, status=status, reason=reason, reply=reply,
                            app_ack=application if app_state else None, app_ack_state=app_state,
                            now_ms=tx.now_ms)  # fmt: skip
            return store(tx, prepared, known, remake, self._resources.checked(tx))

        try:
            self._resources.remember(await self._group.write(tenant, job))
        except Exception as exc:
            if (isinstance(exc, CareweaveError) and exc.category is Category.BUSY) or not prepared:
                raise  # the row stays received: recovery or a resend processes it
            return await self._fail_stored(tenant, work, id, exc)
        log.info("hl7v2 message %d (%s) %s", id, work.kind, status)
        self._deliver(tenant, work, id, application, app_state)
        return Received(reply, application, status, id)

    async def _fail_stored(self, tenant: Tenant, work: Work, id: int, exc: Exception) -> Received:
        outcome = outcome_of(exc)
        reply, application = self._acks(work, outcome)
        app_state = self._app_ack_state(work, outcome)

        def job(conn: Sql) -> None:
            sql.set_outcome(conn, tenant.key, id, status=ERROR, reason=failure_reason(outcome), reply=reply,
                            app_ack=application if app_state else None, app_ack_state=app_state,
                            now_ms=now_ms())  # fmt: skip

        await self._group.write(tenant, lambda conn, tx: job(conn))
        self._deliver(tenant, work, id, application, app_state)
        return Received(reply, application, ERROR, id)

    # -- application ACKs (enhanced mode) ----------------------------------------------------------
    def _app_ack_state(self, work: Work, outcome: Outcome) -> str | None:
        """``pending`` when the sender asked for an application ACK and a route says where to send
        it, ``kept`` when it asked and there is no return address, None when it did not ask."""
        message = work.message
        if message is None or not is_enhanced(message) or not ack_wanted(message, outcome, commit=False):
            return None
        route = self._routes.get(work.facility)
        return "pending" if route is not None and route.ack_host and route.ack_port else "kept"

    def _deliver(self, tenant: Tenant, work: Work, id: int, ack: bytes, state: str | None) -> None:
        if state == "pending":
            self._acks_out.send(tenant, id, work.facility, ack)

    async def resend_ack(self, tenant: Tenant, id: int) -> InboxRow:
        """An operator's resend of a message's application ACK (delivery.py rule 2): the first
        attempt is awaited, retries follow with backoff; the row after the first attempt."""
        row = await self.message(tenant, id)
        if row.app_ack is None:
            raise error("CW-7004", f"message {id} has no application ACK to send")
        if await self._return_address(row.facility) is None:
            raise error("CW-7004", f"no return address for facility {row.facility!r}: set one with a route")
        await self._acks_out.send_now(tenant, id, row.facility, row.app_ack)
        return await self.message(tenant, id)

    async def ack_delivery(self, tenant: Tenant, id: int) -> AckDelivery | None:
        """The attempts made to deliver a message's application ACK, if any."""
        return await self.services.store.sql_read(lambda conn: sql.ack_delivery(conn, tenant.key, id))

    async def _return_address(self, facility: str) -> tuple[str, int] | None:
        await self._load_routes()
        route = self._routes.get(facility)
        if route is None or not route.ack_host or not route.ack_port:
            return None
        return route.ack_host, route.ack_port

    async def drain(self) -> None:
        """Wait for enhanced-mode processing and first application ACK attempts (shutdown, tests)."""
        while self._processing:
            await asyncio.gather(*self._processing, return_exceptions=True)
        await self._acks_out.drain()

    # -- routing ------------------------------------------------------------------------------------
    async def _load_routes(self) -> None:
        now = time.monotonic()
        if now >= self._routes_until:
            found = await self.services.store.sql_read(sql.routes)
            self._routes = {r.facility: r for r in found}
            self._routes_until = now + self.config.route_cache_seconds

    async def _tenant_for(self, facility: str) -> Tenant:
        await self._load_routes()
        route = self._routes.get(facility)
        if route is not None:
            tenant = await self.services.store.tenant_by_key(route.tid)
            if tenant is not None:
                return tenant
        tenant = await self.services.tenants.get(self.config.default_tenant)
        if tenant is None:
            raise error("CW-4001", f"no tenant {self.config.default_tenant!r} for unrouted messages")
        return tenant

    async def routes(self) -> list[tuple[Route, str]]:
        """Every route with its tenant's name."""
        found = await self.services.store.sql_read(sql.routes)
        names = {t.key: t.name for t in await self.services.store.tenants()}
        return [(r, names.get(r.tid, "?")) for r in found]

    async def set_route(
        self, facility: str, tenant_name: str, ack_to: tuple[str, int] | None = None
    ) -> Route:
        tenant = await self.services.store.tenant(tenant_name)
        if tenant is None:
            raise error("CW-4001", f"no tenant called {tenant_name}")
        key = facility.strip().upper()
        if not key:
            raise error("CW-7001", "the sending facility (MSH-4) is empty")
        route = Route(key, tenant.key, *(ack_to or (None, None)))
        await self.services.store.sql_write(lambda conn: sql.set_route(conn, route))
        self._routes_until = 0.0
        return route

    async def remove_route(self, facility: str) -> bool:
        key = facility.strip().upper()
        removed = await self.services.store.sql_write(lambda conn: sql.remove_route(conn, key))
        self._routes_until = 0.0
        return removed

    # -- the error queue, replay and recovery -----------------------------------------------------------
    async def messages(
        self,
        tenant: Tenant,
        statuses: tuple[str, ...] = (),
        before_id: int | None = None,
        limit: int = 100,
        ack_states: tuple[str, ...] = (),
    ) -> list[InboxRow]:
        return await self.services.store.sql_read(
            lambda conn: sql.list_rows(
                conn, tenant.key, statuses, before_id=before_id, limit=limit, ack_states=ack_states
            )
        )

    async def message(self, tenant: Tenant, id: int) -> InboxRow:
        found = await self.services.store.sql_read(lambda conn: sql.get(conn, tenant.key, id))
        if found is None:
            raise error("CW-7003", f"no HL7 v2 message {id} in tenant {tenant.name}")
        return found

    async def counts(self, tenant: Tenant) -> dict[str, int]:
        return await self.services.store.sql_read(lambda conn: sql.counts(conn, tenant.key))

    async def replay(self, tenant: Tenant, id: int, corrected: bytes | None = None) -> InboxRow:
        """Process a stored message again (after a mapping fix), or its corrected text."""
        row = await self.message(tenant, id)
        raw = row.raw
        if corrected is not None:
            raw = corrected
            await self.services.store.sql_write(lambda conn: sql.set_raw(conn, tenant.key, id, raw, now_ms()))
        work = study(raw, row.source, self._options)
        async with self._locks.hold(work.keys):
            await self._process(tenant, work, id)
        log.info("hl7v2 message %d replayed", id)
        return await self.message(tenant, id)

    async def recover(self, batch: int = 500) -> int:
        """Process the messages left ``received`` by a crash (rule 3), oldest first; how many."""
        done = 0
        for tenant in await self.services.store.tenants():
            while True:
                rows = await self._unfinished(tenant, batch)
                if not rows:
                    break
                for row in rows:
                    work = study(row.raw, row.source, self._options)
                    async with self._locks.hold(work.keys):
                        await self._process(tenant, work, row.id)
                    done += 1
        if done:
            log.info("recovered %d HL7 v2 messages left received", done)
        return done

    async def _unfinished(self, tenant: Tenant, limit: int) -> list[InboxRow]:
        return await self.services.store.sql_read(lambda conn: sql.unfinished(conn, tenant.key, limit))

    async def start(self) -> None:
        """Start the worker processes (when there are any) and recover unfinished messages.

        What was built before (definitions, validators, indexers) lives as long as the process:
        it is moved out of the garbage collector's sight (``gc.freeze``), so that full
        collections, frequent under the gateway's allocation rate, no longer walk it."""
        gc.freeze()
        if self._pool is not None:
            await self._pool.start()
        await self.recover()
        resumed = await self._acks_out.resume(list(await self.services.store.tenants()))
        if resumed:
            log.info("%d application ACKs to deliver again", resumed)

    async def close(self, grace: float = 10.0) -> None:
        """Let processing in flight finish (``grace`` seconds at most: what is left stays
        ``received`` for the next start), then stop."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.drain(), grace)
        for task in list(self._processing):
            task.cancel()
        await self._group.close()
        if self._pool is not None:
            self._pool.close()
        await self._acks_out.close()


def _claim(conn: Sql, new: NewMessage) -> InboxRow | int:
    """Store a new message: its id; or, for a key stored already, the stored row (a duplicate,
    rule 4), or minus its id when it is ours to process: left ``received`` by a crash, or
    ``rejected`` before (refused for what it was, so a resend is a new attempt; its text is
    replaced and the first one kept as ``original``)."""
    id = sql.insert(conn, new)
    if id is not None:
        return id
    found = sql.find_key(conn, new.tid, new.sender, new.facility, new.control_id)
    if found is None:  # pragma: no cover - the insert found a conflict on this key
        raise error("CW-9001", "a stored message vanished")
    if found.status == RECEIVED:
        return -found.id
    if found.status == REJECTED:
        sql.reopen(conn, new.tid, found.id, new.raw, new.received_ms)
        return -found.id
    return found
