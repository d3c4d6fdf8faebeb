"""The PostgreSQL backend: a psycopg 3 connection pool used from threads, for several careweave
processes sharing one database.

Rules:
1. Every store call runs on a thread of this process's pool with a pooled connection (the
   Transaction protocol is synchronous); reads of more than one statement (search, history,
   component reads) run in one REPEATABLE READ READ ONLY transaction: one consistent snapshot.
2. Writes run in READ COMMITTED transactions, concurrently, with locks instead of a single writer:
   ``Transaction.current`` locks the resource row (SELECT ... FOR UPDATE; a concurrent writer waits
   and then reads the committed version), so two updates with the same If-Match give one success
   and one 412. Two creates of one new id meet at the unique ``resource_key``: the second waits for
   the first to commit, fails, and is run again (rule 4), now seeing the resource. ``search_ids``
   (conditional create, update, delete) first takes a transaction-level advisory lock on (tenant,
   criteria), so two conditional creates with the same criteria never both create.
3. The change log stays gap-free and ordered for readers: history rows are buffered during the
   transaction and written at its very end with sequence numbers taken from the one-row
   ``changelog`` counter (UPDATE ... RETURNING). The counter's row lock is held until COMMIT, so
   sequence order is commit order and a rolled-back transaction leaves no hole; only this last step
   is serialised between writers.
4. A write that loses a deadlock, a serialisation check or a race to create the same resource is
   rolled back and run again (at most :data:`RETRIES` times): write functions depend only on the
   database state, as for SQLite.
5. New resource rows (their row keys taken from the sequence in blocks) and index rows are
   buffered per transaction and written in one batch per table before the transaction reads them
   and at its end: COPY for large batches (bulk load, Bundles), a pipelined executemany for small
   ones. Measured on the store alone (3,000 resources in 250-resource transactions): ~1,050/s
   writing row by row, ~1,300-1,600/s buffered with executemany, ~1,900/s with COPY.
6. Every statement on a tenant table carries ``tid = ?`` (the shared statement modules and the SQL
   here), as on SQLite.
7. The search planner needs fresh statistics: a bulk load outruns autovacuum (and some servers run
   without it; measured on 15,600 loaded resources: 583 ms per search before ANALYZE, 2.2 ms
   after), so each process runs ANALYZE on a table once it has written :data:`ANALYZE_AFTER` rows
   to it, in the background.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

import orjson
import psycopg
from psycopg import errors as pg_errors
from psycopg_pool import ConnectionPool, PoolTimeout

from careweave.errors import error
from careweave.search.index import IndexRows
from careweave.search.plan import QueryPlan
from careweave.store.base import (
    Change,
    CustomParam,
    HistoryPage,
    HistoryQuery,
    Job,
    SearchPage,
    StoredResource,
    Tenant,
    Transaction,
)
from careweave.store.sql import admin
from careweave.store.sql.compile import POSTGRES, Compiler
from careweave.store.sql.components import COMPONENTS, Sql
from careweave.store.sql.pg_migrate import migrate, pending_migrations
from careweave.store.sql.pg_sql import INDEX_TEXT_CHARS, PgSql, Trace
from careweave.store.sql.pg_transaction import Params, PgTransaction, as_bytes
from careweave.store.sql.query import search_statement
from careweave.store.sql.schema import TENANT_TABLES
from careweave.store.sql.search import StatementCache, run_search

__all__ = ["RETRIES", "PostgresStore", "redact"]

log = logging.getLogger("careweave.store.postgres")

T = TypeVar("T")
After = list[Callable[[], None]]  # callbacks run once the transaction has committed

RETRIES = 8
ANALYZE_AFTER = 20_000  # rows a table gains before this process refreshes its statistics

_READ = "SELECT version, updated_ms, deleted, body FROM resource WHERE tid = ? AND type = ? AND id = ?"
_VREAD = (
    "SELECT h.version, h.updated_ms, h.body IS NULL, h.body, h.method, h.seq FROM history h "
    "JOIN resource r ON r.rk = h.rk "
    "WHERE r.tid = ? AND r.type = ? AND r.id = ? AND h.tid = ? AND h.version = ?"
)
_HISTORY_SELECT = "h.type, h.id, h.version, h.updated_ms, h.body IS NULL, h.body, h.method, h.seq"
_RETRYABLE = (pg_errors.DeadlockDetected, pg_errors.SerializationFailure)


def wall_clock_ms() -> int:
    return time.time_ns() // 1_000_000


def redact(url: str) -> str:
    """The database URL without its password (for logs and messages)."""
    head, sep, tail = url.partition("@")
    if not sep or "://" not in head:
        return url
    scheme, _, user = head.partition("://")
    return f"{scheme}://{user.split(':', 1)[0]}@{tail}"


class PostgresStore:
    """A :class:`~careweave.store.base.Store` over one PostgreSQL database (all tenants), safe to
    share between several careweave processes."""

    dialect = POSTGRES

    def __init__(
        self,
        url: str,
        *,
        pool_size: int = 16,
        reader_threads: int = 4,
        migrate_on_start: bool = True,
        connect_timeout: float = 10.0,
        clock: Callable[[], int] = wall_clock_ms,
        trace: Trace | None = None,
    ) -> None:
        self._clock = clock
        self._last_ms = 0
        self._clock_lock = threading.Lock()
        self._since_analyze: dict[str, int] = {}
        self._closing = False
        self._trace = trace
        self._params = Params()
        self._statements = StatementCache()  # compiled search statements, by plan shape
        self._tenants: dict[str, tuple[tuple[int, int], bytes, Tenant]] = {}
        readers = max(1, reader_threads)
        writers = max(2, pool_size - readers)
        self._pool: ConnectionPool[psycopg.Connection[Any]] = ConnectionPool(
            url,
            min_size=1,
            max_size=readers + writers,
            kwargs={"autocommit": True, "application_name": "careweave"},
            open=False,
            name="careweave",
        )
        try:
            self._pool.open(wait=True, timeout=connect_timeout)
        except PoolTimeout:
            self._pool.close()
            raise error("CW-9101", f"PostgreSQL is not reachable at {redact(url)}") from None
        try:
            with self._pool.connection() as conn:
                if migrate_on_start:
                    migrate(conn)
                else:
                    missing = pending_migrations(conn)
                    if missing:
                        raise error(
                            "CW-9103",
                            f"the database schema lacks {', '.join(missing)}: run `careweave migrate`",
                        )
        except BaseException:
            self._pool.close()
            raise
        self._readers = ThreadPoolExecutor(readers, thread_name_prefix="careweave-pg-read")
        self._writers = ThreadPoolExecutor(writers, thread_name_prefix="careweave-pg-write")

    # -- running on the pool ----------------------------------------------------------------------
    def _sql(self, conn: psycopg.Connection[Any], cap: int | None = None) -> PgSql:
        return PgSql(conn, self._trace, cap)

    async def _read(self, fn: Callable[[PgSql], T], snapshot: bool = False, cap: int | None = None) -> T:
        def run() -> T:
            with _database_errors():
                return self._run_read(fn, snapshot, cap)
            raise AssertionError("unreachable")

        return await asyncio.get_running_loop().run_in_executor(self._readers, run)

    def _run_read(self, fn: Callable[[PgSql], T], snapshot: bool, cap: int | None) -> T:
        with self._pool.connection() as conn:
            sql = self._sql(conn, cap)
            if not snapshot:
                return fn(sql)
            conn.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
            try:
                return fn(sql)
            finally:
                conn.execute("ROLLBACK")  # read only: nothing to keep

    async def _write(self, fn: Callable[[PgSql, After], T]) -> T:
        def run() -> T:
            for attempt in range(RETRIES):
                after: After = []
                try:
                    with _database_errors():
                        result = self._run_write(fn, after)
                except (*_RETRYABLE, pg_errors.UniqueViolation) as exc:
                    if not _retryable(exc):
                        raise
                    if attempt == RETRIES - 1:
                        raise error("CW-9102", "the write kept conflicting with concurrent writes") from None
                    time.sleep(0.001 * (attempt + 1))
                    continue
                for callback in after:
                    callback()
                return result
            raise AssertionError("unreachable")

        return await asyncio.get_running_loop().run_in_executor(self._writers, run)

    def _run_write(self, fn: Callable[[PgSql, After], T], after: After) -> T:
        with self._pool.connection() as conn, conn.transaction():
            return fn(self._sql(conn), after)

    def _now(self) -> int:
        with self._clock_lock:  # writers run on several threads
            now = max(self._clock(), self._last_ms)
            self._last_ms = now
            return now

    def _tx(self, sql: PgSql, tenant: Tenant, after: After) -> PgTransaction:
        tx = PgTransaction(sql, tenant, self._now(), self._params, after)
        after.append(lambda: self._note_written(tx.written))
        return tx

    def _note_written(self, written: Mapping[str, int]) -> None:
        """Count committed rows per table; once a table has :data:`ANALYZE_AFTER` new rows,
        refresh its planner statistics in the background (rule 7)."""
        with self._clock_lock:
            due = []
            for table, rows in written.items():
                self._since_analyze[table] = self._since_analyze.get(table, 0) + rows
                if self._since_analyze[table] >= ANALYZE_AFTER:
                    self._since_analyze[table] = 0
                    due.append(table)
        if due and not self._closing:
            with contextlib.suppress(RuntimeError):  # closing meanwhile: no statistics needed
                self._writers.submit(self._analyze, due)

    def _analyze(self, tables: Sequence[str]) -> None:
        try:
            with self._pool.connection() as conn:
                for table in tables:
                    conn.execute(f"ANALYZE {table}")  # names from the schema, never from input
        except psycopg.Error as exc:
            log.warning("ANALYZE failed: %s", type(exc).__name__)

    # -- reads ------------------------------------------------------------------------------------
    async def read(self, tenant: Tenant, type: str, id: str) -> StoredResource | None:
        def run(sql: PgSql) -> StoredResource | None:
            row = sql.execute(_READ, (tenant.key, type, id)).fetchone()
            if row is None:
                return None
            version, updated_ms, deleted, body = row
            return StoredResource(type, id, version, updated_ms, bool(deleted), as_bytes(body))

        return await self._read(run)

    async def vread(self, tenant: Tenant, type: str, id: str, version: int) -> StoredResource | None:
        def run(sql: PgSql) -> StoredResource | None:
            row = sql.execute(_VREAD, (tenant.key, type, id, tenant.key, version)).fetchone()
            if row is None:
                return None
            v, updated_ms, deleted, body, method, seq = row
            return StoredResource(type, id, v, updated_ms, bool(deleted), as_bytes(body), method, seq)

        return await self._read(run)

    async def history(self, tenant: Tenant, query: HistoryQuery) -> HistoryPage:
        return await self._read(lambda sql: _history(sql, tenant, query), snapshot=True)

    async def search(self, tenant: Tenant, plan: QueryPlan) -> SearchPage:
        def run(sql: PgSql) -> SearchPage:
            return run_search(
                sql,
                tenant.key,
                lambda key: self._params.lookup(sql, key),
                plan,
                POSTGRES,
                cache=self._statements,
                generation=tenant.params_generation,
            )

        return await self._read(run, snapshot=True, cap=INDEX_TEXT_CHARS)

    async def explain(self, tenant: Tenant, plan: QueryPlan) -> list[str]:
        """PostgreSQL's plan for a search (for benchmarks and tests)."""

        def run(sql: PgSql) -> list[str]:
            compiler = Compiler(tenant.key, lambda key: self._params.lookup(sql, key), dialect=POSTGRES)
            statement = search_statement(sql, compiler, plan)
            rows = sql.execute("EXPLAIN " + statement.sql, statement.params).fetchall()
            return [f"driver={statement.driver}"] + [str(r[0]) for r in rows]

        return await self._read(run, snapshot=True, cap=INDEX_TEXT_CHARS)

    async def changes(self, after_seq: int, limit: int) -> list[Change]:
        def run(sql: PgSql) -> list[Change]:
            rows = sql.execute(
                "SELECT seq, tid, type, id, version, updated_ms, method, body FROM history "
                "WHERE seq > ? ORDER BY seq LIMIT ?",
                (after_seq, limit),
            )
            return [Change(s, t, ty, i, v, u, m, as_bytes(b)) for s, t, ty, i, v, u, m, b in rows]

        return await self._read(run)

    # -- writes -----------------------------------------------------------------------------------
    async def write(self, tenant: Tenant, fn: Callable[[Transaction], T]) -> T:
        def job(sql: PgSql, after: After) -> T:
            tx = self._tx(sql, tenant, after)
            result = fn(tx)
            tx.finish()
            return result

        return await self._write(job)

    # -- component SQL (events, HL7 v2, MPI: see components.py) -----------------------------------
    async def sql_read(self, fn: Callable[[Sql], T]) -> T:
        """Run ``fn`` inside one read-only snapshot transaction."""
        return await self._read(fn, snapshot=True)

    async def sql_write(self, fn: Callable[[Sql], T]) -> T:
        """Run ``fn`` in a write transaction; it has committed when this returns. ``fn`` may run more
        than once (a transaction that lost a deadlock is run again)."""
        return await self._write(lambda sql, after: fn(sql))

    async def sql_write_tenant(self, tenant: Tenant, fn: Callable[[Sql, Transaction], T]) -> T:
        """Like :meth:`sql_write`, with a resource :class:`Transaction` in the same transaction."""

        def job(sql: PgSql, after: After) -> T:
            tx = self._tx(sql, tenant, after)
            result = fn(sql, tx)
            tx.finish()
            return result

        return await self._write(job)

    # -- tenants ----------------------------------------------------------------------------------
    async def tenant(self, name: str) -> Tenant | None:
        row = await self._read(
            lambda sql: sql.execute(
                "SELECT tid, settings, params_generation FROM tenant WHERE name = ?", (name,)
            ).fetchone()
        )
        if row is None:
            return None
        tid, settings, generation = row[0], bytes(row[1]), row[2]
        known = self._tenants.get(name)
        if known is not None and known[0] == (tid, generation) and known[1] == settings:
            return known[2]
        tenant = Tenant(tid, name, orjson.loads(settings), generation)
        self._tenants[name] = ((tid, generation), settings, tenant)
        return tenant

    async def tenant_by_key(self, key: int) -> Tenant | None:
        row = await self._read(
            lambda sql: sql.execute("SELECT name FROM tenant WHERE tid = ?", (key,)).fetchone()
        )
        return None if row is None else await self.tenant(row[0])

    async def tenants(self) -> list[Tenant]:
        rows = await self._read(
            lambda sql: sql.execute(
                "SELECT tid, name, settings, params_generation FROM tenant ORDER BY tid"
            ).fetchall()
        )
        return [Tenant(tid, name, orjson.loads(bytes(s)), gen) for tid, name, s, gen in rows]

    async def create_tenant(self, name: str, settings: Mapping[str, Any] | None = None) -> Tenant:
        body = orjson.dumps(dict(settings or {}))

        def run(sql: PgSql, after: After) -> Tenant:
            row = sql.execute(
                "INSERT INTO tenant (name, created_ms, settings) VALUES (?, ?, ?) "
                "ON CONFLICT (name) DO NOTHING RETURNING tid",
                (name, self._clock(), body),
            ).fetchone()
            if row is None:
                raise error("CW-4002", f"tenant {name!r} exists already")
            return Tenant(int(row[0]), name, orjson.loads(body))

        return await self._write(run)

    async def update_tenant_settings(self, name: str, settings: Mapping[str, Any]) -> Tenant:
        body = orjson.dumps(dict(settings))

        def run(sql: PgSql, after: After) -> Tenant:
            row = sql.execute(
                "UPDATE tenant SET settings = ? WHERE name = ? RETURNING tid", (body, name)
            ).fetchone()
            if row is None:
                raise error("CW-4001", f"no tenant {name!r}")
            return Tenant(int(row[0]), name, orjson.loads(body))

        return await self._write(run)

    async def remove_tenant(self, name: str) -> bool:
        def run(sql: PgSql, after: After) -> bool:
            row = sql.execute("SELECT tid FROM tenant WHERE name = ? FOR UPDATE", (name,)).fetchone()
            if row is None:
                return False
            for table in (*TENANT_TABLES, *(t for c in COMPONENTS for t in c.tenant_tables)):
                sql.execute(f"DELETE FROM {table} WHERE tid = ?", (row[0],))
            sql.execute("DELETE FROM tenant WHERE tid = ?", (row[0],))
            return True

        return bool(await self._write(run))

    # -- custom search parameters and jobs --------------------------------------------------------
    async def custom_params(self, tenant: Tenant) -> list[CustomParam]:
        return await self._read(lambda sql: admin.custom_params(sql, tenant.key))

    async def jobs(self, tenant: Tenant, kind: str | None = None) -> list[Job]:
        return await self._read(lambda sql: admin.jobs(sql, tenant.key, kind))

    async def claim_job(self, tenant: Tenant, kinds: Sequence[str], lease_ms: int = 30_000) -> Job | None:
        return await self._write(
            lambda sql, after: admin.claim_job(sql, tenant.key, kinds, self._clock(), lease_ms, lock=True)
        )

    async def update_job(self, tenant: Tenant, jid: int, **fields: Any) -> None:
        await self._write(lambda sql, after: admin.update_job(sql, tenant.key, jid, self._clock(), **fields))

    async def count(self, tenant: Tenant, types: Sequence[str]) -> int:
        return await self._read(lambda sql: admin.count(sql, tenant.key, types))

    async def reindex_chunk(
        self,
        tenant: Tenant,
        types: Sequence[str],
        after_rk: int,
        limit: int,
        index: Callable[[dict[str, Any]], IndexRows],
        keys: frozenset[str] | None,
    ) -> tuple[int | None, int]:
        def run(sql: PgSql, after: After) -> tuple[int | None, int]:
            tx = self._tx(sql, tenant, after)
            found = admin.resources_after(sql, tenant.key, types, after_rk, limit, lock=True)
            for rk, body in found:
                tx.replace_index(rk, index(orjson.loads(body)), keys)
            tx.finish()
            return (found[-1][0] if found else None), len(found)

        return await self._write(run)

    async def mark_params_ready(self, tenant: Tenant, keys: Sequence[str]) -> None:
        await self._write(lambda sql, after: admin.mark_params_ready(sql, tenant.key, keys))

    async def close(self) -> None:
        self._closing = True
        self._readers.shutdown(wait=True)
        self._writers.shutdown(wait=True)
        self._pool.close()


def _history(sql: PgSql, tenant: Tenant, query: HistoryQuery) -> HistoryPage:
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
    total = None
    if query.id is not None:
        total = int(
            sql.execute(f"SELECT count(*) FROM history h WHERE {' AND '.join(where)}", params).fetchone()[0]
        )
    if query.before_seq is not None:
        where.append("h.seq < ?")
        params.append(query.before_seq)
    rows = sql.execute(
        f"SELECT {_HISTORY_SELECT} FROM history h WHERE {' AND '.join(where)} ORDER BY h.seq DESC LIMIT ?",
        [*params, query.count + 1],
    ).fetchall()
    entries = [StoredResource(t, i, v, u, bool(d), as_bytes(b), m, s) for t, i, v, u, d, b, m, s in rows]
    more = len(entries) > query.count
    entries = entries[: query.count]
    return HistoryPage(entries, total, entries[-1].seq if more and entries else None)


def _retryable(exc: BaseException) -> bool:
    if isinstance(exc, pg_errors.UniqueViolation):
        return exc.diag.constraint_name == "resource_key"  # two creates of one id (rule 2)
    return isinstance(exc, _RETRYABLE)


@contextlib.contextmanager
def _database_errors() -> Iterator[None]:
    """Connection failures become CW-9101 (503), not a 500."""
    try:
        yield
    except _RETRYABLE:
        raise
    except (psycopg.OperationalError, PoolTimeout) as exc:
        sqlstate = getattr(exc, "sqlstate", None)
        if sqlstate is not None and not sqlstate.startswith(("08", "57")):
            raise  # not a connection problem (08: connection exception, 57: operator intervention)
        log.error("PostgreSQL error: %s", type(exc).__name__)
        raise error("CW-9101", "the database is not reachable now") from exc
