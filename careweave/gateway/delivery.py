"""Enhanced-mode application ACKs: delivery to the sender's return address, retried with backoff.

Rules:
1. When processing commits, an application ACK whose route names a return address is
   ``pending`` in its message row; it is sent over a new MLLP connection (an ACK is not
   acknowledged, so a delivered frame is a sent ACK).
2. A failed attempt (refused, reset, unreachable, timed out) is recorded with the number of
   attempts, when the next is due and the error (``hl7_ack_delivery``), and tried again after
   :func:`backoff` (``base``, doubling, at most ``cap`` seconds). After ``attempts`` attempts in
   all the ACK is ``failed``: it stays in the row, operators list it (``careweave hl7 acks``,
   ``GET .../messages?ackState=failed``) and may resend it (``careweave hl7 resend-ack``,
   ``POST .../messages/{id}/$resend-ack``), which starts a new series of attempts.
3. Durable: state and attempts are in the database; :meth:`AckSender.resume` schedules every
   ``pending`` ACK again at its due time (after a crash or a stop between attempts).
4. At most ``_SENDERS`` attempts run at once; delivery never holds up message processing.
   :meth:`AckSender.drain` waits for first attempts only (retries wait for their time).
5. Nothing here logs an ACK's content: message ids, attempts and the error's kind.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from careweave.hl7v2.mllp import frame
from careweave.store.base import Store, Tenant
from careweave.store.sql import hl7 as sql
from careweave.store.sql.components import Sql

__all__ = ["AckSender", "DeliveryConfig", "backoff", "push"]

log = logging.getLogger("careweave.gateway")

_SENDERS = 64  # application ACKs being delivered at once, at most
Address = tuple[str, int]


@dataclass(frozen=True, slots=True)
class DeliveryConfig:
    """``attempts`` in all before ``failed``; the first retry after ``base`` seconds, doubling up to
    ``cap``; ``timeout`` seconds for one attempt."""

    timeout: float = 10.0
    attempts: int = 8
    base: float = 2.0
    cap: float = 300.0


def backoff(attempts: int, config: DeliveryConfig) -> float:
    """Seconds to wait after the ``attempts``-th failed attempt (rule 2)."""
    return float(min(config.cap, config.base * 2 ** max(0, attempts - 1)))


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


async def push(address: Address, payload: bytes) -> None:
    """Deliver one frame over a new connection; nothing is awaited but the write itself."""
    _, writer = await asyncio.open_connection(*address)
    try:
        writer.write(frame(payload))
        await writer.drain()
    finally:
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()


class AckSender:
    """Delivers application ACKs (rules 1-5). ``address`` finds a facility's return address."""

    def __init__(
        self,
        store: Store,
        config: DeliveryConfig,
        address: Callable[[str], Awaitable[Address | None]],
    ) -> None:
        self._store = store
        self._config = config
        self._address = address
        self._slots = asyncio.Semaphore(_SENDERS)
        self._first: set[asyncio.Task[None]] = set()  # first attempts (drained)
        self._series: dict[tuple[int, int], asyncio.Task[None]] = {}  # (tenant, id) -> its task

    def send(self, tenant: Tenant, id: int, facility: str, ack: bytes) -> None:
        """Rule 1: deliver a ``pending`` ACK now, in the background."""
        self._start(tenant, id, facility, ack, attempts=0, delay=0.0, first=True)

    async def send_now(self, tenant: Tenant, id: int, facility: str, ack: bytes) -> str:
        """An operator's resend: a new series whose first attempt is awaited; the state after it."""
        self._stop(tenant, id)
        address = await self._address(facility)
        if address is None:
            await self._record(tenant, id, "failed", 0, 0, "no return address for the facility")
            return "failed"
        state, delay = await self._attempt(tenant, id, address, ack, 0)
        if state == "pending":
            self._start(tenant, id, facility, ack, attempts=1, delay=delay, first=False)
        return state

    async def resume(self, tenants: list[Tenant], batch: int = 1000) -> int:
        """Rule 3: schedule every pending ACK again at its due time; how many."""
        count = 0
        now = _now_ms()
        for tenant in tenants:
            found = await self._store.sql_read(_pending(tenant.key, batch))
            for row, delivery in found:
                if row.app_ack is None or (tenant.key, row.id) in self._series:
                    continue
                attempts = delivery.attempts if delivery else 0
                delay = max(0.0, (delivery.next_ms - now) / 1000) if delivery else 0.0
                self._start(
                    tenant, row.id, row.facility, row.app_ack, attempts=attempts, delay=delay, first=False
                )
                count += 1
        return count

    def _start(
        self, tenant: Tenant, id: int, facility: str, ack: bytes, *, attempts: int, delay: float, first: bool
    ) -> None:
        task = asyncio.create_task(self._run(tenant, id, facility, ack, attempts, delay))
        key = (tenant.key, id)
        self._series[key] = task
        task.add_done_callback(lambda t: self._series.pop(key, None) if self._series.get(key) is t else None)
        if first:
            self._first.add(task)
            task.add_done_callback(self._first.discard)

    def _stop(self, tenant: Tenant, id: int) -> None:
        task = self._series.pop((tenant.key, id), None)
        if task is not None:
            task.cancel()

    async def _run(
        self, tenant: Tenant, id: int, facility: str, ack: bytes, attempts: int, delay: float
    ) -> None:
        if attempts >= self._config.attempts:
            await self._record(tenant, id, "failed", attempts, _now_ms(), "no attempts left")
            return
        state = "pending"
        while state == "pending":
            if delay > 0:
                await asyncio.sleep(delay)
            address = await self._address(facility)
            if address is None:
                await self._record(
                    tenant, id, "failed", attempts, _now_ms(), "no return address for the facility"
                )
                return
            state, delay = await self._attempt(tenant, id, address, ack, attempts)
            attempts += 1
            if state == "pending" and asyncio.current_task() in self._first:
                # the first attempt failed: hand the retries over to a task that drain() ignores
                self._start(tenant, id, facility, ack, attempts=attempts, delay=delay, first=False)
                return

    async def _attempt(
        self, tenant: Tenant, id: int, address: Address, ack: bytes, before: int
    ) -> tuple[str, float]:
        """One attempt, recorded: (state now, seconds until the next attempt)."""
        async with self._slots:
            try:
                await asyncio.wait_for(push(address, ack), self._config.timeout)
                failure = None
            except (OSError, TimeoutError) as exc:
                failure = f"{type(exc).__name__}: {exc}"[:300] if str(exc) else type(exc).__name__
        attempts = before + 1
        now = _now_ms()
        if failure is None:
            await self._record(tenant, id, "sent", attempts, now, None)
            return "sent", 0.0
        if attempts >= self._config.attempts:
            log.warning("application ACK of hl7v2 message %d failed after %d attempts", id, attempts)
            await self._record(tenant, id, "failed", attempts, now, failure)
            return "failed", 0.0
        delay = backoff(attempts, self._config)
        log.info(
            "application ACK of hl7v2 message %d: attempt %d failed, next in %.0f s", id, attempts, delay
        )
        await self._record(tenant, id, "pending", attempts, now + int(delay * 1000), failure)
        return "pending", delay

    async def _record(
        self, tenant: Tenant, id: int, state: str, attempts: int, next_ms: int, failure: str | None
    ) -> None:
        now = _now_ms()

        def job(conn: Sql) -> None:
            sql.set_app_ack_state(conn, tenant.key, id, state, now)
            sql.record_ack_attempt(
                conn, tenant.key, id, attempts=attempts, next_ms=next_ms, error=failure, now_ms=now
            )

        await self._store.sql_write(job)

    async def drain(self) -> None:
        """Rule 4: wait for the first attempts under way."""
        while self._first:
            await asyncio.gather(*self._first, return_exceptions=True)

    async def close(self) -> None:
        """Stop every delivery (pending ones are resumed at the next start)."""
        tasks = list(self._series.values()) + list(self._first)
        for task in tasks:
            task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.gather(*tasks, return_exceptions=True)


def _pending(tid: int, limit: int) -> Callable[[Sql], list[tuple[sql.InboxRow, sql.AckDelivery | None]]]:
    return lambda conn: sql.pending_acks(conn, tid, limit)
