"""Group commit: the writes of several messages in one writer job, under one COMMIT.

Rules:
1. A message hands its write (a function of the connection and the resource transaction, run in
   the writer) to :meth:`GroupCommit.write`, which answers the function's result only once the
   transaction holding it has committed: an ACK sent after it still follows a durable commit
   (``synchronous=FULL``). A crash before that commit loses the group's writes and sends none of
   their ACKs.
2. One group is in the writer at a time. Writes handed over meanwhile wait for the next group,
   which starts when the current one has committed, so under load the groups grow by themselves
   and each COMMIT (its fsync, and the WAL pages it writes: the same index and table pages are
   written once for the whole group) is shared by several messages.
3. When the writer is free, a write waits for companions while other messages are on their way
   (:meth:`coming`: arrived, and not yet ready to write nor waiting for a message of the group),
   ``linger`` seconds at most after the oldest write of the group, or until ``max_group`` wait;
   alone, it starts at once (one sender sees no added latency).
4. A group runs its writes in the order they were handed over, in one writer job per tenant. When
   one raises, nothing of that job is kept (the store rolls it back) and each of its writes runs
   again in a writer job of its own: only the failing message fails, as without grouping. The
   functions must therefore be repeatable (they depend only on the database state).
5. A write whose caller was cancelled before its group started is not run (nobody will answer it,
   and a sender that gets no ACK sends again); once the group started, it is run all the same,
   except again alone after a failed group.
6. Messages about one patient never share a group: the gateway's keyed locks hold the second one
   until the first has committed, so per-patient order is the order of the commits.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from careweave.store.base import Store, Tenant, Transaction
from careweave.store.sql.components import Sql

__all__ = ["Coming", "GroupCommit", "Job"]

T = TypeVar("T")
Job = Callable[[Sql, Transaction], T]


@dataclass(slots=True)
class _Entry(Generic[T]):
    tenant: Tenant
    job: Job[T]
    future: asyncio.Future[T]
    since: float = field(default_factory=time.monotonic)


class Coming:
    """One message on its way to a group (rule 3): counted from its arrival until :meth:`done`
    (it is ready to write, waits for another message, or ended). ``done`` may be called again."""

    __slots__ = ("_counted", "_group")

    def __init__(self, group: GroupCommit) -> None:
        self._group = group
        self._counted = True
        group._coming += 1

    def done(self) -> None:
        if self._counted:
            self._counted = False
            self._group._arrived()


class GroupCommit:
    """Rules 1-6 over a store's ``sql_write_tenant``; one per gateway (and event loop)."""

    def __init__(self, store: Store, *, linger: float = 0.002, max_group: int = 64) -> None:
        self._store = store
        self.linger = linger
        self.max_group = max(1, max_group)
        self._queue: list[_Entry[Any]] = []
        self._running: asyncio.Task[None] | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._coming = 0
        self.groups = 0  # groups written so far, and the writes they held (for tests and benchmarks)
        self.writes = 0

    def coming(self) -> Coming:
        """Count a message on its way (rule 3)."""
        return Coming(self)

    async def write(self, tenant: Tenant, job: Job[T]) -> T:
        """Run ``job`` in the writer in the next group; its result once that group committed."""
        future: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        self._queue.append(_Entry(tenant, job, future))
        self._consider()
        return await future

    # -- scheduling ----------------------------------------------------------------------------------
    def _arrived(self) -> None:
        self._coming -= 1
        if self._coming <= 0 and self._queue:
            self._consider()

    def _consider(self) -> None:
        if self._running is not None or not self._queue:
            return
        if self._coming <= 0 or len(self._queue) >= self.max_group or self.linger <= 0:
            self._start()
            return
        if self._timer is None:
            wait = self._queue[0].since + self.linger - time.monotonic()
            if wait <= 0:
                self._start()
                return
            self._timer = asyncio.get_running_loop().call_later(wait, self._start)

    def _start(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._running is not None:
            return
        live = [e for e in self._queue if not e.future.done()]  # rule 5
        group, self._queue = live[: self.max_group], live[self.max_group :]
        if not group:
            return
        self.groups += 1
        self.writes += len(group)
        self._running = asyncio.get_running_loop().create_task(self._run(group))

    async def _run(self, group: list[_Entry[Any]]) -> None:
        try:
            by_tenant: dict[int, list[_Entry[Any]]] = {}
            for entry in group:
                by_tenant.setdefault(entry.tenant.key, []).append(entry)
            await asyncio.gather(*(self._write_group(entries) for entries in by_tenant.values()))
        finally:
            for entry in group:  # a bug above must not leave a sender waiting for ever
                if not entry.future.done():
                    entry.future.set_exception(RuntimeError("the group commit stopped"))
            self._running = None
            if self._queue:
                self._consider_after_group()

    def _consider_after_group(self) -> None:
        """What waited during a group has lingered long enough: the next group starts now."""
        if self._queue and all(e.future.done() for e in self._queue):
            self._queue.clear()
            return
        self._start()

    async def _write_group(self, entries: list[_Entry[Any]]) -> None:
        tenant = entries[0].tenant
        jobs = [e.job for e in entries]

        def run(conn: Sql, tx: Transaction) -> list[Any]:
            return [job(conn, tx) for job in jobs]

        try:
            results = await self._store.sql_write_tenant(tenant, run)
        except Exception as exc:
            if len(entries) == 1:
                if not entries[0].future.done():
                    entries[0].future.set_exception(exc)
                return
            await asyncio.gather(*(_settle_alone(self._store, e) for e in entries))  # rule 4
            return
        for entry, result in zip(entries, results, strict=True):
            if not entry.future.done():
                entry.future.set_result(result)

    async def close(self) -> None:
        """Let the group in the writer finish (the queue is answered by it or by the next)."""
        while self._running is not None or self._queue:
            if self._running is None:
                self._start()
            if self._running is not None:
                with contextlib.suppress(Exception):
                    await asyncio.shield(self._running)


async def _settle_alone(store: Store, entry: _Entry[Any]) -> None:
    """Rule 4: one write in a writer job of its own; its outcome goes to its caller."""
    if entry.future.done():
        return
    try:
        result = await store.sql_write_tenant(entry.tenant, entry.job)
    except Exception as exc:
        if not entry.future.done():
            entry.future.set_exception(exc)
        return
    if not entry.future.done():
        entry.future.set_result(result)
