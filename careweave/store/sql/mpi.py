"""SQL for the mpi subsystem (see components.py for the rules): the identity space's own tables.

Rules:
1. ``mpi_record`` holds one row per source Patient (tenant ``tid``, id ``patient``): the identifying
   elements of its current version (``demographics``, JSON), a digest of them (a different digest is a
   demographics change), and its link to a Person: ``assurance`` (level3 automatic certain, level4
   manual/verified), ``origin`` (auto | manual), the score that linked it (``weight``, ``detail``:
   contributions, rules, the member it matched) and ``model_version``.
2. ``mpi_block`` holds the record's blocking keys (:func:`careweave.mpi.blocking_keys`); records
   sharing a key are candidates for each other.
3. ``mpi_review`` is the review queue: a record that may belong to another Person (a level2 link on
   that Person while the item is open). ``mpi_decision`` keeps manual "not the same person"
   decisions between two records (``a < b``); they outlive every later update of either record.
4. ``mpi_audit`` records every manual action (who, when, why, what changed, enough to undo it);
   ``mpi_cursor`` the change-log position of the follower; ``mpi_outbox`` the events for other
   organisations (read with :func:`outbox_after`).
5. Everything here runs inside the caller's transaction (``store.sql_read`` / ``sql_write`` /
   ``sql_write_tenant``); nothing commits on its own. Placeholders are ``?``; no INSERT OR IGNORE,
   no lastrowid (RETURNING instead).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # components.py imports this module to collect its migrations
    from careweave.store.sql.components import Sql

__all__ = [
    "MIGRATIONS",
    "NAME",
    "TENANT_TABLES",
    "AuditRow",
    "OutboxRow",
    "RecordRow",
    "ReviewRow",
    "add_audit",
    "add_decision",
    "add_outbox",
    "all_demographics",
    "audit_entries",
    "audit_entry",
    "blocks",
    "close_reviews",
    "cursor",
    "decided_against",
    "delete_record",
    "insert_record",
    "keys_of",
    "mark_undone",
    "members",
    "move_record",
    "open_review",
    "outbox_after",
    "record",
    "record_by_rid",
    "remove_decisions",
    "replace_keys",
    "review",
    "reviews",
    "reviews_of_person",
    "set_cursor",
    "set_link",
    "update_record",
]

NAME = "mpi"
MIGRATIONS: tuple[str, ...] = (
    """
CREATE TABLE mpi_record (
  rid INTEGER PRIMARY KEY,
  tid INTEGER NOT NULL,
  patient TEXT NOT NULL,
  version INTEGER NOT NULL,
  person TEXT NOT NULL,
  assurance TEXT NOT NULL,
  origin TEXT NOT NULL,
  weight REAL,
  detail TEXT NOT NULL,
  model_version TEXT NOT NULL,
  demographics BLOB NOT NULL,
  digest TEXT NOT NULL,
  updated_ms INTEGER NOT NULL
);
CREATE UNIQUE INDEX mpi_record_patient ON mpi_record (tid, patient);
CREATE INDEX mpi_record_person ON mpi_record (person);
CREATE TABLE mpi_block (
  key TEXT NOT NULL,
  rid INTEGER NOT NULL,
  tid INTEGER NOT NULL
);
CREATE INDEX mpi_block_key ON mpi_block (key);
CREATE INDEX mpi_block_rid ON mpi_block (rid);
CREATE TABLE mpi_review (
  item INTEGER PRIMARY KEY,
  tid INTEGER NOT NULL,
  rid INTEGER NOT NULL,
  person TEXT NOT NULL,
  other INTEGER NOT NULL,
  weight REAL NOT NULL,
  detail TEXT NOT NULL,
  model_version TEXT NOT NULL,
  state TEXT NOT NULL,
  created_ms INTEGER NOT NULL,
  decided_ms INTEGER,
  actor TEXT,
  reason TEXT
);
CREATE UNIQUE INDEX mpi_review_open ON mpi_review (rid, person) WHERE state = 'open';
CREATE INDEX mpi_review_person ON mpi_review (person, state);
CREATE INDEX mpi_review_state ON mpi_review (state, item);
CREATE TABLE mpi_decision (
  did INTEGER PRIMARY KEY,
  a INTEGER NOT NULL,
  b INTEGER NOT NULL,
  tid INTEGER NOT NULL,
  kind TEXT NOT NULL,
  actor TEXT NOT NULL,
  reason TEXT NOT NULL,
  at_ms INTEGER NOT NULL
);
CREATE UNIQUE INDEX mpi_decision_pair ON mpi_decision (a, b);
CREATE INDEX mpi_decision_b ON mpi_decision (b);
CREATE TABLE mpi_audit (
  aid INTEGER PRIMARY KEY,
  at_ms INTEGER NOT NULL,
  actor TEXT NOT NULL,
  action TEXT NOT NULL,
  person TEXT NOT NULL,
  other TEXT,
  reason TEXT NOT NULL,
  detail TEXT NOT NULL,
  undone_by INTEGER
);
CREATE INDEX mpi_audit_person ON mpi_audit (person);
CREATE INDEX mpi_audit_other ON mpi_audit (other);
CREATE TABLE mpi_cursor (
  name TEXT PRIMARY KEY,
  seq INTEGER NOT NULL
);
CREATE TABLE mpi_outbox (
  seq INTEGER PRIMARY KEY,
  tid INTEGER NOT NULL,
  person TEXT NOT NULL,
  source_tid INTEGER NOT NULL,
  source_ref TEXT NOT NULL,
  kind TEXT NOT NULL,
  at_ms INTEGER NOT NULL
);
CREATE INDEX mpi_outbox_tid ON mpi_outbox (tid, seq)
""",
    # 2: when the identifying elements last changed (survivorship: the most recent record first)
    """
ALTER TABLE mpi_record ADD COLUMN changed_ms INTEGER NOT NULL DEFAULT 0;
UPDATE mpi_record SET changed_ms = updated_ms
""",
)
TENANT_TABLES: tuple[str, ...] = ("mpi_record", "mpi_block", "mpi_review", "mpi_decision", "mpi_outbox")

_RECORD_COLUMNS = (
    "rid, tid, patient, version, person, assurance, origin, weight, detail, model_version, "
    "demographics, digest, updated_ms, changed_ms"
)


@dataclass(frozen=True, slots=True)
class RecordRow:
    """One source Patient as the identity space holds it (rule 1)."""

    rid: int
    tid: int
    patient: str
    version: int
    person: str
    assurance: str  # level3 | level4
    origin: str  # auto | manual
    weight: float | None
    detail: str  # JSON
    model_version: str
    demographics: bytes  # JSON: the identifying elements of the Patient
    digest: str
    updated_ms: int  # last change of the row (its link or its version)
    changed_ms: int  # last change of the identifying elements (a new digest)


def _record(row: Sequence[Any]) -> RecordRow:
    values = list(row)
    values[10] = bytes(values[10])
    return RecordRow(*values)


def record(sql: Sql, tid: int, patient: str) -> RecordRow | None:
    row = sql.execute(
        f"SELECT {_RECORD_COLUMNS} FROM mpi_record WHERE tid = ? AND patient = ?", (tid, patient)
    ).fetchone()
    return None if row is None else _record(row)


def record_by_rid(sql: Sql, rid: int) -> RecordRow | None:
    row = sql.execute(f"SELECT {_RECORD_COLUMNS} FROM mpi_record WHERE rid = ?", (rid,)).fetchone()
    return None if row is None else _record(row)


def members(sql: Sql, person: str) -> list[RecordRow]:
    """The records linked to ``person`` (level3 and level4), oldest first."""
    rows = sql.execute(
        f"SELECT {_RECORD_COLUMNS} FROM mpi_record WHERE person = ? ORDER BY rid", (person,)
    ).fetchall()
    return [_record(r) for r in rows]


def blocks(sql: Sql, keys: Sequence[str], limit: int) -> list[RecordRow]:
    """Records holding any of ``keys``, skipping every key held by more than ``limit`` records
    (rule 2); each record once, by rid."""
    if not keys:
        return []
    columns = ", ".join("r." + c.strip() for c in _RECORD_COLUMNS.split(","))
    marks = ", ".join("?" for _ in keys)
    rows = sql.execute(
        f"SELECT b.key, {columns} FROM mpi_block b JOIN mpi_record r ON r.rid = b.rid "
        f"WHERE b.key IN ({marks})",
        tuple(keys),
    ).fetchall()
    sizes: dict[str, int] = {}
    for row in rows:
        sizes[row[0]] = sizes.get(row[0], 0) + 1
    found: dict[int, RecordRow] = {}
    for row in rows:
        if sizes[row[0]] <= limit and row[1] not in found:
            found[row[1]] = _record(row[1:])
    return [found[k] for k in sorted(found)]


def insert_record(
    sql: Sql,
    tid: int,
    patient: str,
    version: int,
    person: str,
    link: tuple[str, str, float | None, str, str],
    demographics: bytes,
    digest: str,
    now_ms: int,
) -> int:
    """A new record; ``link`` is (assurance, origin, weight, detail, model_version). Returns its rid."""
    assurance, origin, weight, detail, model_version = link
    row = sql.execute(
        "INSERT INTO mpi_record (tid, patient, version, person, assurance, origin, weight, detail, "
        "model_version, demographics, digest, updated_ms, changed_ms) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING rid",
        (
            tid,
            patient,
            version,
            person,
            assurance,
            origin,
            weight,
            detail,
            model_version,
            demographics,
            digest,
            now_ms,
            now_ms,
        ),
    ).fetchone()
    return int(row[0])


def update_record(sql: Sql, rid: int, version: int, demographics: bytes, digest: str, now_ms: int) -> None:
    """A new version of a record; ``changed_ms`` moves only when the digest does."""
    sql.execute(
        "UPDATE mpi_record SET version = ?, demographics = ?, "
        "changed_ms = CASE WHEN digest = ? THEN changed_ms ELSE ? END, digest = ?, updated_ms = ? "
        "WHERE rid = ?",
        (version, demographics, digest, now_ms, digest, now_ms, rid),
    )


def move_record(sql: Sql, rid: int, person: str, now_ms: int) -> None:
    """Move record ``rid`` to ``person`` keeping its link (assurance, origin, score): a split."""
    sql.execute("UPDATE mpi_record SET person = ?, updated_ms = ? WHERE rid = ?", (person, now_ms, rid))


def set_link(
    sql: Sql, rid: int, person: str, link: tuple[str, str, float | None, str, str], now_ms: int
) -> None:
    """Move record ``rid`` to ``person`` with ``link`` = (assurance, origin, weight, detail, model)."""
    assurance, origin, weight, detail, model_version = link
    sql.execute(
        "UPDATE mpi_record SET person = ?, assurance = ?, origin = ?, weight = ?, detail = ?, "
        "model_version = ?, updated_ms = ? WHERE rid = ?",
        (person, assurance, origin, weight, detail, model_version, now_ms, rid),
    )


def delete_record(sql: Sql, rid: int) -> None:
    sql.execute("DELETE FROM mpi_block WHERE rid = ?", (rid,))
    sql.execute("DELETE FROM mpi_record WHERE rid = ?", (rid,))


def all_demographics(sql: Sql) -> list[tuple[int, str, bytes]]:
    """(tenant, Patient id, demographics) of every record: what re-estimating the model reads."""
    rows = sql.execute("SELECT tid, patient, demographics FROM mpi_record ORDER BY rid").fetchall()
    return [(int(t), str(p), bytes(d)) for t, p, d in rows]


def keys_of(sql: Sql, rid: int) -> list[str]:
    return [str(r[0]) for r in sql.execute("SELECT key FROM mpi_block WHERE rid = ?", (rid,)).fetchall()]


def replace_keys(sql: Sql, rid: int, tid: int, keys: Iterable[str]) -> None:
    sql.execute("DELETE FROM mpi_block WHERE rid = ?", (rid,))
    sql.executemany("INSERT INTO mpi_block (key, rid, tid) VALUES (?, ?, ?)", [(k, rid, tid) for k in keys])


# -- manual decisions ---------------------------------------------------------------------------
def add_decision(sql: Sql, a: int, b: int, tid: int, kind: str, actor: str, reason: str, now_ms: int) -> None:
    """Record that records ``a`` and ``b`` are (``kind`` = not-same) not one person."""
    lo, hi = min(a, b), max(a, b)
    sql.execute(
        "INSERT INTO mpi_decision (a, b, tid, kind, actor, reason, at_ms) VALUES (?, ?, ?, ?, ?, ?, ?) "
        "ON CONFLICT (a, b) DO UPDATE SET kind = excluded.kind, actor = excluded.actor, "
        "reason = excluded.reason, at_ms = excluded.at_ms",
        (lo, hi, tid, kind, actor, reason, now_ms),
    )


def remove_decisions(sql: Sql, rid: int, others: Iterable[int]) -> None:
    for other in others:
        sql.execute("DELETE FROM mpi_decision WHERE a = ? AND b = ?", (min(rid, other), max(rid, other)))


def decided_against(sql: Sql, rid: int) -> set[int]:
    """Records a human has declared not the same person as ``rid``."""
    rows = sql.execute(
        "SELECT b FROM mpi_decision WHERE a = ? AND kind = 'not-same' "
        "UNION SELECT a FROM mpi_decision WHERE b = ? AND kind = 'not-same'",
        (rid, rid),
    ).fetchall()
    return {int(r[0]) for r in rows}


# -- review queue -------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class ReviewRow:
    item: int
    tid: int
    rid: int
    person: str
    other: int
    weight: float
    detail: str
    model_version: str
    state: str  # open | same | not-same | closed
    created_ms: int
    decided_ms: int | None
    actor: str | None
    reason: str | None


_REVIEW_COLUMNS = (
    "item, tid, rid, person, other, weight, detail, model_version, state, created_ms, decided_ms, "
    "actor, reason"
)


def open_review(
    sql: Sql, tid: int, rid: int, person: str, other: int, weight: float, detail: str, model: str, now_ms: int
) -> None:
    """Open (or refresh) the review item "record ``rid`` may belong to ``person``"."""
    sql.execute(
        "INSERT INTO mpi_review (tid, rid, person, other, weight, detail, model_version, state, created_ms) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, 'open', ?) "
        "ON CONFLICT (rid, person) WHERE state = 'open' DO UPDATE SET other = excluded.other, "
        "weight = excluded.weight, detail = excluded.detail, model_version = excluded.model_version",
        (tid, rid, person, other, weight, detail, model, now_ms),
    )


def close_reviews(
    sql: Sql,
    *,
    rid: int | None = None,
    person: str | None = None,
    state: str = "closed",
    actor: str | None = None,
    reason: str | None = None,
    now_ms: int = 0,
) -> list[str]:
    """Close the open items of a record and/or a Person; returns the Persons they were about."""
    where: list[str] = ["state = 'open'"]
    params: list[Any] = []
    if rid is not None:
        where.append("rid = ?")
        params.append(rid)
    if person is not None:
        where.append("person = ?")
        params.append(person)
    rows = sql.execute(
        f"UPDATE mpi_review SET state = ?, decided_ms = ?, actor = ?, reason = ? WHERE {' AND '.join(where)} "
        "RETURNING person",
        (state, now_ms, actor, reason, *params),
    ).fetchall()
    return sorted({str(r[0]) for r in rows})


def reviews_of_person(sql: Sql, person: str) -> list[ReviewRow]:
    """Open review items naming ``person``: its level2 links."""
    rows = sql.execute(
        f"SELECT {_REVIEW_COLUMNS} FROM mpi_review WHERE person = ? AND state = 'open' ORDER BY item",
        (person,),
    ).fetchall()
    return [ReviewRow(*r) for r in rows]


def reviews(sql: Sql, state: str, after: int, limit: int) -> list[ReviewRow]:
    rows = sql.execute(
        f"SELECT {_REVIEW_COLUMNS} FROM mpi_review WHERE state = ? AND item > ? ORDER BY item LIMIT ?",
        (state, after, limit),
    ).fetchall()
    return [ReviewRow(*r) for r in rows]


def review(sql: Sql, item: int) -> ReviewRow | None:
    row = sql.execute(f"SELECT {_REVIEW_COLUMNS} FROM mpi_review WHERE item = ?", (item,)).fetchone()
    return None if row is None else ReviewRow(*row)


# -- audit --------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class AuditRow:
    aid: int
    at_ms: int
    actor: str
    action: str  # link | unlink | merge | unmerge | decide
    person: str
    other: str | None
    reason: str
    detail: str  # JSON: what changed, enough to undo it
    undone_by: int | None


_AUDIT_COLUMNS = "aid, at_ms, actor, action, person, other, reason, detail, undone_by"


def add_audit(
    sql: Sql, now_ms: int, actor: str, action: str, person: str, other: str | None, reason: str, detail: str
) -> int:
    row = sql.execute(
        "INSERT INTO mpi_audit (at_ms, actor, action, person, other, reason, detail) "
        "VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING aid",
        (now_ms, actor, action, person, other, reason, detail),
    ).fetchone()
    return int(row[0])


def audit_entry(sql: Sql, aid: int) -> AuditRow | None:
    row = sql.execute(f"SELECT {_AUDIT_COLUMNS} FROM mpi_audit WHERE aid = ?", (aid,)).fetchone()
    return None if row is None else AuditRow(*row)


def audit_entries(sql: Sql, person: str) -> list[AuditRow]:
    """Every audited action on ``person`` (as the Person acted on or as the other one)."""
    rows = sql.execute(
        f"SELECT {_AUDIT_COLUMNS} FROM mpi_audit WHERE person = ? OR other = ? ORDER BY aid", (person, person)
    ).fetchall()
    return [AuditRow(*r) for r in rows]


def mark_undone(sql: Sql, aid: int, by: int) -> None:
    sql.execute("UPDATE mpi_audit SET undone_by = ? WHERE aid = ?", (by, aid))


# -- the follower's cursor and the outbox ---------------------------------------------------------
def cursor(sql: Sql, name: str) -> int:
    row = sql.execute("SELECT seq FROM mpi_cursor WHERE name = ?", (name,)).fetchone()
    return 0 if row is None else int(row[0])


def set_cursor(sql: Sql, name: str, seq: int) -> None:
    sql.execute(
        "INSERT INTO mpi_cursor (name, seq) VALUES (?, ?) "
        "ON CONFLICT (name) DO UPDATE SET seq = excluded.seq",
        (name, seq),
    )


@dataclass(frozen=True, slots=True)
class OutboxRow:
    """An event for organisation ``tid``: ``kind`` happened to ``person`` through the record
    ``source_ref`` (``Patient/id``) of organisation ``source_tid``."""

    seq: int
    tid: int
    person: str
    source_tid: int
    source_ref: str
    kind: str
    at_ms: int


def add_outbox(
    sql: Sql, tid: int, person: str, source_tid: int, source_ref: str, kind: str, now_ms: int
) -> None:
    sql.execute(
        "INSERT INTO mpi_outbox (tid, person, source_tid, source_ref, kind, at_ms) VALUES (?, ?, ?, ?, ?, ?)",
        (tid, person, source_tid, source_ref, kind, now_ms),
    )


def outbox_after(sql: Sql, after_seq: int, limit: int) -> list[OutboxRow]:
    """Outbox events with a sequence number above ``after_seq``, oldest first."""
    rows = sql.execute(
        "SELECT seq, tid, person, source_tid, source_ref, kind, at_ms FROM mpi_outbox "
        "WHERE seq > ? ORDER BY seq LIMIT ?",
        (after_seq, limit),
    ).fetchall()
    return [OutboxRow(*r) for r in rows]
