"""SQL for the hl7 subsystem (see components.py for the rules): the durable inbox and the routes.

Rules:
1. ``hl7_message`` keeps every message the gateway received, raw, with its status: ``received``
   (stored, not yet processed), ``processed``, ``error`` (mapping or validation failed: the error
   queue) or ``rejected`` (not a message careweave can take: header unreadable, unsupported type).
   ``reply`` is what the sender was answered on its connection (the ACK a duplicate gets again);
   ``app_ack`` is the enhanced-mode application ACK, when the sender asked for one.
2. A message is one row per (tenant, MSH-3, MSH-4, MSH-10): a second insert of the same key finds
   the first row (duplicate detection). Messages whose control id cannot be read get ``''`` and
   are never duplicates of each other (partial unique index).
3. ``hl7_route`` maps a sending facility (MSH-4, upper case) to a tenant, with an optional return
   address for application ACKs; like ``tenant`` it is a directory read across tenants, and a
   tenant's routes are removed with it.
4. Every statement on ``hl7_message`` and ``hl7_ack_delivery`` carries ``tid = ?``.
5. ``hl7_ack_delivery`` (migration 2) records the delivery of an enhanced-mode application ACK:
   attempts, when the next one is due, the last failure. The state itself stays in
   ``hl7_message.app_ack_state``: ``pending`` (to be sent, or retrying), ``sent``, ``failed``
   (every attempt failed: an operator may resend it), ``kept`` (no return address).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from careweave.store.sql.components import Sql

__all__ = [
    "MIGRATIONS",
    "NAME",
    "TENANT_TABLES",
    "AckDelivery",
    "InboxRow",
    "NewMessage",
    "Route",
    "ack_delivery",
    "counts",
    "find_key",
    "get",
    "insert",
    "list_rows",
    "pending_acks",
    "record_ack_attempt",
    "remove_route",
    "reopen",
    "routes",
    "set_app_ack_state",
    "set_outcome",
    "set_raw",
    "set_route",
    "unfinished",
]

NAME = "hl7"

_V1 = """
CREATE TABLE hl7_message (
  id INTEGER PRIMARY KEY,
  tid INTEGER NOT NULL,
  sender TEXT NOT NULL,
  facility TEXT NOT NULL,
  control_id TEXT NOT NULL,
  kind TEXT NOT NULL,
  status TEXT NOT NULL,
  received_ms INTEGER NOT NULL,
  updated_ms INTEGER NOT NULL,
  attempts INTEGER NOT NULL,
  source TEXT NOT NULL,
  raw BLOB NOT NULL,
  original BLOB,
  reason TEXT,
  reply BLOB,
  app_ack BLOB,
  app_ack_state TEXT
);
CREATE UNIQUE INDEX hl7_message_key ON hl7_message (tid, sender, facility, control_id)
  WHERE control_id <> '';
CREATE INDEX hl7_message_status ON hl7_message (tid, status, id);
CREATE TABLE hl7_route (
  facility TEXT PRIMARY KEY,
  tid INTEGER NOT NULL,
  ack_host TEXT,
  ack_port INTEGER
)
"""

_V2 = """
CREATE TABLE hl7_ack_delivery (
  tid INTEGER NOT NULL,
  message_id INTEGER NOT NULL,
  attempts INTEGER NOT NULL,
  next_ms INTEGER NOT NULL,
  updated_ms INTEGER NOT NULL,
  last_error TEXT
);
CREATE UNIQUE INDEX hl7_ack_delivery_key ON hl7_ack_delivery (tid, message_id)
"""

MIGRATIONS: tuple[str, ...] = (_V1, _V2)
TENANT_TABLES: tuple[str, ...] = ("hl7_message", "hl7_route", "hl7_ack_delivery")

_COLUMNS = (
    "id, tid, sender, facility, control_id, kind, status, received_ms, updated_ms, attempts, source, "
    "raw, original, reason, reply, app_ack, app_ack_state"
)
_INSERT = (
    "INSERT INTO hl7_message (tid, sender, facility, control_id, kind, status, received_ms, "
    "updated_ms, attempts, source, raw, reason, reply, app_ack, app_ack_state) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
    "ON CONFLICT (tid, sender, facility, control_id) WHERE control_id <> '' DO NOTHING RETURNING id"
)
_FIND_KEY = (
    f"SELECT {_COLUMNS} FROM hl7_message "
    "WHERE tid = ? AND sender = ? AND facility = ? AND control_id = ? AND control_id <> ''"
)


@dataclass(frozen=True, slots=True)
class NewMessage:
    """A message about to be stored (rule 1); ``status`` is received, or rejected at once."""

    tid: int
    sender: str
    facility: str
    control_id: str
    kind: str
    status: str
    received_ms: int
    source: str
    raw: bytes
    reason: str | None = None
    reply: bytes | None = None
    app_ack: bytes | None = None
    app_ack_state: str | None = None


@dataclass(frozen=True, slots=True)
class InboxRow:
    """One stored message."""

    id: int
    tid: int
    sender: str
    facility: str
    control_id: str
    kind: str
    status: str
    received_ms: int
    updated_ms: int
    attempts: int
    source: str
    raw: bytes
    original: bytes | None
    reason: str | None
    reply: bytes | None
    app_ack: bytes | None
    app_ack_state: str | None


@dataclass(frozen=True, slots=True)
class AckDelivery:
    """How the delivery of a message's application ACK went (rule 5)."""

    message_id: int
    attempts: int
    next_ms: int
    updated_ms: int
    last_error: str | None


@dataclass(frozen=True, slots=True)
class Route:
    facility: str
    tid: int
    ack_host: str | None = None
    ack_port: int | None = None


def _row(values: Sequence[Any]) -> InboxRow:
    v = list(values)
    for i in (11, 12, 14, 15):  # BLOB columns come back as bytes (SQLite) or memoryview (psycopg)
        if v[i] is not None:
            v[i] = bytes(v[i])
    return InboxRow(*v)


def insert(sql: Sql, message: NewMessage) -> int | None:
    """Store a message; its id, or None when the same key is stored already (a duplicate)."""
    m = message
    found = sql.execute(
        _INSERT,
        (m.tid, m.sender, m.facility, m.control_id, m.kind, m.status, m.received_ms, m.received_ms,
         0 if m.status == "received" else 1, m.source, m.raw, m.reason, m.reply, m.app_ack,
         m.app_ack_state),
    ).fetchone()  # fmt: skip
    return None if found is None else int(found[0])


def find_key(sql: Sql, tid: int, sender: str, facility: str, control_id: str) -> InboxRow | None:
    found = sql.execute(_FIND_KEY, (tid, sender, facility, control_id)).fetchone()
    return None if found is None else _row(found)


def get(sql: Sql, tid: int, id: int) -> InboxRow | None:
    found = sql.execute(f"SELECT {_COLUMNS} FROM hl7_message WHERE tid = ? AND id = ?", (tid, id)).fetchone()
    return None if found is None else _row(found)


def set_outcome(
    sql: Sql,
    tid: int,
    id: int,
    *,
    status: str,
    reason: str | None,
    reply: bytes | None,
    app_ack: bytes | None,
    app_ack_state: str | None,
    now_ms: int,
) -> None:
    """Record what processing (or a replay) made of a message."""
    sql.execute(
        "UPDATE hl7_message SET status = ?, reason = ?, reply = ?, app_ack = ?, app_ack_state = ?, "
        "updated_ms = ?, attempts = attempts + 1 WHERE tid = ? AND id = ?",
        (status, reason, reply, app_ack, app_ack_state, now_ms, tid, id),
    )


def set_app_ack_state(sql: Sql, tid: int, id: int, state: str, now_ms: int) -> None:
    sql.execute(
        "UPDATE hl7_message SET app_ack_state = ?, updated_ms = ? WHERE tid = ? AND id = ?",
        (state, now_ms, tid, id),
    )


def set_raw(sql: Sql, tid: int, id: int, raw: bytes, now_ms: int) -> bool:
    """An operator's corrected text for a message; the first text received is kept in ``original``."""
    cur = sql.execute(
        "UPDATE hl7_message SET original = COALESCE(original, raw), raw = ?, updated_ms = ? "
        "WHERE tid = ? AND id = ?",
        (raw, now_ms, tid, id),
    )
    return bool(cur.rowcount)


def reopen(sql: Sql, tid: int, id: int, raw: bytes, now_ms: int) -> None:
    """A rejected message sent again: back to ``received`` with the new text (the first text is
    kept in ``original`` when they differ)."""
    sql.execute(
        "UPDATE hl7_message SET original = CASE WHEN raw = ? THEN original ELSE COALESCE(original, raw) END, "
        "raw = ?, status = 'received', updated_ms = ? WHERE tid = ? AND id = ?",
        (raw, raw, now_ms, tid, id),
    )


def list_rows(
    sql: Sql,
    tid: int,
    statuses: Sequence[str],
    *,
    before_id: int | None = None,
    limit: int = 100,
    ack_states: Sequence[str] = (),
) -> list[InboxRow]:
    """A tenant's messages in these statuses (all when empty) and application ACK states (any
    when empty), newest first."""
    where = ["tid = ?"]
    params: list[Any] = [tid]
    if statuses:
        where.append(f"status IN ({', '.join('?' for _ in statuses)})")
        params.extend(statuses)
    if ack_states:
        where.append(f"app_ack_state IN ({', '.join('?' for _ in ack_states)})")
        params.extend(ack_states)
    if before_id is not None:
        where.append("id < ?")
        params.append(before_id)
    rows = sql.execute(
        f"SELECT {_COLUMNS} FROM hl7_message WHERE {' AND '.join(where)} ORDER BY id DESC LIMIT ?",
        [*params, limit],
    ).fetchall()
    return [_row(r) for r in rows]


def unfinished(sql: Sql, tid: int, limit: int) -> list[InboxRow]:
    """A tenant's messages left ``received`` (a crash between receipt and processing), oldest first."""
    rows = sql.execute(
        f"SELECT {_COLUMNS} FROM hl7_message WHERE tid = ? AND status = 'received' ORDER BY id LIMIT ?",
        (tid, limit),
    ).fetchall()
    return [_row(r) for r in rows]


def counts(sql: Sql, tid: int) -> dict[str, int]:
    rows = sql.execute("SELECT status, count(*) FROM hl7_message WHERE tid = ? GROUP BY status", (tid,))
    return {str(status): int(n) for status, n in rows}


def routes(sql: Sql) -> list[Route]:
    rows = sql.execute("SELECT facility, tid, ack_host, ack_port FROM hl7_route ORDER BY facility")
    return [Route(*r) for r in rows]


def set_route(sql: Sql, route: Route) -> None:
    sql.execute(
        "INSERT INTO hl7_route (facility, tid, ack_host, ack_port) VALUES (?, ?, ?, ?) "
        "ON CONFLICT (facility) DO UPDATE SET tid = excluded.tid, ack_host = excluded.ack_host, "
        "ack_port = excluded.ack_port",
        (route.facility, route.tid, route.ack_host, route.ack_port),
    )


def remove_route(sql: Sql, facility: str) -> bool:
    return bool(sql.execute("DELETE FROM hl7_route WHERE facility = ?", (facility,)).rowcount)


def record_ack_attempt(
    sql: Sql, tid: int, message_id: int, *, attempts: int, next_ms: int, error: str | None, now_ms: int
) -> None:
    """Rule 5: the number of attempts so far, when the next is due, the last failure (None: sent)."""
    sql.execute(
        "INSERT INTO hl7_ack_delivery (tid, message_id, attempts, next_ms, updated_ms, last_error) "
        "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (tid, message_id) DO UPDATE SET "
        "attempts = excluded.attempts, next_ms = excluded.next_ms, updated_ms = excluded.updated_ms, "
        "last_error = excluded.last_error",
        (tid, message_id, attempts, next_ms, now_ms, error),
    )


def ack_delivery(sql: Sql, tid: int, message_id: int) -> AckDelivery | None:
    found = sql.execute(
        "SELECT message_id, attempts, next_ms, updated_ms, last_error FROM hl7_ack_delivery "
        "WHERE tid = ? AND message_id = ?",
        (tid, message_id),
    ).fetchone()
    return None if found is None else AckDelivery(*found)


def pending_acks(sql: Sql, tid: int, limit: int) -> list[tuple[InboxRow, AckDelivery | None]]:
    """A tenant's application ACKs still to be delivered (``pending``), oldest first."""
    rows = sql.execute(
        f"SELECT {_COLUMNS} FROM hl7_message WHERE tid = ? AND app_ack_state = 'pending' ORDER BY id LIMIT ?",
        (tid, limit),
    ).fetchall()
    return [(row, ack_delivery(sql, tid, row.id)) for row in map(_row, rows)]
