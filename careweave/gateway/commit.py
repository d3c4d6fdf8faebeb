"""Group commit: the writes of several messages in one writer job, under one COMMIT.

Rules:
1. A message hands its write (a function of the connection and the resource transaction, run in
   the writer) to :meth:`GroupCommit.write`, which answers the function's result only once the
   transaction holding it has committed: an ACK sent after it still follows a durable commit
   (``synchronous=FULL``). A crash before that commit loses the group's writes and sends none of
   their ACKs.
2. A group is a writer job whose writes are taken when the writer starts it: a group is handed
   to the writer while the one before it is still running, and every write handed over until the
   writer reaches it joins it. Under load the groups grow by themselves, each COMMIT (its fsync,
   and the WAL pages it writes: the same index and table pages are written once for the whole
   group) is shared by several messages, and the writer goes from one group to the next without
   waiting for this event loop to answer the last one. One group per tenant waits at a time.
3. When no group is in the writer, a write waits for companions while other messages are on their
   way (:meth:`coming`: arrived, and not yet ready to write nor waiting for a message of the
   group), ``linger`` seconds at most after the oldest write waiting, or until ``max_group`` wait;
   alone, it starts at once (one sender sees no added latency).
4. A group runs its writes in the order they were handed over, in one writer job per tenant. When
   one raises, nothing of that job is kept (the store rolls it back) and each of its writes runs
   again in a writer job of its own: only the failing message fails, as without grouping. The
   functions must therefore be repeatable (they depend only on the database state).
5. A write whose caller was cancelled before its group started is not run (nobody will answer it,
   and a sender that gets no ACK sends again); once the group started, it is run all the same,
   except again alone after a failed group. A group run again by the store (a retried transaction)
   runs the writes it took the first time.
6. Messages about one patient never share a group: the gateway's keyed locks hold the second one
   until the first has committed, so per-patient order is the order of the commits.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
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


class _Group:
    """One writer job: its writes are taken when the writer starts it (rule 2)."""

    __slots__ = ("entries", "taken", "tenant")

    def __init__(self, tenant: Tenant) -> None:
        self.tenant = tenant
        self.entries: list[_Entry[Any]] = []
        self.taken = False


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
        self._lock = threading.Lock()  # the waiting writes and the next groups (the writer takes them)
        self._waiting: dict[int, list[_Entry[Any]]] = {}  # per tenant, in the order handed over
        self._next: dict[int, _Group] = {}  # per tenant: handed to the writer, writes not taken yet
        self._busy = 0  # groups handed to the writer and not answered yet
        self._tasks: set[asyncio.Task[None]] = set()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._coming = 0
        self.groups = 0  # groups written so far, and the writes they held (for tests and benchmarks)
        self.writes = 0

    def coming(self) -> Coming:
        """Count a message on its way (rule 3)."""
        return Coming(self)

    async def write(self, tenant: Tenant, job: Job[T]) -> T:
        """Run ``job`` in the writer in the next group; its result once that group committed."""
        self._loop = loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        with self._lock:
            self._waiting.setdefault(tenant.key, []).append(_Entry(tenant, job, future))
            joined = tenant.key in self._next  # a group the writer has not started takes it
        if not joined:
            self._consider()
        return await future

    # -- scheduling (this event loop) ------------------------------------------------------------
    def _arrived(self) -> None:
        self._coming -= 1
        if self._coming <= 0:
            self._consider()

    def _consider(self) -> None:
        with self._lock:
            ready = [w for key, w in self._waiting.items() if w and key not in self._next]
        if not ready:
            return
        lingering = self._busy == 0 and self._coming > 0 and self.linger > 0
        if lingering and all(len(w) < self.max_group for w in ready):
            if self._timer is None:
                wait = min(w[0].since for w in ready) + self.linger - time.monotonic()
                if wait > 0:
                    self._timer = asyncio.get_running_loop().call_later(wait, self._start)
                    return
            else:
                return
        self._start()

    def _start(self) -> None:
        """Hand a group to the writer for every tenant with writes waiting and no group waiting."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        with self._lock:
            groups = []
            for key, waiting in self._waiting.items():
                if waiting and key not in self._next:
                    self._next[key] = group = _Group(waiting[0].tenant)
                    groups.append(group)
        loop = asyncio.get_running_loop()
        for group in groups:
            self._busy += 1
            task = loop.create_task(self._run(group))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    # -- in the writer ---------------------------------------------------------------------------
    def _take(self, group: _Group) -> list[_Entry[Any]]:
        """The group's writes: those waiting when it is first called (rules 2 and 5)."""
        with self._lock:
            if group.taken:
                return group.entries
            group.taken = True
            key = group.tenant.key
            if self._next.get(key) is group:
                del self._next[key]
            live = [e for e in self._waiting.pop(key, ()) if not e.future.done()]
            group.entries, rest = live[: self.max_group], live[self.max_group :]
            if rest:
                self._waiting[key] = rest
            self.groups += 1
            self.writes += len(group.entries)
        if rest and self._loop is not None:
            self._loop.call_soon_threadsafe(self._consider)
        return group.entries

    # -- answers (this event loop) ---------------------------------------------------------------
    async def _run(self, group: _Group) -> None:
        try:
            await self._write_group(group)
        finally:
            for entry in group.entries:  # a bug above must not leave a sender waiting for ever
                if not entry.future.done():
                    entry.future.set_exception(RuntimeError("the group commit stopped"))
            self._busy -= 1
            self._consider()

    async def _write_group(self, group: _Group) -> None:
        def run(conn: Sql, tx: Transaction) -> list[Any]:
            return [entry.job(conn, tx) for entry in self._take(group)]

        try:
            results = await self._store.sql_write_tenant(group.tenant, run)
        except Exception as exc:
            entries = self._take(group)  # taken here when the writer never ran it
            if len(entries) == 1:
                if not entries[0].future.done():
                    entries[0].future.set_exception(exc)
                return
            await asyncio.gather(*(_settle_alone(self._store, e) for e in entries))  # rule 4
            return
        for entry, result in zip(group.entries, results, strict=True):
            if not entry.future.done():
                entry.future.set_result(result)

    async def close(self) -> None:
        """Let the groups handed to the writer finish, and write what still waits."""
        while True:
            with self._lock:
                waiting = any(self._waiting.values())
            if waiting and not self._tasks:
                self._start()
            if not self._tasks:
                return
            with contextlib.suppress(Exception):
                await asyncio.shield(asyncio.gather(*self._tasks, return_exceptions=True))


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
