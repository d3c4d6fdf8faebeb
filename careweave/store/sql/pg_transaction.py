"""A write transaction on PostgreSQL: row and advisory locks, buffered index rows, the change log
allocated at the end (the rules are in ``postgres.py``)."""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import replace
from typing import Any

import orjson

from careweave.search.index import IndexRows
from careweave.search.plan import QueryPlan
from careweave.store.base import CustomParam, NewVersion, StoredResource, Tenant, Transaction
from careweave.store.sql import admin
from careweave.store.sql.compile import POSTGRES, Compiler
from careweave.store.sql.components import Sql
from careweave.store.sql.pg_sql import INDEX_TEXT_CHARS, PgSql, clean
from careweave.store.sql.query import search_statement
from careweave.store.sql.schema import INDEX_TABLES

__all__ = ["COPY_FROM", "RK_BLOCK", "Params", "PgTransaction", "as_bytes"]

COPY_FROM = 64  # index rows of one table in one transaction from which COPY beats executemany


def _insert(table: str, columns: Sequence[str]) -> str:
    return f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join('?' for _ in columns)})"


_CURRENT = (
    "SELECT rk, version, updated_ms, deleted, body, ixmask FROM resource "
    "WHERE tid = ? AND type = ? AND id = ? FOR UPDATE"
)
_CURRENT_MANY = (
    "SELECT id, rk, version, updated_ms, deleted, body, ixmask FROM resource "
    "WHERE tid = ? AND type = ? AND id IN (SELECT jsonb_array_elements_text(?::jsonb)) FOR UPDATE"
)
_RESOURCE_COLUMNS = ("rk", "tid", "type", "id", "version", "updated_ms", "deleted", "body", "ixmask")
_INSERT_RESOURCE = _insert("resource", _RESOURCE_COLUMNS)
RK_BLOCK = 64  # row keys taken from the sequence at a time
TEXT_CHARS = 250_000  # full text kept per resource (a tsvector holds at most 1 MB)
_TAKE_RKS = "SELECT nextval(pg_get_serial_sequence('resource', 'rk')) FROM generate_series(1, ?)"
_TAKE_SEQS = "UPDATE changelog SET seq = seq + ? WHERE one = 1 RETURNING seq"
_UPDATE_RESOURCE = (
    "UPDATE resource SET version = ?, updated_ms = ?, deleted = ?, body = ?, ixmask = ? "
    "WHERE tid = ? AND rk = ?"
)
_HISTORY_COLUMNS = ("seq", "tid", "rk", "type", "id", "version", "updated_ms", "method", "body")
_INSERT_HISTORY = _insert("history", _HISTORY_COLUMNS)
_INDEX_COLUMNS: dict[str, tuple[str, ...]] = {  # IndexRows attribute -> (table, columns...)
    "tokens": ("ix_token", "tid", "pid", "system", "code", "flags", "rk"),
    "token_texts": ("ix_token_text", "tid", "pid", "text", "rk"),
    "strings": ("ix_string", "tid", "pid", "norm", "exact", "flags", "rk"),
    "references": ("ix_reference", "tid", "pid", "target_type", "target_id", "url", "flags", "rk"),
    "dates": ("ix_date", "tid", "pid", "lo", "hi", "flags", "rk"),
    "numbers": ("ix_number", "tid", "pid", "lo", "hi", "flags", "rk"),
    "quantities": ("ix_quantity", "tid", "pid", "system", "code", "lo", "hi", "flags", "rk"),
    "uris": ("ix_uri", "tid", "pid", "uri", "flags", "rk"),
    "composites": ("ix_composite", "tid", "pid", "s1", "v1", "s2", "v2", "lo2", "hi2", "lo3", "hi3", "rk"),
    "geo": ("ix_geo", "tid", "pid", "lat", "lon", "rk"),
}
_INDEX_INSERTS = {attr: _insert(cols[0], cols[1:]) for attr, cols in _INDEX_COLUMNS.items()}
_INSERT_TEXT = (  # every buffered text row in one statement
    "INSERT INTO ix_text (tid, rk, narrative, content) "
    "SELECT ?, u.rk, to_tsvector('simple', u.narrative), to_tsvector('simple', u.content) "
    "FROM unnest(CAST(? AS BIGINT[]), CAST(? AS TEXT[]), CAST(? AS TEXT[])) AS u (rk, narrative, content)"
)
_INDEX_DELETES = tuple(f"DELETE FROM {table} WHERE rk = ? AND tid = ?" for table in INDEX_TABLES)
_TABLE_BIT = {table: 1 << i for i, table in enumerate(INDEX_TABLES)}


def _ixmask(rows: IndexRows | None) -> int:
    if rows is None:
        return 0
    mask = _TABLE_BIT["ix_text"] if rows.narrative or rows.content else 0
    for attr, cols in _INDEX_COLUMNS.items():
        if getattr(rows, attr):
            mask |= _TABLE_BIT[cols[0]]
    return mask


def _criteria_key(tid: int, plan: QueryPlan) -> int:
    digest = hashlib.blake2b(repr((tid, plan.types, plan.where)).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


def as_bytes(value: Any) -> bytes | None:
    return None if value is None else bytes(value)


class Params:
    """Search parameter keys -> ``param.pid``, cached once committed (param rows are never deleted:
    a cached id stays right)."""

    def __init__(self) -> None:
        self._pids: dict[str, int] = {}
        self._lock = threading.Lock()

    def lookup(self, sql: Sql, key: str, committed: bool = True) -> int | None:
        """``committed``: ``sql`` sees only committed rows (a reader), so a found id is kept; a
        write transaction's own new rows might still roll back."""
        pid = self._pids.get(key)
        if pid is None:
            row = sql.execute("SELECT pid FROM param WHERE key = ?", (key,)).fetchone()
            if row is not None:
                pid = int(row[0])
                if committed:
                    self.remember({key: pid})
        return pid

    def ensure(self, sql: Sql, key: str, after: list[Callable[[], None]]) -> int:
        pid = self._pids.get(key)
        if pid is None:
            row = sql.execute(
                "INSERT INTO param (key) VALUES (?) ON CONFLICT (key) DO NOTHING RETURNING pid", (key,)
            ).fetchone()
            if row is None:
                row = sql.execute("SELECT pid FROM param WHERE key = ?", (key,)).fetchone()
            pid = int(row[0])
            learned = {key: pid}
            after.append(lambda: self.remember(learned))
        return pid

    def remember(self, pending: Mapping[str, int]) -> None:
        with self._lock:
            self._pids.update(pending)


class PgTransaction(Transaction):
    """One write transaction's view of the database (see the module rules 2, 3 and 5)."""

    def __init__(
        self, sql: PgSql, tenant: Tenant, now_ms: int, params: Params, after: list[Callable[[], None]]
    ) -> None:
        self.sql = sql
        self.tenant = tenant
        self.now_ms = now_ms
        self._params = params
        self._after = after
        self._rks: dict[tuple[str, str], int] = {}
        self._masks: dict[int, int] = {}
        self._absent: set[tuple[str, str]] = set()  # (type, id) found not to exist
        self._fetched: dict[tuple[str, str], StoredResource] = {}  # by prefetch, until used
        self._free_rks: list[int] = []  # row keys taken from the sequence, not used yet
        self._new: dict[tuple[str, str], tuple[Any, ...]] = {}  # buffered resource rows
        self._history: list[tuple[list[Any], StoredResource]] = []
        self._index: dict[str, list[tuple[Any, ...]]] = {}
        self._texts: list[tuple[int, str, str]] = []
        self._buffered: set[int] = set()  # rks with buffered index rows
        self.written: dict[str, int] = {}  # rows written per table (the store keeps statistics fresh)
        self._new_pids: dict[str, int] = {}  # parameter ids this transaction has looked up

    def prefetch(self, keys: Iterable[tuple[str, str]]) -> None:
        ids: dict[str, list[str]] = {}
        for key in keys:
            if key not in self._rks and key not in self._absent and key not in self._new:
                ids.setdefault(key[0], []).append(key[1])
        for type_, wanted in ids.items():
            found = self.sql.execute(_CURRENT_MANY, (self.tenant.key, type_, orjson.dumps(wanted).decode()))
            for id_, rk, version, updated_ms, deleted, body, ixmask in found:
                self._rks[(type_, id_)] = rk
                self._masks[rk] = ixmask
                self._fetched[(type_, id_)] = StoredResource(
                    type_, id_, version, updated_ms, bool(deleted), as_bytes(body)
                )
            self._absent.update((type_, i) for i in wanted if (type_, i) not in self._rks)

    def current(self, type: str, id: str) -> StoredResource | None:
        key = (type, id)
        if key in self._new:
            self.flush()
        elif key in self._absent:
            return None  # (only append creates it, and takes it out of _absent)
        else:
            fetched = self._fetched.pop(key, None)
            if fetched is not None:
                return fetched
        row = self.sql.execute(_CURRENT, (self.tenant.key, type, id)).fetchone()
        if row is None:
            self._absent.add(key)
            return None  # a concurrent create of the same id fails on resource_key: run again
        rk, version, updated_ms, deleted, body, ixmask = row
        self._rks[key] = rk
        self._masks[rk] = ixmask
        return StoredResource(type, id, version, updated_ms, bool(deleted), as_bytes(body))

    def append(self, version: NewVersion) -> StoredResource:
        tid = self.tenant.key
        v = version
        key = (v.type, v.id)
        self._fetched.pop(key, None)  # what prefetch found is no longer current
        rk = self._rks.get(key)
        if rk is None and key not in self._absent and self.current(*key) is not None:
            rk = self._rks[key]
        mask = _ixmask(v.index)
        deleted = int(v.deleted)
        if rk is None:  # a new resource: its row is written with the others (rule 5)
            rk = self._next_rk()
            self._new[key] = (rk, tid, v.type, v.id, v.version, v.updated_ms, deleted, v.body, mask)
            self._rks[key] = rk
            self._absent.discard(key)
        else:
            if key in self._new or rk in self._buffered:
                self.flush()
            self.sql.execute(_UPDATE_RESOURCE, (v.version, v.updated_ms, deleted, v.body, mask, tid, rk))
            old = self._masks.get(rk, -1)
            for bit, statement in enumerate(_INDEX_DELETES):
                if old & (1 << bit):
                    self.sql.execute(statement, (rk, tid))
        self._masks[rk] = mask
        stored = StoredResource(v.type, v.id, v.version, v.updated_ms, v.deleted, v.body, v.method)
        self._history.append(([tid, rk, v.type, v.id, v.version, v.updated_ms, v.method, v.body], stored))
        if v.index is not None:
            self._buffer_index(rk, v.index)
        return stored

    def _next_rk(self) -> int:
        if not self._free_rks:
            rows = self.sql.execute(_TAKE_RKS, (RK_BLOCK,)).fetchall()
            self._free_rks = sorted((int(r[0]) for r in rows), reverse=True)
        return self._free_rks.pop()

    def _buffer_index(self, rk: int, rows: IndexRows) -> None:
        tid = self.tenant.key
        for attr in _INDEX_COLUMNS:
            values = getattr(rows, attr)
            if values:
                self._index.setdefault(attr, []).extend(
                    clean((tid, self._pid(v[0]), *v[1:], rk), INDEX_TEXT_CHARS) for v in values
                )
        if rows.narrative or rows.content:
            narrative, content = (t[:TEXT_CHARS].replace("\x00", " ") for t in (rows.narrative, rows.content))
            self._texts.append((rk, narrative, content))
        self._buffered.add(rk)

    def flush(self) -> None:
        """Write the buffered resource and index rows (before the transaction reads them again,
        and at its end): COPY for large batches, one pipelined batch for small ones."""
        if self._new:
            self._write_rows("resource", _RESOURCE_COLUMNS, _INSERT_RESOURCE, list(self._new.values()))
            self._new = {}
        for attr, rows in self._index.items():
            cols = _INDEX_COLUMNS[attr]
            self._write_rows(cols[0], cols[1:], _INDEX_INSERTS[attr], rows)
        if self._texts:
            rks, narratives, contents = zip(*self._texts, strict=True)
            self.sql.execute(_INSERT_TEXT, (self.tenant.key, list(rks), list(narratives), list(contents)))
        self._index = {}
        self._texts = []
        self._buffered.clear()

    def _write_rows(
        self, table: str, columns: Sequence[str], insert: str, rows: list[tuple[Any, ...]]
    ) -> None:
        if len(rows) >= COPY_FROM:
            self.sql.copy(table, columns, rows)
        else:
            self.sql.executemany(insert, rows)
        self.written[table] = self.written.get(table, 0) + len(rows)

    def finish(self) -> None:
        """The end of the transaction: buffered rows, then the change log (module rule 3)."""
        self.flush()
        if not self._history:
            return
        count = len(self._history)
        last = int(self.sql.execute(_TAKE_SEQS, (count,)).fetchone()[0])
        rows = []
        for offset, (values, stored) in enumerate(self._history):
            stored.seq = last - count + 1 + offset
            rows.append((stored.seq, *values))
        self._write_rows("history", _HISTORY_COLUMNS, _INSERT_HISTORY, rows)
        self._history = []

    def set_custom_params(self, resource_id: str, params: Sequence[CustomParam]) -> None:
        admin.set_custom_params(self.sql, self.tenant.key, resource_id, params)

    def add_job(self, kind: str, payload: Mapping[str, Any], total: int = 0) -> int:
        return admin.add_job(self.sql, self.tenant.key, kind, dict(payload), total, self.now_ms)

    def replace_index(self, rk: int, rows: IndexRows, keys: frozenset[str] | None) -> None:
        """New index rows for the resource ``rk`` (locked by the caller): all of them, or only the
        parameters ``keys``."""
        tid = self.tenant.key
        old = self.sql.execute("SELECT ixmask FROM resource WHERE tid = ? AND rk = ?", (tid, rk)).fetchone()
        mask = -1 if old is None else int(old[0])
        if keys is None:
            for bit, statement in enumerate(_INDEX_DELETES):
                if mask & (1 << bit):
                    self.sql.execute(statement, (rk, tid))
            new_mask = _ixmask(rows)
        else:
            derived = [k for key in keys for k in (key, f"{key}:identifier", f"{key}:of-type")]
            pids = [
                p
                for p in (self._params.lookup(self.sql, k, committed=False) for k in derived)
                if p is not None
            ]
            if pids:
                marks = ", ".join("?" for _ in pids)
                for table in INDEX_TABLES:
                    if table != "ix_text":
                        self.sql.execute(
                            f"DELETE FROM {table} WHERE rk = ? AND tid = ? AND pid IN ({marks})",
                            (rk, tid, *pids),
                        )
            rows = admin.only(rows, keys)
            rows.narrative = rows.content = ""
            new_mask = mask | _ixmask(rows) if mask >= 0 else -1
        self._buffer_index(rk, rows)
        self.sql.execute("UPDATE resource SET ixmask = ? WHERE tid = ? AND rk = ?", (new_mask, tid, rk))

    def _pid(self, key: str) -> int:
        pid = self._new_pids.get(key)
        if pid is None:
            pid = self._new_pids[key] = self._params.ensure(self.sql, key, self._after)
        return pid

    def search_ids(self, plan: QueryPlan, limit: int) -> list[tuple[str, str]]:
        self.flush()
        self.sql.execute("SELECT pg_advisory_xact_lock(?)", (_criteria_key(self.tenant.key, plan),))
        sql = PgSql(self.sql.conn, self.sql.trace, INDEX_TEXT_CHARS)
        compiler = Compiler(
            self.tenant.key,
            lambda key: self._params.lookup(sql, key, committed=False),
            self.now_ms,
            dialect=POSTGRES,
        )
        statement = search_statement(sql, compiler, replace(plan, count=limit, sort=()))
        rows = sql.execute(statement.sql, statement.params).fetchall()
        return [(row[1], row[2]) for row in rows[:limit]]
