"""The SQLite writer: one thread, one connection, group commit.

Rules:
1. All writes go through one thread, so SQLite never sees two writers (no SQLITE_BUSY between us).
2. The writer takes every job waiting in its queue (up to ``max_batch``; a group submitted
   together, :meth:`Writer.submit_all_async`, whole) and runs them in one ``BEGIN IMMEDIATE``
   transaction with one COMMIT (group commit). It first runs the batch straight through; if any
   job raises, it rolls the whole batch back and runs it again with each job inside its own
   SAVEPOINT, so a failing job is undone alone and the others still commit.
   Jobs are therefore functions of the database state only: running one twice is harmless.
3. A job's outcome is delivered only after COMMIT returned, so an acknowledged write is durable.
   If the commit itself fails, every job of the batch fails and nothing of the batch is stored.
4. Outcomes for asyncio callers are delivered with one wake-up per event loop per batch; side
   effects a job asks for with ``on_commit`` (cache updates) run after the commit, never before.
5. Checkpoints: the connection's ``wal_autocheckpoint`` copies the WAL into the database when it
   has grown that many pages, inside the COMMIT that crossed the line. When the queue has been
   empty for ``idle_checkpoint`` seconds after a write, the writer runs a PASSIVE checkpoint
   itself, so a quiet database does not keep a long WAL for its readers to search.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import logging
import queue
import sqlite3
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from careweave.errors import error

__all__ = ["Job", "Writer"]

log = logging.getLogger("careweave.store.writer")

Outcome = tuple[Any, BaseException | None]


@dataclass(slots=True)
class Job:
    run: Callable[[sqlite3.Connection, list[Callable[[], None]]], Any]
    future: concurrent.futures.Future[Any] | asyncio.Future[Any]
    loop: asyncio.AbstractEventLoop | None = None
    after: list[Callable[[], None]] = field(default_factory=list)


class Writer:
    """A thread owning the write connection. :meth:`submit` queues a job for a synchronous caller,
    :meth:`submit_async` for a coroutine (its future settles on the caller's event loop)."""

    def __init__(
        self, connect: Callable[[], sqlite3.Connection], *, max_batch: int, idle_checkpoint: float = 1.0
    ) -> None:
        self._connect = connect
        self._max_batch = max(1, max_batch)
        self._idle_checkpoint = idle_checkpoint
        self._queue: queue.SimpleQueue[Job | list[Job] | None] = queue.SimpleQueue()
        self._ready = threading.Event()
        self._failure: BaseException | None = None
        self._thread = threading.Thread(target=self._main, name="careweave-sqlite-writer")
        self._thread.daemon = True
        self._thread.start()
        self._ready.wait()
        if self._failure is not None:
            raise self._failure

    def submit(
        self, run: Callable[[sqlite3.Connection, list[Callable[[], None]]], Any]
    ) -> concurrent.futures.Future[Any]:
        future: concurrent.futures.Future[Any] = concurrent.futures.Future()
        self._enqueue(Job(run, future))
        return future

    def submit_async(
        self, run: Callable[[sqlite3.Connection, list[Callable[[], None]]], Any]
    ) -> asyncio.Future[Any]:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()
        self._enqueue(Job(run, future, loop))
        return future

    def submit_all_async(
        self, runs: Sequence[Callable[[sqlite3.Connection, list[Callable[[], None]]], Any]]
    ) -> list[asyncio.Future[Any]]:
        """Queue jobs to run in one batch (one transaction), each with its own outcome."""
        loop = asyncio.get_running_loop()
        futures: list[asyncio.Future[Any]] = [loop.create_future() for _ in runs]
        jobs = [Job(run, future, loop) for run, future in zip(runs, futures, strict=True)]
        if not self._thread.is_alive():
            for job in jobs:
                _settle_now(job, None, error("CW-9001", "the database writer has stopped"))
        elif jobs:
            self._queue.put(jobs)
        return futures

    def _enqueue(self, job: Job) -> None:
        if not self._thread.is_alive():
            _settle_now(job, None, error("CW-9001", "the database writer has stopped"))
            return
        self._queue.put(job)

    def close(self) -> None:
        if self._thread.is_alive():
            self._queue.put(None)
            self._thread.join()

    # -- the thread -------------------------------------------------------------------------------
    def _main(self) -> None:
        try:
            conn = self._connect()
        except BaseException as exc:  # reported to the constructor
            self._failure = exc
            self._ready.set()
            return
        self._ready.set()
        wrote = False  # since the last checkpoint of an idle moment (rule 5)
        try:
            while True:
                if wrote and self._idle_checkpoint > 0:
                    try:
                        item = self._queue.get(timeout=self._idle_checkpoint)
                    except queue.Empty:
                        _checkpoint(conn)
                        wrote = False
                        continue
                else:
                    item = self._queue.get()
                if item is None:
                    return
                wrote = True
                batch = item if isinstance(item, list) else [item]
                stop = False
                while len(batch) < self._max_batch:
                    try:
                        more = self._queue.get_nowait()
                    except queue.Empty:
                        break
                    if more is None:
                        stop = True
                        break
                    if isinstance(more, list):
                        batch.extend(more)
                    else:
                        batch.append(more)
                self._run_batch(conn, batch)
                if stop:
                    return
        finally:
            conn.close()

    def _run_batch(self, conn: sqlite3.Connection, batch: list[Job]) -> None:
        try:
            conn.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as exc:
            log.error("could not begin a write transaction: %s", exc)
            _settle(batch, [(None, error("CW-9001", "the database is not writable now"))] * len(batch))
            return
        outcomes = self._straight(conn, batch)
        if outcomes is None:
            conn.execute("ROLLBACK")
            conn.execute("BEGIN IMMEDIATE")
            outcomes = self._isolated(conn, batch)
        try:
            conn.execute("COMMIT")
        except sqlite3.Error as exc:
            log.error("commit failed; %d writes rolled back: %s", len(batch), exc)
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            _settle(batch, [(None, error("CW-9001", "the write could not be committed"))] * len(batch))
            return
        for job, (_, failure) in zip(batch, outcomes, strict=True):
            if failure is None:
                for callback in job.after:
                    callback()
        _settle(batch, outcomes)

    @staticmethod
    def _straight(conn: sqlite3.Connection, batch: list[Job]) -> list[Outcome] | None:
        """Every job in one go; None as soon as one raises (the caller rolls back)."""
        outcomes: list[Outcome] = []
        for job in batch:
            try:
                outcomes.append((job.run(conn, job.after), None))
            except BaseException:
                return None
        return outcomes

    @staticmethod
    def _isolated(conn: sqlite3.Connection, batch: list[Job]) -> list[Outcome]:
        """Every job in its own savepoint: a failing one is undone alone."""
        outcomes: list[Outcome] = []
        for job in batch:
            job.after.clear()
            conn.execute("SAVEPOINT job")
            try:
                result = job.run(conn, job.after)
            except BaseException as exc:  # the job's own failure: undo it alone
                conn.execute("ROLLBACK TO job")
                conn.execute("RELEASE job")
                job.after.clear()
                outcomes.append((None, exc))
            else:
                conn.execute("RELEASE job")
                outcomes.append((result, None))
        return outcomes


def _checkpoint(conn: sqlite3.Connection) -> None:
    """A PASSIVE checkpoint: copies what no reader still needs; never waits, never fails a write."""
    try:
        conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
    except sqlite3.Error as exc:
        log.warning("idle checkpoint failed: %s", exc)


def _settle_now(job: Job, result: Any, failure: BaseException | None) -> None:
    if job.loop is None:
        future = job.future
        assert isinstance(future, concurrent.futures.Future)
        if failure is None:
            future.set_result(result)
        else:
            future.set_exception(failure)
    else:
        job.loop.call_soon_threadsafe(_settle_items, [(job.future, result, failure)])


def _settle(batch: list[Job], outcomes: list[Outcome]) -> None:
    """Deliver outcomes: synchronous futures at once, asyncio ones in one call per loop."""
    by_loop: dict[asyncio.AbstractEventLoop, list[tuple[Any, Any, BaseException | None]]] = {}
    for job, (result, failure) in zip(batch, outcomes, strict=True):
        if job.loop is None:
            _settle_now(job, result, failure)
        else:
            by_loop.setdefault(job.loop, []).append((job.future, result, failure))
    for loop, items in by_loop.items():
        with contextlib.suppress(RuntimeError):  # a closed loop: nobody is waiting any more
            loop.call_soon_threadsafe(_settle_items, items)


def _settle_items(items: list[tuple[Any, Any, BaseException | None]]) -> None:
    for future, result, failure in items:
        if future.done():
            continue
        if failure is None:
            future.set_result(result)
        else:
            future.set_exception(failure)
