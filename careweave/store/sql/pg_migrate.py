"""Numbered migrations on PostgreSQL: the core schema (``pg_schema.py``) and every component's own
(``components.py``, translated by ``pg_sql.translate_ddl``).

Rules:
1. ``component_version`` holds, per name, the number of the last migration applied; each migration
   runs in its own transaction with its version row, so a failure leaves the previous version.
2. A session-level advisory lock serialises migrating processes: several servers starting at once
   on a new database migrate it once, the others wait and then find nothing to do.
"""

from __future__ import annotations

from typing import Any

import psycopg

from careweave.store.sql.components import COMPONENTS
from careweave.store.sql.pg_schema import CORE, MIGRATIONS
from careweave.store.sql.pg_sql import translate_ddl

__all__ = ["migrate", "pending_migrations", "schema_plan"]

_LOCK = 0x63617265_77656176  # "careweav": the migration lock's key
_VERSIONS = (
    "CREATE TABLE IF NOT EXISTS component_version "
    '(name TEXT COLLATE "C" PRIMARY KEY, version BIGINT NOT NULL)'
)


def schema_plan() -> list[tuple[str, tuple[str, ...]]]:
    """(name, migrations) in the order they are applied: the core first, then the components."""
    plan = [(CORE, MIGRATIONS)]
    plan += [(c.name, tuple(translate_ddl(m) for m in c.migrations)) for c in COMPONENTS]
    return plan


def _applied(conn: psycopg.Connection[Any]) -> dict[str, int]:
    exists = conn.execute("SELECT to_regclass('component_version') IS NOT NULL").fetchone()
    if not exists or not exists[0]:
        return {}
    return {str(name): int(v) for name, v in conn.execute("SELECT name, version FROM component_version")}


def pending_migrations(conn: psycopg.Connection[Any]) -> list[str]:
    """The migrations not applied yet, as ``name #number``."""
    done = _applied(conn)
    return [
        f"{name} #{number}"
        for name, scripts in schema_plan()
        for number in range(done.get(name, 0) + 1, len(scripts) + 1)
    ]


def migrate(conn: psycopg.Connection[Any]) -> list[str]:
    """Apply what is pending (``conn`` in autocommit mode); returns what was applied."""
    applied: list[str] = []
    conn.execute("SELECT pg_advisory_lock(%s)", (_LOCK,))
    try:
        conn.execute(_VERSIONS)
        done = _applied(conn)
        for name, scripts in schema_plan():
            for number, script in enumerate(scripts, start=1):
                if number <= done.get(name, 0):
                    continue
                with conn.transaction():
                    for statement in script.split(";\n"):
                        if statement.strip():
                            conn.execute(statement)  # no parameters: the text is sent as it is
                    conn.execute(
                        "INSERT INTO component_version (name, version) VALUES (%s, %s) "
                        "ON CONFLICT (name) DO UPDATE SET version = excluded.version",
                        (name, number),
                    )
                applied.append(f"{name} #{number}")
    finally:
        conn.execute("SELECT pg_advisory_unlock(%s)", (_LOCK,))
    return applied
