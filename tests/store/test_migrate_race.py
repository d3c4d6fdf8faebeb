"""Several processes opening one new SQLite file at once migrate it once (real processes)."""

from __future__ import annotations

import multiprocessing
import sqlite3
from pathlib import Path


def _open(path: str, ready: object) -> None:
    import asyncio

    from careweave.store.sql.sqlite import SqliteStore

    ready.wait()  # type: ignore[attr-defined]
    store = SqliteStore(Path(path))
    asyncio.run(store.close())


def test_processes_starting_together_migrate_once(tmp_path: Path) -> None:
    from careweave.store.sql.components import COMPONENTS
    from careweave.store.sql.schema import MIGRATIONS

    path = tmp_path / "careweave.db"
    ctx = multiprocessing.get_context("spawn")
    ready = ctx.Event()
    procs = [ctx.Process(target=_open, args=(str(path), ready)) for _ in range(4)]
    for p in procs:
        p.start()
    ready.set()
    for p in procs:
        p.join(60)
    assert [p.exitcode for p in procs] == [0, 0, 0, 0]
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == len(MIGRATIONS)
    versions = dict(conn.execute("SELECT name, version FROM component_version"))
    assert versions == {c.name: len(c.migrations) for c in COMPONENTS if c.migrations}
    assert conn.execute("SELECT count(*) FROM tenant WHERE name = 'default'").fetchone()[0] == 1
    conn.close()
