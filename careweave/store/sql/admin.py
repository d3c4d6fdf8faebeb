"""Statements (SQLite and PostgreSQL) for custom search parameters, background jobs and reindexing.

Rules:
1. Every statement names its tenant (``tid = ?``), like every other statement of the backend;
   a job is always read and changed through its tenant.
2. Functions here take a connection and run inside the caller's transaction (the writer's, or a
   reader's); they never commit.
3. A reindex chunk reads the resources and writes their new index rows in the same transaction, so
   a concurrent update can never be overwritten by rows computed from an older version (on
   PostgreSQL, where writers run concurrently, the rows read are locked: ``lock=True``).
4. Portable SQL only (``?`` placeholders, ON CONFLICT, RETURNING): both backends run it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import orjson

from careweave.search.index import IndexRows
from careweave.store.base import CustomParam, Job
from careweave.store.sql.components import Sql

__all__ = [
    "add_job",
    "claim_job",
    "count",
    "custom_params",
    "jobs",
    "mark_params_ready",
    "set_custom_params",
    "update_job",
]

_JOB_COLUMNS = "jid, tid, kind, payload, state, cursor, done, total, created_ms, updated_ms, error"
_JOB_FIELDS = frozenset({"state", "cursor", "done", "total", "error", "payload"})


def _job(row: Sequence[Any]) -> Job:
    jid, tid, kind, payload, state, cursor, done, total, created, updated, err = row
    return Job(jid, tid, kind, orjson.loads(payload), state, cursor, done, total, created, updated, err)


def custom_params(conn: Sql, tid: int) -> list[CustomParam]:
    rows = conn.execute(
        "SELECT key, resource_id, url, definition, state FROM custom_param WHERE tid = ? ORDER BY key", (tid,)
    )
    return [CustomParam(k, r, u, orjson.loads(d), s) for k, r, u, d, s in rows]


def set_custom_params(conn: Sql, tid: int, resource_id: str, params: Sequence[CustomParam]) -> None:
    conn.execute("DELETE FROM custom_param WHERE tid = ? AND resource_id = ?", (tid, resource_id))
    conn.executemany(
        "INSERT INTO custom_param (tid, key, resource_id, url, definition, state) "
        "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (tid, key) DO UPDATE SET resource_id = excluded.resource_id, "
        "url = excluded.url, definition = excluded.definition, state = excluded.state",
        [(tid, p.key, p.resource_id, p.url, orjson.dumps(dict(p.definition)), p.state) for p in params],
    )
    _bump(conn, tid)


def mark_params_ready(conn: Sql, tid: int, keys: Sequence[str]) -> None:
    conn.executemany(
        "UPDATE custom_param SET state = 'ready' WHERE tid = ? AND key = ?", [(tid, k) for k in keys]
    )
    _bump(conn, tid)


def _bump(conn: Sql, tid: int) -> None:
    conn.execute("UPDATE tenant SET params_generation = params_generation + 1 WHERE tid = ?", (tid,))


def add_job(conn: Sql, tid: int, kind: str, payload: Any, total: int, now_ms: int) -> int:
    cur = conn.execute(
        "INSERT INTO job (tid, kind, payload, state, total, created_ms, updated_ms) "
        "VALUES (?, ?, ?, 'queued', ?, ?, ?) RETURNING jid",
        (tid, kind, orjson.dumps(payload), total, now_ms, now_ms),
    )
    return int(cur.fetchone()[0])


def jobs(conn: Sql, tid: int, kind: str | None) -> list[Job]:
    if kind is None:
        rows = conn.execute(f"SELECT {_JOB_COLUMNS} FROM job WHERE tid = ? ORDER BY jid", (tid,))
    else:
        rows = conn.execute(
            f"SELECT {_JOB_COLUMNS} FROM job WHERE tid = ? AND kind = ? ORDER BY jid", (tid, kind)
        )
    return [_job(r) for r in rows]


def claim_job(
    conn: Sql, tid: int, kinds: Sequence[str], now_ms: int, lease_ms: int, lock: bool = False
) -> Job | None:
    """A queued job, or a running one whose lease ran out (no progress for ``lease_ms``).
    ``lock``: skip jobs another transaction is claiming right now (PostgreSQL)."""
    marks = ", ".join("?" for _ in kinds)
    row = conn.execute(
        f"SELECT {_JOB_COLUMNS} FROM job WHERE tid = ? AND (state = 'queued' OR "
        f"(state = 'running' AND updated_ms <= ?)) "
        f"AND kind IN ({marks}) ORDER BY jid LIMIT 1{' FOR UPDATE SKIP LOCKED' if lock else ''}",
        (tid, now_ms - lease_ms, *kinds),
    ).fetchone()
    if row is None:
        return None
    conn.execute(
        "UPDATE job SET state = 'running', updated_ms = ? WHERE tid = ? AND jid = ?", (now_ms, tid, row[0])
    )
    job = _job(row)
    return Job(
        job.jid,
        job.tenant,
        job.kind,
        job.payload,
        "running",
        job.cursor,
        job.done,
        job.total,
        job.created_ms,
        now_ms,
        job.error,
    )


def update_job(conn: Sql, tid: int, jid: int, now_ms: int, **fields: Any) -> None:
    unknown = set(fields) - _JOB_FIELDS
    if unknown:
        raise ValueError(f"unknown job fields: {sorted(unknown)}")
    if "payload" in fields:
        fields["payload"] = orjson.dumps(fields["payload"])
    sets = ", ".join(f"{name} = ?" for name in fields)
    conn.execute(
        f"UPDATE job SET {sets}, updated_ms = ? WHERE tid = ? AND jid = ?",
        (*fields.values(), now_ms, tid, jid),
    )


def count(conn: Sql, tid: int, types: Sequence[str]) -> int:
    if not types:
        return int(
            conn.execute("SELECT count(*) FROM resource WHERE tid = ? AND deleted = 0", (tid,)).fetchone()[0]
        )
    marks = ", ".join("?" for _ in types)
    return int(
        conn.execute(
            f"SELECT count(*) FROM resource WHERE tid = ? AND deleted = 0 AND type IN ({marks})",
            (tid, *types),
        ).fetchone()[0]
    )


def resources_after(
    conn: Sql, tid: int, types: Sequence[str], after_rk: int, limit: int, lock: bool = False
) -> list[tuple[int, bytes]]:
    """(rk, body) of the next current resources of ``types`` (all types when empty); ``lock``
    locks them until the transaction ends (PostgreSQL: concurrent writers wait)."""
    type_filter = ""
    params: list[Any] = [tid, after_rk]
    if types:
        type_filter = f" AND type IN ({', '.join('?' for _ in types)})"
        params.extend(types)
    params.append(limit)
    rows = conn.execute(
        f"SELECT rk, body FROM resource WHERE tid = ? AND rk > ? AND deleted = 0{type_filter} "
        f"ORDER BY rk LIMIT ?{' FOR UPDATE' if lock else ''}",
        params,
    )
    return [(rk, bytes(body)) for rk, body in rows]


def only(rows: IndexRows, keys: frozenset[str]) -> IndexRows:
    """The rows of ``rows`` that belong to the parameters ``keys`` (and their derived keys)."""

    def wanted(key: str) -> bool:
        return key in keys or key.split(":", 1)[0] in keys

    out = IndexRows()
    for attr in (
        "tokens",
        "token_texts",
        "strings",
        "references",
        "dates",
        "numbers",
        "quantities",
        "uris",
        "composites",
        "geo",
    ):
        setattr(out, attr, [r for r in getattr(rows, attr) if wanted(r[0])])
    return out


Reindex = Callable[[dict[str, Any]], IndexRows]
