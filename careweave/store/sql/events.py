"""SQL for the events subsystem (see components.py for the rules).

Tables:
* ``ev_cursor``: the dispatcher's position in the change log (history ``seq``). It moves only in
  the transaction that enqueues the events of the changes it passes (compare-and-set: two
  dispatchers never enqueue the same change twice; a crash replays, never skips).
* ``ev_subscription``: the delivery state of each Subscription the dispatcher has seen: status as
  the dispatcher knows it, channel kind, the last event number allocated, the Subscription version
  of careweave's own last status write (not a change to react to), and a lease (``lease_owner``,
  ``lease_until_ms``) that one delivery worker holds while it sends that subscription's queue, so
  notifications leave in order even with several worker processes.
* ``ev_event``: every event of every subscription, numbered from 1 (``$events`` replays them).
* ``ev_delivery``: the queue: one notification each (an event, a handshake, a heartbeat); state
  ``pending`` -> ``done``, or ``dead`` (the dead-letter list) when retries gave up.
* ``ev_attempt``: every delivery attempt and its result.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from careweave.store.sql.components import Sql

__all__ = [
    "DELIVERABLE",
    "MIGRATIONS",
    "NAME",
    "TENANT_TABLES",
    "CursorMoved",
    "DeliveryRow",
    "EventRow",
    "SubscriptionRow",
    "acknowledge",
    "advance_cursor",
    "attempts",
    "claim",
    "counts",
    "cursor",
    "delivery_head",
    "delivery_ids",
    "drop_subscription",
    "due_batch",
    "due_now",
    "enqueue",
    "events",
    "finish_delivery",
    "insert_delivery",
    "list_deliveries",
    "next_due_ms",
    "record_attempt",
    "release",
    "renew",
    "replay",
    "set_subscription_status",
    "subscription",
    "subscriptions",
    "touch",
    "upsert_subscription",
]

NAME = "events"
MIGRATIONS: tuple[str, ...] = (
    """
CREATE TABLE ev_cursor (name TEXT NOT NULL, seq INTEGER NOT NULL);
CREATE UNIQUE INDEX ev_cursor_name ON ev_cursor (name);
CREATE TABLE ev_subscription (
  skey INTEGER PRIMARY KEY,
  tid INTEGER NOT NULL,
  sid TEXT NOT NULL,
  status TEXT NOT NULL,
  channel TEXT NOT NULL,
  version INTEGER NOT NULL,
  last_number INTEGER NOT NULL,
  own_version INTEGER NOT NULL,
  heartbeat_s INTEGER,
  last_sent_ms INTEGER NOT NULL,
  lease_owner TEXT,
  lease_until_ms INTEGER NOT NULL,
  error TEXT,
  created_ms INTEGER NOT NULL
);
CREATE UNIQUE INDEX ev_subscription_id ON ev_subscription (tid, sid);
CREATE TABLE ev_event (
  skey INTEGER NOT NULL,
  number INTEGER NOT NULL,
  tid INTEGER NOT NULL,
  seq INTEGER NOT NULL,
  type TEXT NOT NULL,
  id TEXT NOT NULL,
  version INTEGER NOT NULL,
  interaction TEXT NOT NULL,
  ts_ms INTEGER NOT NULL,
  source TEXT
);
CREATE UNIQUE INDEX ev_event_number ON ev_event (skey, number);
CREATE TABLE ev_delivery (
  did INTEGER PRIMARY KEY,
  skey INTEGER NOT NULL,
  tid INTEGER NOT NULL,
  uuid TEXT NOT NULL,
  kind TEXT NOT NULL,
  first_number INTEGER NOT NULL,
  last_number INTEGER NOT NULL,
  state TEXT NOT NULL,
  attempts INTEGER NOT NULL,
  due_ms INTEGER NOT NULL,
  first_attempt_ms INTEGER,
  last_error TEXT,
  created_ms INTEGER NOT NULL,
  done_ms INTEGER
);
CREATE INDEX ev_delivery_queue ON ev_delivery (skey, state, did);
CREATE UNIQUE INDEX ev_delivery_uuid ON ev_delivery (uuid);
CREATE TABLE ev_attempt (
  aid INTEGER PRIMARY KEY,
  did INTEGER NOT NULL,
  tid INTEGER NOT NULL,
  attempt INTEGER NOT NULL,
  at_ms INTEGER NOT NULL,
  ok INTEGER NOT NULL,
  status INTEGER,
  error TEXT,
  duration_ms INTEGER NOT NULL
);
CREATE INDEX ev_attempt_delivery ON ev_attempt (did, attempt)
""",
    # 2: an event's additional context (the topic's notificationShape include / revInclude), as
    # space-separated ``Type/id/version`` references found when the event was queued
    """
ALTER TABLE ev_event ADD COLUMN context TEXT
""",
)
TENANT_TABLES: tuple[str, ...] = ("ev_attempt", "ev_delivery", "ev_event", "ev_subscription")

DELIVERABLE = ("requested", "active")


@dataclass(frozen=True, slots=True)
class SubscriptionRow:
    skey: int
    tid: int
    sid: str
    status: str
    channel: str
    version: int
    last_number: int
    own_version: int
    heartbeat_s: int | None
    last_sent_ms: int
    error: str | None


_SUB_COLUMNS = (
    "skey, tid, sid, status, channel, version, last_number, own_version, heartbeat_s, last_sent_ms, error"
)


@dataclass(frozen=True, slots=True)
class EventRow:
    number: int
    seq: int
    type: str
    id: str
    version: int
    interaction: str
    ts_ms: int
    source: str | None
    context: str | None = None  # ``Type/id/version`` references, space-separated


@dataclass(frozen=True, slots=True)
class DeliveryRow:
    did: int
    skey: int
    tid: int
    uuid: str
    kind: str  # event | handshake | heartbeat
    first_number: int
    last_number: int
    state: str  # pending | done | dead
    attempts: int
    due_ms: int
    first_attempt_ms: int | None
    last_error: str | None
    created_ms: int
    done_ms: int | None


_DELIVERY_COLUMNS = (
    "did, skey, tid, uuid, kind, first_number, last_number, state, attempts, due_ms, first_attempt_ms, "
    "last_error, created_ms, done_ms"
)


# -- the dispatcher's cursor ------------------------------------------------------------------------
def cursor(sql: Sql, name: str = "dispatcher") -> int:
    row = sql.execute("SELECT seq FROM ev_cursor WHERE name = ?", (name,)).fetchone()
    return int(row[0]) if row else 0


def change_head(sql: Sql) -> int:
    """The newest committed change-log position (0 when the log is empty)."""
    row = sql.execute("SELECT max(seq) FROM history").fetchone()
    return int(row[0]) if row and row[0] is not None else 0


class CursorMoved(Exception):
    """Another dispatcher moved the cursor first: this batch is rolled back and recomputed."""


def advance_cursor(sql: Sql, expected: int, to: int, name: str = "dispatcher") -> None:
    """Compare-and-set: the cursor moves from ``expected`` to ``to`` or the transaction fails."""
    if expected == 0:
        sql.execute("INSERT INTO ev_cursor (name, seq) VALUES (?, 0) ON CONFLICT (name) DO NOTHING", (name,))
    cur = sql.execute("UPDATE ev_cursor SET seq = ? WHERE name = ? AND seq = ?", (to, name, expected))
    if cur.rowcount != 1:
        raise CursorMoved(name)


# -- subscriptions ----------------------------------------------------------------------------------
def _sub(row: Sequence[Any]) -> SubscriptionRow:
    return SubscriptionRow(*row)


def subscription(sql: Sql, tid: int, sid: str) -> SubscriptionRow | None:
    row = sql.execute(
        f"SELECT {_SUB_COLUMNS} FROM ev_subscription WHERE tid = ? AND sid = ?", (tid, sid)
    ).fetchone()
    return _sub(row) if row else None


def subscriptions(sql: Sql, tid: int | None = None) -> list[SubscriptionRow]:
    if tid is None:
        rows = sql.execute(f"SELECT {_SUB_COLUMNS} FROM ev_subscription ORDER BY skey").fetchall()
    else:
        rows = sql.execute(
            f"SELECT {_SUB_COLUMNS} FROM ev_subscription WHERE tid = ? ORDER BY skey", (tid,)
        ).fetchall()
    return [_sub(r) for r in rows]


def upsert_subscription(
    sql: Sql,
    tid: int,
    sid: str,
    *,
    status: str,
    channel: str,
    version: int,
    heartbeat_s: int | None,
    now_ms: int,
    error: str | None = None,
) -> int:
    """Insert or update a subscription's delivery state (the event count is kept); its key."""
    row = sql.execute(
        "INSERT INTO ev_subscription (tid, sid, status, channel, version, last_number, own_version, "
        "heartbeat_s, last_sent_ms, lease_owner, lease_until_ms, error, created_ms) "
        "VALUES (?, ?, ?, ?, ?, 0, 0, ?, ?, NULL, 0, ?, ?) "
        "ON CONFLICT (tid, sid) DO UPDATE SET status = excluded.status, channel = excluded.channel, "
        "version = excluded.version, heartbeat_s = excluded.heartbeat_s, error = excluded.error "
        "RETURNING skey",
        (tid, sid, status, channel, version, heartbeat_s, now_ms, error, now_ms),
    ).fetchone()
    return int(row[0])


def set_subscription_status(
    sql: Sql, skey: int, status: str, *, error: str | None, own_version: int | None = None
) -> None:
    if own_version is None:
        sql.execute("UPDATE ev_subscription SET status = ?, error = ? WHERE skey = ?", (status, error, skey))
    else:
        sql.execute(
            "UPDATE ev_subscription SET status = ?, error = ?, own_version = ?, version = ? WHERE skey = ?",
            (status, error, own_version, own_version, skey),
        )


def drop_subscription(sql: Sql, tid: int, sid: str) -> None:
    """Forget a deleted subscription: its state, events, queue and attempts."""
    row = sql.execute("SELECT skey FROM ev_subscription WHERE tid = ? AND sid = ?", (tid, sid)).fetchone()
    if row is None:
        return
    skey = row[0]
    sql.execute(
        "DELETE FROM ev_attempt WHERE tid = ? AND did IN (SELECT did FROM ev_delivery WHERE skey = ?)",
        (tid, skey),
    )
    for table in ("ev_delivery", "ev_event", "ev_subscription"):
        sql.execute(f"DELETE FROM {table} WHERE skey = ?", (skey,))


# -- events and the queue ---------------------------------------------------------------------------
def enqueue(
    sql: Sql,
    skey: int,
    tid: int,
    *,
    uuid: str,
    seq: int,
    type: str,
    id: str,
    version: int,
    interaction: str,
    ts_ms: int,
    source: str | None,
    now_ms: int,
    dead: bool,
    context: str | None = None,
) -> int:
    """Number a new event of subscription ``skey``, record it and queue its notification (dead at
    once when the subscription is in error: it waits in the dead-letter list). Returns the number."""
    row = sql.execute(
        "UPDATE ev_subscription SET last_number = last_number + 1 WHERE skey = ? RETURNING last_number",
        (skey,),
    ).fetchone()
    number = int(row[0])
    sql.execute(
        "INSERT INTO ev_event (skey, number, tid, seq, type, id, version, interaction, ts_ms, source, "
        "context) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (skey, number, tid, seq, type, id, version, interaction, ts_ms, source, context),
    )
    insert_delivery(
        sql, skey, tid, uuid=uuid, kind="event", numbers=(number, number), now_ms=now_ms, dead=dead
    )
    return number


def insert_delivery(
    sql: Sql,
    skey: int,
    tid: int,
    *,
    uuid: str,
    kind: str,
    numbers: tuple[int, int],
    now_ms: int,
    dead: bool = False,
) -> int:
    row = sql.execute(
        "INSERT INTO ev_delivery (skey, tid, uuid, kind, first_number, last_number, state, attempts, "
        "due_ms, first_attempt_ms, last_error, created_ms, done_ms) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, 0, ?, NULL, NULL, ?, NULL) RETURNING did",
        (skey, tid, uuid, kind, numbers[0], numbers[1], "dead" if dead else "pending", now_ms, now_ms),
    ).fetchone()
    return int(row[0])


def events(sql: Sql, skey: int, first: int, last: int) -> list[EventRow]:
    rows = sql.execute(
        "SELECT number, seq, type, id, version, interaction, ts_ms, source, context FROM ev_event "
        "WHERE skey = ? AND number >= ? AND number <= ? ORDER BY number",
        (skey, first, last),
    ).fetchall()
    return [EventRow(*r) for r in rows]


def _delivery(row: Sequence[Any]) -> DeliveryRow:
    return DeliveryRow(*row)


def delivery_head(sql: Sql, skey: int) -> DeliveryRow | None:
    """The subscription's oldest pending delivery: the only one that may be sent (in order)."""
    row = sql.execute(
        f"SELECT {_DELIVERY_COLUMNS} FROM ev_delivery WHERE skey = ? AND state = 'pending' "
        "ORDER BY did LIMIT 1",
        (skey,),
    ).fetchone()
    return _delivery(row) if row else None


def list_deliveries(
    sql: Sql, tid: int, *, skey: int | None = None, state: str | None = None, limit: int = 100
) -> list[DeliveryRow]:
    where, params = ["tid = ?"], [tid]
    if skey is not None:
        where.append("skey = ?")
        params.append(skey)
    if state is not None:
        where.append("state = ?")
        params.append(state)  # type: ignore[arg-type]
    rows = sql.execute(
        f"SELECT {_DELIVERY_COLUMNS} FROM ev_delivery WHERE {' AND '.join(where)} ORDER BY did LIMIT ?",
        (*params, limit),
    ).fetchall()
    return [_delivery(r) for r in rows]


# -- leases -----------------------------------------------------------------------------------------
def _only(only: Sequence[tuple[int, str]] | None) -> tuple[str, tuple[int | str, ...]]:
    """A condition keeping only these (tenant key, subscription id) pairs (None: all)."""
    if only is None:
        return "", ()
    pairs = " OR ".join("(s.tid = ? AND s.sid = ?)" for _ in only)
    return f" AND ({pairs})", tuple(v for pair in only for v in pair)


def claim(
    sql: Sql,
    owner: str,
    channels: Sequence[str],
    now_ms: int,
    lease_ms: int,
    limit: int,
    only: Sequence[tuple[int, str]] | None = None,
) -> list[SubscriptionRow]:
    """Lease up to ``limit`` deliverable subscriptions of these channel kinds (and, with ``only``,
    among these (tenant key, id) pairs) whose oldest pending delivery is due and that no live
    lease holds."""
    if not channels or (only is not None and not only):
        return []
    marks = ", ".join("?" for _ in channels)
    among, values = _only(only)
    rows = sql.execute(
        f"UPDATE ev_subscription SET lease_owner = ?, lease_until_ms = ? "
        f"WHERE lease_until_ms < ? AND skey IN ("
        f"SELECT s.skey FROM ev_subscription s WHERE s.status IN ('requested', 'active') "
        f"AND s.channel IN ({marks}) AND s.lease_until_ms < ?{among} "
        f"AND (SELECT d.due_ms FROM ev_delivery d WHERE d.skey = s.skey AND d.state = 'pending' "
        f"ORDER BY d.did LIMIT 1) <= ? ORDER BY s.skey LIMIT ?) "
        f"RETURNING {_SUB_COLUMNS}",
        (owner, now_ms + lease_ms, now_ms, *channels, now_ms, *values, now_ms, limit),
    ).fetchall()
    return [_sub(r) for r in rows]


def renew(sql: Sql, owner: str, skeys: Sequence[int], until_ms: int) -> None:
    sql.executemany(
        "UPDATE ev_subscription SET lease_until_ms = ? WHERE skey = ? AND lease_owner = ?",
        [(until_ms, skey, owner) for skey in skeys],
    )


def release(sql: Sql, owner: str, skey: int) -> None:
    sql.execute(
        "UPDATE ev_subscription SET lease_owner = NULL, lease_until_ms = 0 "
        "WHERE skey = ? AND lease_owner = ?",
        (skey, owner),
    )


def next_due_ms(
    sql: Sql, channels: Sequence[str], only: Sequence[tuple[int, str]] | None = None
) -> int | None:
    """When the earliest pending head of a deliverable subscription falls due (None: nothing)."""
    if not channels or (only is not None and not only):
        return None
    marks = ", ".join("?" for _ in channels)
    among, values = _only(only)
    row = sql.execute(
        f"SELECT min(d.due_ms) FROM ev_delivery d JOIN ev_subscription s ON s.skey = d.skey "
        f"WHERE d.state = 'pending' AND s.status IN ('requested', 'active') AND s.channel IN ({marks})"
        f"{among}",
        (*channels, *values),
    ).fetchone()
    return None if row is None or row[0] is None else int(row[0])


# -- results --------------------------------------------------------------------------------------
def record_attempt(
    sql: Sql,
    delivery: DeliveryRow,
    *,
    attempt: int,
    at_ms: int,
    ok: bool,
    status: int | None,
    error: str | None,
    duration_ms: int,
) -> None:
    sql.execute(
        "INSERT INTO ev_attempt (did, tid, attempt, at_ms, ok, status, error, duration_ms) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        (delivery.did, delivery.tid, attempt, at_ms, int(ok), status, error, duration_ms),
    )


def finish_delivery(
    sql: Sql,
    delivery: DeliveryRow,
    *,
    state: str,
    attempts: int,
    due_ms: int,
    first_attempt_ms: int,
    error: str | None,
    now_ms: int,
) -> None:
    """Move a delivery on after an attempt: ``done``, ``pending`` again (a retry at ``due_ms``) or
    ``dead``; a dead head takes the rest of its subscription's queue with it (order is kept)."""
    sql.execute(
        "UPDATE ev_delivery SET state = ?, attempts = ?, due_ms = ?, first_attempt_ms = ?, last_error = ?, "
        "done_ms = ? WHERE did = ?",
        (
            state,
            attempts,
            due_ms,
            first_attempt_ms,
            error,
            now_ms if state == "done" else None,
            delivery.did,
        ),
    )
    if state == "done":
        sql.execute("UPDATE ev_subscription SET last_sent_ms = ? WHERE skey = ?", (now_ms, delivery.skey))
    elif state == "dead":
        sql.execute(
            "UPDATE ev_delivery SET state = 'dead' WHERE skey = ? AND state = 'pending'", (delivery.skey,)
        )


def replay(sql: Sql, skey: int, now_ms: int, dids: Sequence[int] = ()) -> int:
    """Dead deliveries of a subscription (all, or those of ``dids``) become pending again, due now,
    with fresh retry budgets; returns how many."""
    if dids:
        marks = ", ".join("?" for _ in dids)
        cur = sql.execute(
            f"UPDATE ev_delivery SET state = 'pending', attempts = 0, due_ms = ?, first_attempt_ms = NULL "
            f"WHERE skey = ? AND state = 'dead' AND did IN ({marks})",
            (now_ms, skey, *dids),
        )
    else:
        cur = sql.execute(
            "UPDATE ev_delivery SET state = 'pending', attempts = 0, due_ms = ?, first_attempt_ms = NULL "
            "WHERE skey = ? AND state = 'dead'",
            (now_ms, skey),
        )
    return int(cur.rowcount)


def acknowledge(sql: Sql, skey: int, uuids: Sequence[str], now_ms: int) -> int:
    """Mailbox: the receiver has these notifications; they are done."""
    done = 0
    for uuid in uuids:
        cur = sql.execute(
            "UPDATE ev_delivery SET state = 'done', done_ms = ? "
            "WHERE skey = ? AND uuid = ? AND state = 'pending'",
            (now_ms, skey, uuid),
        )
        done += int(cur.rowcount)
    if done:
        sql.execute("UPDATE ev_subscription SET last_sent_ms = ? WHERE skey = ?", (now_ms, skey))
    return done


def attempts(
    sql: Sql, did: int, limit: int = 1000
) -> list[tuple[int, int, bool, int | None, str | None, int]]:
    """A delivery's attempts, oldest first (numbers restart at 1 after a replay)."""
    rows = sql.execute(
        "SELECT attempt, at_ms, ok, status, error, duration_ms FROM ev_attempt "
        "WHERE did = ? ORDER BY aid LIMIT ?",
        (did, limit),
    ).fetchall()
    return [(a, t, bool(ok), s, e, d) for a, t, ok, s, e, d in rows]


def counts(sql: Sql, skey: int) -> dict[str, int]:
    rows = sql.execute(
        "SELECT state, count(*) FROM ev_delivery WHERE skey = ? GROUP BY state", (skey,)
    ).fetchall()
    return {str(state): int(n) for state, n in rows}


def touch(sql: Sql, skey: int, now_ms: int) -> None:
    """Count a queued heartbeat as the subscription's latest sign of life."""
    sql.execute("UPDATE ev_subscription SET last_sent_ms = ? WHERE skey = ?", (now_ms, skey))


def delivery_ids(sql: Sql, skey: int, uuids: Sequence[str]) -> list[int]:
    """The keys of a subscription's deliveries named by their ids (Bundle.id)."""
    out = []
    for uuid in uuids:
        row = sql.execute("SELECT did FROM ev_delivery WHERE skey = ? AND uuid = ?", (skey, uuid)).fetchone()
        if row is not None:
            out.append(int(row[0]))
    return out


def due_now(sql: Sql, tid: int, sid: str, now_ms: int) -> None:
    """Make a subscription's pending notifications due at once (its receiver is back)."""
    sql.execute(
        "UPDATE ev_delivery SET due_ms = ? WHERE state = 'pending' AND due_ms > ? AND skey IN "
        "(SELECT skey FROM ev_subscription WHERE tid = ? AND sid = ?)",
        (now_ms, now_ms, tid, sid),
    )


def due_batch(sql: Sql, skey: int, now_ms: int, limit: int) -> list[tuple[DeliveryRow, list[EventRow]]]:
    """The subscription's oldest pending notifications, in order, up to ``limit``, stopping before
    the first that is not due; each with its events."""
    rows = sql.execute(
        f"SELECT {_DELIVERY_COLUMNS} FROM ev_delivery WHERE skey = ? AND state = 'pending' "
        "ORDER BY did LIMIT ?",
        (skey, limit),
    ).fetchall()
    batch: list[DeliveryRow] = []
    for row in rows:
        delivery = _delivery(row)
        if delivery.due_ms > now_ms:
            break
        batch.append(delivery)
    if not batch:
        return []
    numbered = [d for d in batch if d.kind == "event"]
    found: dict[int, EventRow] = {}
    if numbered:
        lo = min(d.first_number for d in numbered)
        hi = max(d.last_number for d in numbered)
        found = {e.number: e for e in events(sql, skey, lo, hi)}
    return [
        (
            d,
            [found[n] for n in range(d.first_number, d.last_number + 1) if n in found]
            if d.kind == "event"
            else [],
        )
        for d in batch
    ]
