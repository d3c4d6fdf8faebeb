"""The SQLite backend: WAL, one writer thread with group commit, a reader connection per thread.

Rules:
1. Point reads (read, vread) run on the calling thread's own reader connection: they take
   microseconds and a thread hop would cost more. So do bounded searches, within a time budget
   (``search.search_inline``); other searches and history run on a reader pool.
2. All writes run on the :class:`~careweave.store.sql.writer.Writer` thread.
3. SQL text lives here and in ``compile.py``; every statement on a tenant table carries ``tid = ?``.
"""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

import orjson

from careweave.errors import error
from careweave.search.index import IndexRows
from careweave.search.plan import QueryPlan
from careweave.store.base import (
    Change,
    CustomParam,
    HistoryPage,
    HistoryQuery,
    Job,
    NewVersion,
    SearchPage,
    StoredResource,
    Tenant,
    Transaction,
)
from careweave.store.sql import admin
from careweave.store.sql.compile import Compiler
from careweave.store.sql.components import COMPONENTS, Sql
from careweave.store.sql.query import count_statement, search_statement, sorted_scan
from careweave.store.sql.schema import INDEX_TABLES, MIGRATIONS, ROW_BITS, TENANT_TABLES
from careweave.store.sql.search import StatementCache, run_search, search_inline
from careweave.store.sql.writer import Writer

__all__ = ["SqliteStore", "first_row_key"]

T = TypeVar("T")

_READ = "SELECT version, updated_ms, deleted, body FROM resource WHERE tid = ? AND type = ? AND id = ?"
_VREAD = (
    "SELECT h.version, h.updated_ms, h.body IS NULL, h.body, h.method, h.seq FROM history h "
    "JOIN resource r ON r.rk = h.rk "
    "WHERE r.tid = ? AND r.type = ? AND r.id = ? AND h.tid = ? AND h.version = ?"
)
_CURRENT = (
    "SELECT rk, version, updated_ms, deleted, body, ixmask FROM resource "
    "WHERE tid = ? AND type = ? AND id = ?"
)
# the current versions of many resources of one type (ids as a JSON array)
_CURRENT_MANY = (
    "SELECT id, rk, version, updated_ms, deleted, body, ixmask FROM resource "
    "WHERE tid = ? AND type = ? AND id IN (SELECT value FROM json_each(?))"
)
# A transaction numbers its new resources and history rows itself, the numbers SQLite would give
# them (one writer, and only a transaction writes these tables): SQLite numbers its first new
# resource (the largest rk plus one), the others follow it; history.seq (AUTOINCREMENT, never
# reused) continues from sqlite_sequence.
_INSERT_FIRST_RESOURCE = (
    "INSERT INTO resource (tid, type, id, version, updated_ms, deleted, body, ixmask) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
)
_INSERT_RESOURCE = (
    "INSERT INTO resource (rk, tid, type, id, version, updated_ms, deleted, body, ixmask) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
_UPDATE_RESOURCE = (
    "UPDATE resource SET version = ?, updated_ms = ?, deleted = ?, body = ?, ixmask = ? "
    "WHERE tid = ? AND rk = ?"
)
_INSERT_HISTORY = (
    "INSERT INTO history (seq, tid, rk, type, id, version, updated_ms, method, body) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
_LAST_SEQ = "SELECT seq FROM sqlite_sequence WHERE name = 'history'"
_INDEX_INSERTS: dict[str, str] = {  # IndexRows attribute -> insert; ik = rk << ROW_BITS | ordinal
    "tokens": "INSERT INTO ix_token (ik, tid, pid, system, code, flags) VALUES (?, ?, ?, ?, ?, ?)",
    "token_texts": "INSERT INTO ix_token_text (ik, tid, pid, text) VALUES (?, ?, ?, ?)",
    "strings": "INSERT INTO ix_string (ik, tid, pid, norm, exact, flags) VALUES (?, ?, ?, ?, ?, ?)",
    "references": (
        "INSERT INTO ix_reference (ik, tid, pid, target_type, target_id, url, flags) "
        "VALUES (?, ?, ?, ?, ?, ?, ?)"
    ),
    "dates": "INSERT INTO ix_date (ik, tid, pid, lo, hi, flags) VALUES (?, ?, ?, ?, ?, ?)",
    "numbers": "INSERT INTO ix_number (ik, tid, pid, lo, hi, flags) VALUES (?, ?, ?, ?, ?, ?)",
    "quantities": (
        "INSERT INTO ix_quantity (ik, tid, pid, system, code, lo, hi, flags) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
    ),
    "uris": "INSERT INTO ix_uri (ik, tid, pid, uri, flags) VALUES (?, ?, ?, ?, ?)",
    "composites": (
        "INSERT INTO ix_composite (ik, tid, pid, s1, v1, s2, v2, lo2, hi2, lo3, hi3) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
    ),
    "geo": "INSERT INTO ix_geo (ik, tid, pid, lat, lon) VALUES (?, ?, ?, ?, ?)",
}
# index table -> DELETE of one resource's rows, taking (first key, last key, tid). NOT INDEXED: by
# the key range alone (without statistics SQLite would walk a value index's rows of the tenant)
_INDEX_DELETES = {
    table: f"DELETE FROM {table} NOT INDEXED WHERE ik BETWEEN ? AND ? AND tid = ?"
    for table in INDEX_TABLES
    if table != "ix_text"
}
_DELETE_TEXT = "DELETE FROM ix_text WHERE rowid = ? AND tid = ?"  # (keyed by rk itself)
_ROWS_TABLE = {  # IndexRows attribute -> index table
    "tokens": "ix_token",
    "token_texts": "ix_token_text",
    "strings": "ix_string",
    "references": "ix_reference",
    "dates": "ix_date",
    "numbers": "ix_number",
    "quantities": "ix_quantity",
    "uris": "ix_uri",
    "composites": "ix_composite",
    "geo": "ix_geo",
}
_TABLE_BIT = {table: 1 << i for i, table in enumerate(INDEX_TABLES)}
_TEXT_BIT = _TABLE_BIT["ix_text"]
# (IndexRows attribute, its table, the table's ixmask bit), in _INDEX_INSERTS order
_ROW_TABLES = tuple((attr, _ROWS_TABLE[attr], _TABLE_BIT[_ROWS_TABLE[attr]]) for attr in _INDEX_INSERTS)
_ROW_LIMIT = 1 << ROW_BITS  # index rows of one resource in one table
_MAX_RK = (1 << (63 - ROW_BITS)) - 1  # the largest resource key with a key range for its rows
# buffered versions written at once: enough to make a statement per table cheap, few enough that
# the rows written are freed soon (rows kept alive cost the garbage collector and memory)
_FLUSH_AT = 256


def _ixmask(rows: IndexRows | None) -> int:
    """Which index tables ``rows`` puts rows into (resource.ixmask)."""
    if rows is None:
        return 0
    mask = _TABLE_BIT["ix_text"] if rows.narrative or rows.content else 0
    for attr, table in _ROWS_TABLE.items():
        if getattr(rows, attr):
            mask |= _TABLE_BIT[table]
    return mask


def first_row_key(rk: int, ordinal: int, count: int, table: str, bits: int = ROW_BITS) -> int:
    """The key (``ik``) of the first of ``count`` new index rows of the resource ``rk`` in ``table``,
    numbered from ``ordinal``. Refuses (CW-1003) rows that would not fit in the resource's
    ``2**bits`` keys: never a key of another resource's range."""
    if ordinal + count > 1 << bits or rk >> (63 - bits):
        raise error(
            "CW-1003",
            f"the resource needs {ordinal + count} index rows in {table}; at most {1 << bits} fit",
        )
    return (rk << bits) + ordinal


def _key_range(rk: int) -> tuple[int, int]:
    """The first and last index row key of the resource ``rk``."""
    return rk << ROW_BITS, ((rk + 1) << ROW_BITS) - 1


_INSERT_TEXT = "INSERT INTO ix_text (rowid, narrative, content, tid) VALUES (?, ?, ?, ?)"
_HISTORY_COLUMNS = "h.type, h.id, h.version, h.updated_ms, h.body IS NULL, h.body, h.method, h.seq"


def wall_clock_ms() -> int:
    return time.time_ns() // 1_000_000


class _Params:
    """Search parameter keys -> storage ids (``param.pid``), cached; new keys inserted by the writer."""

    def __init__(self) -> None:
        self._pids: dict[str, int] = {}
        self._lock = threading.Lock()

    def lookup(self, conn: sqlite3.Connection, key: str) -> int | None:
        pid = self._pids.get(key)
        if pid is None:
            row = conn.execute("SELECT pid FROM param WHERE key = ?", (key,)).fetchone()
            if row is not None:
                pid = row[0]
        return pid

    @property
    def known(self) -> Mapping[str, int]:
        """The committed keys (read without the lock: a dict lookup is atomic)."""
        return self._pids

    def ensure(self, conn: sqlite3.Connection, key: str, after: list[Callable[[], None]]) -> int:
        """The id of ``key``, inserting it when new; the cache learns it only after the commit."""
        pid = self._pids.get(key)
        if pid is None:
            row = conn.execute("SELECT pid FROM param WHERE key = ?", (key,)).fetchone()
            if row is None:
                cur = conn.execute("INSERT INTO param (key) VALUES (?)", (key,))
                pid = int(cur.lastrowid or 0)
            else:
                pid = int(row[0])
            learned = {key: pid}
            after.append(lambda: self.remember(learned))
        return pid

    def remember(self, pending: Mapping[str, int]) -> None:
        with self._lock:
            self._pids.update(pending)

    def load(self, conn: sqlite3.Connection) -> None:
        with self._lock:
            self._pids.update(conn.execute("SELECT key, pid FROM param"))


class SqliteTransaction(Transaction):
    """One write job's view of the database, on the writer thread.

    Appended versions are buffered and written table by table, one statement per table for the
    whole buffer (:meth:`flush`): before the transaction reads what it buffered (the current
    version of a buffered resource, a search, a reindex) and at the end of the job (the store
    calls :meth:`flush`). New resources and history rows are numbered as they are buffered, the
    numbers SQLite would give them (see _INSERT_FIRST_RESOURCE)."""

    def __init__(
        self,
        conn: sqlite3.Connection,
        tenant: Tenant,
        now_ms: int,
        params: _Params,
        after: list[Callable[[], None]],
    ) -> None:
        self.conn = conn
        self.tenant = tenant
        self.now_ms = now_ms
        self._params = params
        self._after = after
        self._rks: dict[tuple[str, str], int] = {}
        self._masks: dict[int, int] = {}  # rk -> ixmask of its current version
        # (type, id) looked up and not found; only append inserts resources, and records their rk
        self._absent: set[tuple[str, str]] = set()
        self._next_rk = 0  # the next new resource's rk (0: none inserted yet)
        self._next_seq = 0  # the next history row's seq (0: not read yet)
        self._new_pids: dict[str, int] = {}  # parameter ids this transaction looked up or added
        self._fetched: dict[tuple[str, str], StoredResource] = {}  # by prefetch, until used
        # the buffer (see the class rules)
        self._pending: set[tuple[str, str]] = set()  # (type, id) with a buffered version
        self._inserts: list[tuple[Any, ...]] = []  # new resource rows
        self._updates: list[tuple[Any, ...]] = []  # resource rows of updated resources
        self._stale: dict[str, list[tuple[int, ...]]] = {}  # table -> old index rows to delete
        self._history: list[tuple[Any, ...]] = []  # history rows
        self._rows: dict[str, list[tuple[Any, ...]]] = {}  # IndexRows attribute -> index rows
        self._texts: list[tuple[int, str, str, int]] = []

    def prefetch(self, keys: Iterable[tuple[str, str]]) -> None:
        """Look up the current versions of ``keys`` (type, id) at once, for :meth:`current` to
        answer each from memory once (rather than one statement per resource)."""
        ids: dict[str, list[str]] = {}
        for type_, id_ in keys:
            if (type_, id_) not in self._rks and (type_, id_) not in self._absent:
                ids.setdefault(type_, []).append(id_)
        tid = self.tenant.key
        for type_, wanted in ids.items():
            found = self.conn.execute(_CURRENT_MANY, (tid, type_, orjson.dumps(wanted).decode()))
            for id_, rk, version, updated_ms, deleted, body, ixmask in found:
                self._rks[(type_, id_)] = rk
                self._masks[rk] = ixmask
                self._fetched[(type_, id_)] = StoredResource(
                    type_, id_, version, updated_ms, bool(deleted), body
                )
            self._absent.update((type_, i) for i in wanted if (type_, i) not in self._rks)

    def current(self, type: str, id: str) -> StoredResource | None:
        key = (type, id)
        if self._pending and key in self._pending:
            self.flush()
        elif key in self._absent:
            return None  # (only append inserts a resource, and makes it pending)
        else:
            fetched = self._fetched.pop(key, None)
            if fetched is not None:
                return fetched
        row = self.conn.execute(_CURRENT, (self.tenant.key, type, id)).fetchone()
        if row is None:
            self._absent.add((type, id))
            return None
        rk, version, updated_ms, deleted, body, ixmask = row
        self._rks[(type, id)] = rk
        self._masks[rk] = ixmask
        return StoredResource(type, id, version, updated_ms, bool(deleted), body)

    def append(self, version: NewVersion) -> StoredResource:
        tid = self.tenant.key
        key = (version.type, version.id)
        if key in self._pending:
            self.flush()  # its buffered version first: this one replaces it
        elif self._fetched:
            self._fetched.pop(key, None)
        rk = self._rks.get(key)
        if rk is None and key not in self._absent and self.current(version.type, version.id) is not None:
            rk = self._rks[key]
        rows = version.index
        deleted = int(version.deleted)
        if rk is None:
            rk = self._next_rk
            if rk:  # numbered after the transaction's first new resource
                mask = 0 if rows is None else self._buffer_index(rk, rows)
                self._inserts.append(
                    (rk, tid, version.type, version.id, version.version, version.updated_ms, deleted,
                     version.body, mask)
                )  # fmt: skip
            else:  # the transaction's first new resource: its row now, numbered by SQLite
                mask = _ixmask(rows)
                cur = self.conn.execute(
                    _INSERT_FIRST_RESOURCE,
                    (tid, version.type, version.id, version.version, version.updated_ms, deleted,
                     version.body, mask),
                )  # fmt: skip
                rk = int(cur.lastrowid or 0)
                if rows is not None:
                    self._buffer_index(rk, rows)
            self._next_rk = rk + 1
            self._rks[key] = rk
            self._absent.discard(key)
        else:
            mask = 0 if rows is None else self._buffer_index(rk, rows)
            self._updates.append((version.version, version.updated_ms, deleted, version.body, mask, tid, rk))
            self._stale_rows(rk, self._masks.get(rk, -1))
        self._masks[rk] = mask
        seq = self._next_seq
        if not seq:
            last = self.conn.execute(_LAST_SEQ).fetchone()
            seq = 1 if last is None else int(last[0]) + 1
        self._next_seq = seq + 1
        v = version
        self._history.append((seq, tid, rk, v.type, v.id, v.version, v.updated_ms, v.method, v.body))
        self._pending.add(key)
        if len(self._history) >= _FLUSH_AT:
            self.flush()
        return StoredResource(v.type, v.id, v.version, v.updated_ms, v.deleted, v.body, v.method, seq)

    def _buffer_index(self, rk: int, rows: IndexRows) -> int:
        """Buffer the index rows of ``rk`` (numbered from 0 in each table); returns their ixmask."""
        tid = self.tenant.key
        first = rk << ROW_BITS
        known, new_pids, pid = self._params.known.get, self._new_pids, self._pid
        buffer = self._rows
        mask = 0
        for attr, table, bit in _ROW_TABLES:
            values = getattr(rows, attr)
            if values:
                if len(values) > _ROW_LIMIT or rk > _MAX_RK:
                    first_row_key(rk, 0, len(values), table)  # refuses (CW-1003)
                mask |= bit
                out = buffer.get(attr)
                if out is None:
                    out = buffer[attr] = []
                ik = first
                for v in values:  # (a loop costs less than a comprehension with enumerate here)
                    out.append((ik, tid, known(v[0]) or new_pids.get(v[0]) or pid(v[0]), *v[1:]))
                    ik += 1
        if rows.narrative or rows.content:
            mask |= _TEXT_BIT
            self._texts.append((rk, rows.narrative, rows.content, tid))
        return mask

    def _stale_rows(self, rk: int, mask: int) -> None:
        """Buffer the deletion of the index rows of ``rk`` in the tables ``mask`` names."""
        tid = self.tenant.key
        lo, hi = _key_range(rk)
        for bit, table in enumerate(INDEX_TABLES):
            if mask & (1 << bit):
                key = (rk, tid) if table == "ix_text" else (lo, hi, tid)
                self._stale.setdefault(table, []).append(key)

    def flush(self) -> None:
        """Write the buffered versions: resource rows, the old index rows' deletion, history rows,
        then the new index rows, one statement per table."""
        if not self._pending:
            return
        conn = self.conn
        if self._inserts:
            conn.executemany(_INSERT_RESOURCE, self._inserts)
        if self._updates:
            conn.executemany(_UPDATE_RESOURCE, self._updates)
        for table, keys in self._stale.items():
            conn.executemany(_DELETE_TEXT if table == "ix_text" else _INDEX_DELETES[table], keys)
        conn.executemany(_INSERT_HISTORY, self._history)
        for attr, rows in self._rows.items():
            conn.executemany(_INDEX_INSERTS[attr], rows)
        if self._texts:
            conn.executemany(_INSERT_TEXT, self._texts)
        self._pending.clear()
        self._inserts = []
        self._updates = []
        self._stale = {}
        self._history = []
        self._rows = {}
        self._texts = []

    def _delete_index(self, rk: int, mask: int) -> None:
        """Delete the index rows of ``rk`` from the tables ``mask`` names (resource.ixmask)."""
        tid = self.tenant.key
        lo, hi = _key_range(rk)
        for bit, table in enumerate(INDEX_TABLES):
            if mask & (1 << bit):
                if table == "ix_text":
                    self.conn.execute(_DELETE_TEXT, (rk, tid))
                else:
                    self.conn.execute(_INDEX_DELETES[table], (lo, hi, tid))

    def _insert_index(self, rk: int, rows: IndexRows, ordinals: Mapping[str, int] | None = None) -> None:
        """Insert ``rows`` for ``rk``, numbered from 0 in each table, or from ``ordinals[table]``."""
        tid = self.tenant.key
        known, pid = self._params.known.get, self._pid  # most keys are known: no call per row
        for attr, statement in _INDEX_INSERTS.items():
            values = getattr(rows, attr)
            if values:
                table = _ROWS_TABLE[attr]
                first = first_row_key(rk, ordinals.get(table, 0) if ordinals else 0, len(values), table)
                self.conn.executemany(
                    statement,
                    [(first + i, tid, known(v[0]) or pid(v[0]), *v[1:]) for i, v in enumerate(values)],
                )
        if rows.narrative or rows.content:
            self.conn.execute(_INSERT_TEXT, (rk, rows.narrative, rows.content, tid))

    def set_custom_params(self, resource_id: str, params: Sequence[CustomParam]) -> None:
        admin.set_custom_params(self.conn, self.tenant.key, resource_id, params)

    def add_job(self, kind: str, payload: Mapping[str, Any], total: int = 0) -> int:
        return admin.add_job(self.conn, self.tenant.key, kind, dict(payload), total, self.now_ms)

    def replace_index(self, rk: int, rows: IndexRows, keys: frozenset[str] | None) -> None:
        """New index rows for the resource ``rk``: all of them, or only the parameters ``keys``."""
        self.flush()
        tid = self.tenant.key
        old = self.conn.execute("SELECT ixmask FROM resource WHERE tid = ? AND rk = ?", (tid, rk)).fetchone()
        mask = -1 if old is None else int(old[0])
        if keys is not None:
            ordinals = self._delete_params(rk, keys, mask)
            kept = admin.only(rows, keys)
            if all(ordinals[t] + len(getattr(kept, a)) <= 1 << ROW_BITS for a, t in _ROWS_TABLE.items()):
                kept.narrative = kept.content = ""
                self._insert_index(rk, kept, ordinals)
                new_mask = mask | _ixmask(kept) if mask >= 0 else -1
                self.conn.execute(
                    "UPDATE resource SET ixmask = ? WHERE tid = ? AND rk = ?", (new_mask, tid, rk)
                )
                return
            # no room after the rows kept (a resource partly reindexed 2^24 times): renumber them all
        self._delete_index(rk, mask)
        self._insert_index(rk, rows)
        self.conn.execute("UPDATE resource SET ixmask = ? WHERE tid = ? AND rk = ?", (_ixmask(rows), tid, rk))

    def _delete_params(self, rk: int, keys: frozenset[str], mask: int) -> dict[str, int]:
        """Delete the index rows of ``rk`` for the parameters ``keys``; returns, per table, the
        ordinal after the rows kept (new rows are numbered from there, so keys never collide)."""
        tid = self.tenant.key
        lo, hi = _key_range(rk)
        pids = [p for p in (self._params.lookup(self.conn, k) for k in _derived(keys)) if p is not None]
        marks = ", ".join("?" for _ in pids)
        ordinals = dict.fromkeys(_ROWS_TABLE.values(), 0)
        for table in ordinals:
            if not mask & _TABLE_BIT[table]:
                continue  # (no rows there)
            if pids:
                self.conn.execute(
                    f"DELETE FROM {table} NOT INDEXED WHERE ik BETWEEN ? AND ? AND tid = ? "
                    f"AND pid IN ({marks})",
                    (lo, hi, tid, *pids),
                )
            last = self.conn.execute(
                f"SELECT max(ik) FROM {table} NOT INDEXED WHERE ik BETWEEN ? AND ? AND tid = ?", (lo, hi, tid)
            ).fetchone()[0]
            ordinals[table] = 0 if last is None else last - lo + 1
        return ordinals

    def _pid(self, key: str) -> int:
        pid = self._new_pids[key] = self._params.ensure(self.conn, key, self._after)
        return pid

    def search_ids(self, plan: QueryPlan, limit: int) -> list[tuple[str, str]]:
        self.flush()
        compiler = Compiler(self.tenant.key, lambda key: self._params.lookup(self.conn, key), self.now_ms)
        statement = search_statement(self.conn, compiler, replace(plan, count=limit, sort=()))
        rows = self.conn.execute(statement.sql, statement.params).fetchall()
        return [(row[1], row[2]) for row in rows[:limit]]


def _derived(keys: frozenset[str]) -> list[str]:
    """Parameter keys with the derived keys stored beside them (:identifier, :of-type)."""
    return [k for key in keys for k in (key, f"{key}:identifier", f"{key}:of-type")]


class SqliteStore:
    """A :class:`~careweave.store.base.Store` over one SQLite file (all tenants)."""

    def __init__(
        self,
        path: Path,
        *,
        synchronous: str = "FULL",
        group_commit_max: int = 256,
        reader_threads: int = 4,
        wal_autocheckpoint: int = 16384,
        clock: Callable[[], int] = wall_clock_ms,
    ) -> None:
        self._path = path
        self._synchronous = synchronous
        self._wal_autocheckpoint = wal_autocheckpoint
        self._clock = clock
        self._last_ms = 0
        self._local = threading.local()
        self._params = _Params()
        self._statements = StatementCache()  # compiled search statements, by plan shape
        self._tenants: dict[
            str, tuple[tuple[int, int], bytes, Tenant]
        ] = {}  # parsed settings, re-used while unchanged
        path.parent.mkdir(parents=True, exist_ok=True)
        self._writer = Writer(self._connect_writer, max_batch=group_commit_max)
        self._pool = ThreadPoolExecutor(reader_threads, thread_name_prefix="careweave-read")
        self._readers: list[sqlite3.Connection] = []
        self._readers_lock = threading.Lock()
        self._params.load(self._reader())

    # -- connections ----------------------------------------------------------------------------
    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self._path, isolation_level=None, check_same_thread=False, timeout=30.0)
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute(f"PRAGMA synchronous = {self._synchronous}")
        conn.execute("PRAGMA cache_size = -65536")
        conn.execute("PRAGMA mmap_size = 268435456")
        conn.execute("PRAGMA temp_store = MEMORY")
        return conn

    def _connect_writer(self) -> sqlite3.Connection:
        conn = self._connect()
        _migrate(conn)
        # the connection that commits is the one that checkpoints (writer.py rule 5): a long WAL
        # is copied less often, and a page written many times in between is copied once
        conn.execute(f"PRAGMA wal_autocheckpoint = {int(self._wal_autocheckpoint)}")
        return conn

    def _reader(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._connect()
            conn.execute("PRAGMA query_only = 1")
            self._local.conn = conn
            with self._readers_lock:
                self._readers.append(conn)
        return conn

    async def _in_pool(self, fn: Callable[[], T]) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._pool, fn)

    # -- reads ----------------------------------------------------------------------------------
    async def read(self, tenant: Tenant, type: str, id: str) -> StoredResource | None:
        row = self._reader().execute(_READ, (tenant.key, type, id)).fetchone()
        if row is None:
            return None
        version, updated_ms, deleted, body = row
        return StoredResource(type, id, version, updated_ms, bool(deleted), body)

    async def vread(self, tenant: Tenant, type: str, id: str, version: int) -> StoredResource | None:
        row = self._reader().execute(_VREAD, (tenant.key, type, id, tenant.key, version)).fetchone()
        if row is None:
            return None
        v, updated_ms, deleted, body, method, seq = row
        return StoredResource(type, id, v, updated_ms, bool(deleted), body, method, seq)

    async def history(self, tenant: Tenant, query: HistoryQuery) -> HistoryPage:
        return await self._in_pool(lambda: self._history(tenant, query))

    def _history(self, tenant: Tenant, query: HistoryQuery) -> HistoryPage:
        conn = self._reader()
        params: list[Any] = [tenant.key]
        where = ["h.tid = ?"]
        if query.type is not None:
            where.append("h.type = ?")
            params.append(query.type)
        if query.id is not None:
            where.append("h.id = ?")
            params.append(query.id)
        if query.since_ms is not None:
            where.append("h.updated_ms >= ?")
            params.append(query.since_ms)
        conn.execute("BEGIN")
        try:
            total = None
            if query.id is not None:
                total = conn.execute(
                    f"SELECT count(*) FROM history h WHERE {' AND '.join(where)}", params
                ).fetchone()[0]
            if query.before_seq is not None:
                where.append("h.seq < ?")
                params.append(query.before_seq)
            rows = conn.execute(
                f"SELECT {_HISTORY_COLUMNS} FROM history h WHERE {' AND '.join(where)} "
                "ORDER BY h.seq DESC LIMIT ?",
                [*params, query.count + 1],
            ).fetchall()
        finally:
            conn.execute("COMMIT")
        entries = [StoredResource(t, i, v, u, bool(d), b, m, s) for t, i, v, u, d, b, m, s in rows]
        more = len(entries) > query.count
        entries = entries[: query.count]
        return HistoryPage(entries, total, entries[-1].seq if more and entries else None)

    async def search(self, tenant: Tenant, plan: QueryPlan) -> SearchPage:
        here = self._reader()
        page, prepared = search_inline(
            here,
            tenant.key,
            lambda key: self._params.lookup(here, key),
            plan,
            cache=self._statements,
            generation=tenant.params_generation,
        )
        if page is not None:
            return page

        def run() -> SearchPage:
            conn = self._reader()
            conn.execute("BEGIN")
            try:
                pid_of = partial(self._params.lookup, conn)
                return run_search(
                    conn,
                    tenant.key,
                    pid_of,
                    plan,
                    prepared=prepared,
                    cache=self._statements,
                    generation=tenant.params_generation,
                )
            finally:
                conn.execute("COMMIT")

        return await self._in_pool(run)

    async def explain(self, tenant: Tenant, plan: QueryPlan) -> list[str]:
        """SQLite's query plan for a search (for benchmarks and tests)."""

        def run() -> list[str]:
            conn = self._reader()
            compiler = Compiler(tenant.key, lambda key: self._params.lookup(conn, key))
            # the statements run_search runs: the count, a sorted scan's phases, or the page query
            if plan.count == 0:
                sql, params = count_statement(conn, compiler, plan)
                statements = [("count", sql, params)]
            else:
                scan = sorted_scan(conn, compiler, plan)
                if scan is not None:
                    statements = [(f"sorted scan phase {i + 1}", s.sql, s.params) for i, s in enumerate(scan)]
                else:
                    page = search_statement(conn, compiler, plan)
                    statements = [(f"driver={page.driver}", page.sql, page.params)]
            out: list[str] = []
            for title, sql, params in statements:
                out.append(title)
                out += [str(r[3]) for r in conn.execute("EXPLAIN QUERY PLAN " + sql, params)]
            return out

        return await self._in_pool(run)

    async def changes(self, after_seq: int, limit: int) -> list[Change]:
        def run() -> list[Change]:
            rows = self._reader().execute(
                "SELECT seq, tid, type, id, version, updated_ms, method, body FROM history "
                "WHERE seq > ? ORDER BY seq LIMIT ?",
                (after_seq, limit),
            )
            return [Change(*row) for row in rows]

        return await self._in_pool(run)

    # -- writes ---------------------------------------------------------------------------------
    async def write(self, tenant: Tenant, fn: Callable[[Transaction], T]) -> T:
        result: T = await self._writer.submit_async(self._job(tenant, fn))
        return result

    async def write_all(self, tenant: Tenant, fns: Sequence[Callable[[Transaction], T]]) -> list[T]:
        """:meth:`write` of each function, in one database transaction (one commit): each is its
        own job (its own clock, its own outcome, undone alone when it fails). Raises the first
        failure once every job has its outcome."""
        futures = self._writer.submit_all_async([self._job(tenant, fn) for fn in fns])
        results = await asyncio.gather(*futures, return_exceptions=True)
        for result in results:
            if isinstance(result, BaseException):
                raise result
        return results  # type: ignore[return-value]

    def submit(self, tenant: Tenant, fn: Callable[[Transaction], T]) -> Any:
        """Queue a write job; returns a concurrent.futures.Future (for synchronous callers)."""
        return self._writer.submit(self._job(tenant, fn))

    def _job(
        self, tenant: Tenant, fn: Callable[[Transaction], T]
    ) -> Callable[[sqlite3.Connection, list[Callable[[], None]]], T]:
        def job(conn: sqlite3.Connection, after: list[Callable[[], None]]) -> T:
            tx = SqliteTransaction(conn, tenant, self._now(), self._params, after)
            result = fn(tx)
            tx.flush()
            return result

        return job

    def _now(self) -> int:
        now = max(self._clock(), self._last_ms)
        self._last_ms = now
        return now

    # -- component SQL (events, HL7 v2, MPI: see components.py) ---------------------------------
    async def sql_read(self, fn: Callable[[Sql], T]) -> T:
        """Run ``fn`` on a reader connection inside one read transaction (a consistent snapshot)."""

        def run() -> T:
            conn = self._reader()
            conn.execute("BEGIN")
            try:
                return fn(conn)
            finally:
                conn.execute("COMMIT")

        return await self._in_pool(run)

    async def sql_write(self, fn: Callable[[Sql], T]) -> T:
        """Run ``fn`` in a write transaction; it has committed when this returns. ``fn`` may run
        twice (group commit retries a failed batch job by job), so it must depend only on the
        database state and raise rather than half-write."""
        result: T = await self._writer.submit_async(lambda conn, after: fn(conn))
        return result

    async def sql_write_tenant(self, tenant: Tenant, fn: Callable[[Sql, Transaction], T]) -> T:
        """Like :meth:`sql_write`, with a resource :class:`Transaction` in the same database
        transaction: component rows and FHIR resources commit together or not at all."""

        def job(conn: sqlite3.Connection, after: list[Callable[[], None]]) -> T:
            tx = SqliteTransaction(conn, tenant, self._now(), self._params, after)
            result = fn(conn, tx)
            tx.flush()
            return result

        result: T = await self._writer.submit_async(job)
        return result

    # -- tenants --------------------------------------------------------------------------------
    async def tenant(self, name: str) -> Tenant | None:
        row = (
            self._reader()
            .execute("SELECT tid, settings, params_generation FROM tenant WHERE name = ?", (name,))
            .fetchone()
        )
        if row is None:
            return None
        known = self._tenants.get(name)
        if known is not None and known[0] == (row[0], row[2]) and known[1] == row[1]:
            return known[2]
        tenant = Tenant(row[0], name, orjson.loads(row[1]), row[2])
        self._tenants[name] = ((row[0], row[2]), row[1], tenant)
        return tenant

    async def tenant_by_key(self, key: int) -> Tenant | None:
        row = self._reader().execute("SELECT name FROM tenant WHERE tid = ?", (key,)).fetchone()
        return None if row is None else await self.tenant(row[0])

    async def tenants(self) -> list[Tenant]:
        rows = self._reader().execute(
            "SELECT tid, name, settings, params_generation FROM tenant ORDER BY tid"
        )
        return [Tenant(tid, name, orjson.loads(settings), gen) for tid, name, settings, gen in rows]

    async def create_tenant(self, name: str, settings: Mapping[str, Any] | None = None) -> Tenant:
        body = orjson.dumps(dict(settings or {}))

        def run(conn: sqlite3.Connection, after: list[Callable[[], None]]) -> Tenant:
            if conn.execute("SELECT 1 FROM tenant WHERE name = ?", (name,)).fetchone():
                raise error("CW-4002", f"tenant {name!r} exists already")
            cur = conn.execute(
                "INSERT INTO tenant (name, created_ms, settings) VALUES (?, ?, ?)",
                (name, self._clock(), body),
            )
            return Tenant(int(cur.lastrowid or 0), name, orjson.loads(body))

        result: Tenant = await self._writer.submit_async(run)
        return result

    async def update_tenant_settings(self, name: str, settings: Mapping[str, Any]) -> Tenant:
        body = orjson.dumps(dict(settings))

        def run(conn: sqlite3.Connection, after: list[Callable[[], None]]) -> Tenant:
            cur = conn.execute("UPDATE tenant SET settings = ? WHERE name = ?", (body, name))
            if cur.rowcount == 0:
                raise error("CW-4001", f"no tenant {name!r}")
            tid = conn.execute("SELECT tid FROM tenant WHERE name = ?", (name,)).fetchone()[0]
            return Tenant(tid, name, orjson.loads(body))

        result: Tenant = await self._writer.submit_async(run)
        return result

    async def remove_tenant(self, name: str) -> bool:
        def run(conn: sqlite3.Connection, after: list[Callable[[], None]]) -> bool:
            row = conn.execute("SELECT tid FROM tenant WHERE name = ?", (name,)).fetchone()
            if row is None:
                return False
            for table in (*TENANT_TABLES, *(t for c in COMPONENTS for t in c.tenant_tables)):
                conn.execute(f"DELETE FROM {table} WHERE tid = ?", (row[0],))
            conn.execute("DELETE FROM tenant WHERE tid = ?", (row[0],))
            return True

        return bool(await self._writer.submit_async(run))

    # -- custom search parameters and jobs ----------------------------------------------------
    async def custom_params(self, tenant: Tenant) -> list[CustomParam]:
        return admin.custom_params(self._reader(), tenant.key)

    async def jobs(self, tenant: Tenant, kind: str | None = None) -> list[Job]:
        return admin.jobs(self._reader(), tenant.key, kind)

    async def claim_job(self, tenant: Tenant, kinds: Sequence[str], lease_ms: int = 30_000) -> Job | None:
        result: Job | None = await self._writer.submit_async(
            lambda conn, after: admin.claim_job(conn, tenant.key, kinds, self._clock(), lease_ms)
        )
        return result

    async def update_job(self, tenant: Tenant, jid: int, **fields: Any) -> None:
        await self._writer.submit_async(
            lambda conn, after: admin.update_job(conn, tenant.key, jid, self._clock(), **fields)
        )

    async def count(self, tenant: Tenant, types: Sequence[str]) -> int:
        return await self._in_pool(lambda: admin.count(self._reader(), tenant.key, types))

    async def reindex_chunk(
        self,
        tenant: Tenant,
        types: Sequence[str],
        after_rk: int,
        limit: int,
        index: Callable[[dict[str, Any]], IndexRows],
        keys: frozenset[str] | None,
    ) -> tuple[int | None, int]:
        def run(conn: sqlite3.Connection, after: list[Callable[[], None]]) -> tuple[int | None, int]:
            tx = SqliteTransaction(conn, tenant, self._now(), self._params, after)
            found = admin.resources_after(conn, tenant.key, types, after_rk, limit)
            for rk, body in found:
                tx.replace_index(rk, index(orjson.loads(body)), keys)
            return (found[-1][0] if found else None), len(found)

        result: tuple[int | None, int] = await self._writer.submit_async(run)
        return result

    async def mark_params_ready(self, tenant: Tenant, keys: Sequence[str]) -> None:
        await self._writer.submit_async(lambda conn, after: admin.mark_params_ready(conn, tenant.key, keys))

    async def close(self) -> None:
        self._writer.close()
        self._pool.shutdown(wait=True)
        with self._readers_lock:
            for conn in self._readers:
                conn.close()
            self._readers.clear()


def _migrate(conn: sqlite3.Connection) -> None:
    """Apply the numbered migrations this database has not seen, each in its own transaction.

    Several processes may start on one new file at once: each migration re-reads the applied
    version after taking the write lock (BEGIN IMMEDIATE), so a migration another process applied
    meanwhile is skipped, never run twice."""
    for number, script in enumerate(MIGRATIONS, start=1):
        if number <= conn.execute("PRAGMA user_version").fetchone()[0]:
            continue
        conn.execute("BEGIN IMMEDIATE")
        try:
            if number > conn.execute("PRAGMA user_version").fetchone()[0]:
                _run_script(conn, script)
                conn.execute(f"PRAGMA user_version = {number}")
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
    conn.execute(
        "CREATE TABLE IF NOT EXISTS component_version (name TEXT PRIMARY KEY, version INTEGER NOT NULL)"
    )
    for component in COMPONENTS:
        for number, script in enumerate(component.migrations, start=1):
            if number <= _component_version(conn, component.name):
                continue
            conn.execute("BEGIN IMMEDIATE")
            try:
                if number > _component_version(conn, component.name):
                    _run_script(conn, script)
                    conn.execute(
                        "INSERT INTO component_version (name, version) VALUES (?, ?) "
                        "ON CONFLICT (name) DO UPDATE SET version = excluded.version",
                        (component.name, number),
                    )
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise


def _component_version(conn: sqlite3.Connection, name: str) -> int:
    found = conn.execute("SELECT version FROM component_version WHERE name = ?", (name,)).fetchone()
    return int(found[0]) if found else 0


def _run_script(conn: sqlite3.Connection, script: str) -> None:
    for statement in script.split(";\n"):
        if statement.strip():
            conn.execute(statement)
