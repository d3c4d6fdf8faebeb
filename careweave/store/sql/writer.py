"""The SQLite writer: one thread, one connection, group commit.

Rules:
1. All writes go through one thread, so SQLite never sees two writers (no SQLITE_BUSY between us).
2. The writer takes every job waiting in its queue (up to ``max_batch``), runs each inside its own
   SAVEPOINT within one ``BEGIN IMMEDIATE`` transaction, and commits once. A job that raises is rolled
   back to its savepoint alone; the others still commit (group commit).
3. A job's future is resolved only after COMMIT returned, so an acknowledged write is durable. If the
   commit itself fails, every job of the batch fails and nothing of the batch is stored.
"""

from __future__ import annotations

import concurrent.futures
import logging
import queue
import sqlite3
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from careweave.errors import error

__all__ = ["Job", "Writer"]

log = logging.getLogger("careweave.store.writer")


@dataclass(slots=True)
class Job:
    run: Callable[[sqlite3.Connection], Any]
    future: concurrent.futures.Future[Any]


class Writer:
    """A thread owning the write connection; :meth:`submit` queues a job and returns its future."""

    def __init__(
        self,
        connect: Callable[[], sqlite3.Connection],
        *,
        max_batch: int,
        after_commit: Callable[[], None] | None = None,
        after_rollback: Callable[[], None] | None = None,
    ) -> None:
        self._connect = connect
        self._max_batch = max(1, max_batch)
        self._after_commit = after_commit
        self._after_rollback = after_rollback
        self._queue: queue.SimpleQueue[Job | None] = queue.SimpleQueue()
        self._ready = threading.Event()
        self._failure: BaseException | None = None
        self._thread = threading.Thread(target=self._main, name="careweave-sqlite-writer")
        self._thread.daemon = True
        self._thread.start()
        self._ready.wait()
        if self._failure is not None:
            raise self._failure

    def submit(self, run: Callable[[sqlite3.Connection], Any]) -> concurrent.futures.Future[Any]:
        future: concurrent.futures.Future[Any] = concurrent.futures.Future()
        if not self._thread.is_alive():
            future.set_exception(error("CW-9001", "the database writer has stopped"))
            return future
        self._queue.put(Job(run, future))
        return future

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
        try:
            while True:
                job = self._queue.get()
                if job is None:
                    return
                batch = [job]
                stop = False
                while len(batch) < self._max_batch:
                    try:
                        more = self._queue.get_nowait()
                    except queue.Empty:
                        break
                    if more is None:
                        stop = True
                        break
                    batch.append(more)
                self._run_batch(conn, batch)
                if stop:
                    return
        finally:
            conn.close()

    def _run_batch(self, conn: sqlite3.Connection, batch: list[Job]) -> None:
        outcomes: list[tuple[Job, Any, BaseException | None]] = []
        try:
            conn.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as exc:
            log.error("could not begin a write transaction: %s", exc)
            for job in batch:
                job.future.set_exception(error("CW-9001", "the database is not writable now"))
            return
        for job in batch:
            if not job.future.set_running_or_notify_cancel():
                continue
            conn.execute("SAVEPOINT job")
            try:
                result = job.run(conn)
            except BaseException as exc:  # the job's own failure: undo it alone
                conn.execute("ROLLBACK TO job")
                conn.execute("RELEASE job")
                outcomes.append((job, None, exc))
            else:
                conn.execute("RELEASE job")
                outcomes.append((job, result, None))
        try:
            conn.execute("COMMIT")
        except sqlite3.Error as exc:
            log.error("commit failed; %d writes rolled back: %s", len(outcomes), exc)
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            if self._after_rollback is not None:
                self._after_rollback()
            for job, _, _ in outcomes:
                job.future.set_exception(error("CW-9001", "the write could not be committed"))
            return
        if self._after_commit is not None:
            self._after_commit()
        for job, result, failure in outcomes:
            if failure is None:
                job.future.set_result(result)
            else:
                job.future.set_exception(failure)
