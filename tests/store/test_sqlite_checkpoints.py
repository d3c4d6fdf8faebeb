"""The SQLite writer's checkpoints (writer.py rule 5): the store's ``wal_autocheckpoint`` is the
writer connection's, and a writer left idle after a write copies the WAL into the database file
itself (a database with no idle checkpoint keeps the pages in the WAL only)."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from pathlib import Path

from careweave.store.sql.sqlite import SqliteStore
from careweave.store.sql.writer import Writer

BLOB = 2 << 20  # two MiB: far more than the empty database file


def _connect(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA wal_autocheckpoint = 0")  # only the writer's own checkpoints
    conn.execute("CREATE TABLE IF NOT EXISTS t (b BLOB)")
    return conn


def _write_blob(writer: Writer) -> None:
    writer.submit(lambda conn, after: conn.execute("INSERT INTO t VALUES (?)", (b"x" * BLOB,))).result(10)


def _database_bytes_after(path: Path, seconds: float) -> int:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and path.stat().st_size < BLOB:
        time.sleep(0.02)
    return path.stat().st_size


def test_an_idle_writer_copies_the_wal_into_the_database(tmp_path: Path) -> None:
    path = tmp_path / "db.sqlite"
    writer = Writer(lambda: _connect(path), max_batch=8, idle_checkpoint=0.05)
    try:
        _write_blob(writer)
        assert _database_bytes_after(path, 5.0) >= BLOB
    finally:
        writer.close()


def test_without_idle_checkpoints_the_pages_stay_in_the_wal(tmp_path: Path) -> None:
    path = tmp_path / "db.sqlite"
    writer = Writer(lambda: _connect(path), max_batch=8, idle_checkpoint=0)
    try:
        _write_blob(writer)
        assert _database_bytes_after(path, 0.5) < BLOB
        assert (tmp_path / "db.sqlite-wal").stat().st_size >= BLOB
    finally:
        writer.close()


def test_the_store_sets_the_writer_connections_autocheckpoint(tmp_path: Path) -> None:
    for pages in (1000, 16384):
        store = SqliteStore(tmp_path / f"{pages}.db", synchronous="NORMAL", wal_autocheckpoint=pages)
        try:
            got = store._writer.submit(
                lambda conn, after: conn.execute("PRAGMA wal_autocheckpoint").fetchone()[0]
            ).result(10)
            assert got == pages
        finally:
            asyncio.run(store.close())
