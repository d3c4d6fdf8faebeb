"""Running a search (SQLite and PostgreSQL): the page, its cursors, the total, and _include / _revinclude.

Rules:
1. A page is read inside one read transaction (the caller's), so matches, total and includes are
   one consistent snapshot.
2. Includes follow references from the page's matches (``_include``) or find resources pointing at
   them (``_revinclude``); ``:iterate`` repeats over what was added, at most :data:`MAX_ROUNDS`
   rounds and :data:`MAX_INCLUDES` resources. A resource appears once, matches first.
3. On SQLite, a search whose plan is bounded (a small index driver, cheap checks, no total) runs
   on the calling thread (:func:`search_inline`) within a time budget; any other, or one
   that overruns, runs on the reader pool. The probes only choose statements, so a plan made on
   one connection runs on another; one statement needs no explicit read transaction.
"""

from __future__ import annotations

import sqlite3
import time
from dataclasses import dataclass
from typing import Any

from careweave.search.plan import QueryPlan
from careweave.store.base import SearchPage, StoredResource
from careweave.store.sql.compile import SQLITE, Compiler, Dialect, PidOf
from careweave.store.sql.components import Sql
from careweave.store.sql.query import (
    PROBE_CAP,
    SearchStatement,
    count_statement,
    search_statement,
    sorted_scan,
)

__all__ = [
    "INLINE_BUDGET_S",
    "INLINE_CANDIDATES",
    "MAX_INCLUDES",
    "MAX_ROUNDS",
    "PreparedSearch",
    "prepare_search",
    "run_search",
    "search_inline",
]

MAX_ROUNDS = 4
MAX_INCLUDES = 1000
INLINE_CANDIDATES = 256  # a bounded search examines at most this many candidate rows
# An inline attempt gives up after this much CPU time (bounded searches take 0.1-0.3 ms; at 0.5 ms
# a busy machine's p99 already overran, and each overrun is done twice)
INLINE_BUDGET_S = 0.001
_WALL_FACTOR = 20  # or after this many times as much wall time (waiting for the disk, preempted)
_PROGRESS_STEPS = 200

Found = tuple[int, StoredResource]  # rk, resource


@dataclass(slots=True)
class PreparedSearch:
    """A planned search: its statements, ready to run on any connection to the same database
    (the planner's probes only chose them; they hold no data)."""

    count: tuple[str, list[Any]] | None  # the total's statement, when one is needed
    page: list[SearchStatement]  # the page statement, or a sorted scan's phases; none for count 0

    @property
    def bounded(self) -> bool:
        """Whether the work is small and known: no total to count, and a first page statement
        that examines at most :data:`INLINE_CANDIDATES` rows with cheap checks."""
        if self.count is not None or not self.page:
            return False
        first = self.page[0].candidates
        return first is not None and first <= INLINE_CANDIDATES

    @property
    def settled(self) -> bool:
        """Whether these are the statements the full planner would choose (see ``probe_cap``)."""
        return all(statement.settled for statement in self.page)


def prepare_search(
    conn: Sql, compiler: Compiler, plan: QueryPlan, probe_cap: int = PROBE_CAP
) -> PreparedSearch:
    """Plan ``plan`` (the probes run on ``conn``) and compile its statements. With a
    ``probe_cap`` below PROBE_CAP the result may be unsettled (only a quick look)."""
    count = None
    if plan.total in ("accurate", "estimate") or plan.count == 0:
        count = count_statement(conn, compiler, plan)
    if plan.count == 0:
        return PreparedSearch(count, [])
    scan = sorted_scan(conn, compiler, plan, probe_cap)
    if scan is None:
        scan = [search_statement(conn, compiler, plan, probe_cap)]
    return PreparedSearch(count, scan)


def run_search(
    conn: Sql,
    tid: int,
    pid_of: PidOf,
    plan: QueryPlan,
    dialect: Dialect = SQLITE,
    prepared: PreparedSearch | None = None,
) -> SearchPage:
    """The page of ``plan``, in the caller's read transaction; ``prepared`` when planned already."""
    if prepared is None:
        prepared = prepare_search(conn, Compiler(tid, pid_of, dialect=dialect), plan)
    total: int | None = None
    if prepared.count is not None:
        sql, params = prepared.count
        total = int(conn.execute(sql, params).fetchone()[0])
    if plan.count == 0:
        return SearchPage([], [], total, None, None)
    statement = prepared.page[0]
    rows: list[Any] = []
    for part in prepared.page:  # one statement, or a sorted scan's phases while the page is short
        params = part.params if not rows else [*part.params[:-1], plan.count + 1 - len(rows)]
        rows += conn.execute(part.sql, params).fetchall()  # (the last parameter is the LIMIT)
        if len(rows) > plan.count:
            break
    more = len(rows) > plan.count
    rows = rows[: plan.count]
    backwards = plan.before is not None
    if backwards:
        rows.reverse()
    found: list[Found] = [
        (row[0], StoredResource(row[1], row[2], row[3], row[4], False, row[5])) for row in rows
    ]

    def keys(row: Any) -> tuple[Any, ...]:
        return (*row[6 : 6 + statement.keys], row[0])

    if backwards:
        next_after = keys(rows[-1]) if rows else None
        prev_before = keys(rows[0]) if rows and more else None
    else:
        next_after = keys(rows[-1]) if rows and more else None
        prev_before = keys(rows[0]) if rows and plan.after is not None else None
    if total is None and plan.after is None and plan.before is None and not more:
        total = len(found)
    includes = _includes(conn, Compiler(tid, pid_of, dialect=dialect), plan, found) if plan.includes else []
    return SearchPage([r for _, r in found], includes, total, next_after, prev_before)


def search_inline(
    conn: sqlite3.Connection, tid: int, pid_of: PidOf, plan: QueryPlan, budget_s: float = INLINE_BUDGET_S
) -> tuple[SearchPage | None, PreparedSearch | None]:
    """Try ``plan`` on the calling thread (SQLite): plan it with probes capped just above
    :data:`INLINE_CANDIDATES`, and run it when the plan is :attr:`~PreparedSearch.bounded`, all
    within ``budget_s`` seconds of this thread's CPU time (and 20 times as much wall time).

    A thread hop (about 80 µs of CPU time, measured) costs as much as a bounded search's own
    work, so the event loop runs those itself; the budget (checked by SQLite's progress handler
    every :data:`_PROGRESS_STEPS` VM steps) keeps a misjudged one from stalling it. CPU time, not
    wall time, is what the search costs: on a busy machine the thread may wait for a core,
    wherever it runs.

    Returns the page; or no page and the plan when it is not bounded but settled (run it
    elsewhere, in a read transaction); or neither (plan and run it elsewhere)."""
    if plan.count == 0 or plan.total in ("accurate", "estimate"):
        return None, None  # a total visits every match: never inline
    if conn.in_transaction:
        return None, None  # (someone's snapshot: leave it alone)
    cpu_limit = time.thread_time() + budget_s
    start = time.perf_counter()
    soft, hard = start + budget_s, start + budget_s * _WALL_FACTOR
    late: list[bool] = []

    def progress() -> int:
        now = time.perf_counter()  # (CPU time never runs ahead of wall time: ask it only then)
        if now > soft and (now > hard or time.thread_time() > cpu_limit):
            late.append(True)
            return 1
        return 0

    conn.set_progress_handler(progress, _PROGRESS_STEPS)
    try:
        prepared = prepare_search(conn, Compiler(tid, pid_of), plan, INLINE_CANDIDATES + 1)
        if not prepared.bounded:
            return None, prepared if prepared.settled else None
        if not _single_statement(plan, prepared):  # one statement is its own snapshot
            conn.execute("BEGIN")
        return run_search(conn, tid, pid_of, plan, prepared=prepared), prepared
    except sqlite3.OperationalError:
        if not late:
            raise
        return None, None
    finally:
        conn.set_progress_handler(None, 0)  # (before COMMIT: it must not be interrupted)
        if conn.in_transaction:
            conn.execute("COMMIT")


def _single_statement(plan: QueryPlan, prepared: PreparedSearch) -> bool:
    return not plan.includes and prepared.count is None and len(prepared.page) == 1


def _includes(conn: Sql, compiler: Compiler, plan: QueryPlan, matches: list[Found]) -> list[StoredResource]:
    seen = {(r.type, r.id) for _, r in matches}
    added: list[StoredResource] = []
    frontier = matches
    for round_ in range(MAX_ROUNDS):
        new: list[Found] = []
        for include in plan.includes:
            if round_ > 0 and not include.iterate:
                continue
            pid = compiler.pid_of(include.param) if include.param else None
            if pid is None:
                continue
            if include.rev:
                candidates = _reverse(conn, compiler, pid, include.target_type, frontier)
            else:
                candidates = _forward(conn, compiler, pid, include.source_type, include.target_type, frontier)
            for rk, resource in candidates:
                if (resource.type, resource.id) not in seen and len(added) < MAX_INCLUDES:
                    seen.add((resource.type, resource.id))
                    added.append(resource)
                    new.append((rk, resource))
        if not new:
            break
        frontier = new
    return added


_FOUND_COLUMNS = "r.rk, r.type, r.id, r.version, r.updated_ms, r.body"


def _fetch(conn: Sql, where: str, params: list[Any]) -> list[Found]:
    rows = conn.execute(f"SELECT rk, type, id, version, updated_ms, body FROM resource WHERE {where}", params)
    return [(rk, StoredResource(t, i, v, u, False, b)) for rk, t, i, v, u, b in rows]


def _forward(
    conn: Sql,
    compiler: Compiler,
    pid: int,
    source: str,
    target: str | None,
    frontier: list[Found],
) -> list[Found]:
    """The resources the frontier's ``source`` resources refer to, in one statement: each one's
    reference rows, found by its row key (a key range on SQLite) from a list of the keys, name the
    (type, id) pairs looked up in the resource key index."""
    tid = compiler.tid
    rks = [rk for rk, r in frontier if r.type == source]
    if not rks:
        return []
    params: list[Any] = [*rks, tid, tid, pid]
    keys = ", ".join("(CAST(? AS BIGINT))" for _ in rks)
    rows = f"{compiler.by_key('ix_reference', 'f')} ON {compiler.row_of('f', 'k.rk')}"
    refs = (
        f"SELECT f.target_type, f.target_id FROM k {compiler.dialect.join_in_order} {rows} "
        "WHERE f.tid = ? AND f.pid = ? AND f.target_id IS NOT NULL"
    )
    if target is not None:
        refs += " AND f.target_type = ?"
        params.append(target)
    sql = (
        f"WITH k (rk) AS (VALUES {keys}) SELECT {_FOUND_COLUMNS} FROM resource r WHERE r.tid = ? "
        f"AND r.deleted = 0 AND (r.type, r.id) IN ({refs}) ORDER BY r.type, r.id"
    )
    return [(rk, StoredResource(t, i, v, u, False, b)) for rk, t, i, v, u, b in conn.execute(sql, params)]


def _reverse(
    conn: Sql, compiler: Compiler, pid: int, target: str | None, frontier: list[Found]
) -> list[Found]:
    tid = compiler.tid
    by_type = _group([(r.type, r.id) for _, r in frontier if target is None or r.type == target])
    out: list[Found] = []
    for type_, ids in by_type.items():
        sql = (
            f"SELECT DISTINCT {compiler.row_rk('f')} FROM ix_reference f WHERE f.tid = ? AND f.pid = ? AND "
            f"f.target_type = ? AND f.target_id IN ({', '.join('?' for _ in ids)})"
        )
        rks = [row[0] for row in conn.execute(sql, [tid, pid, type_, *ids])]
        if rks:
            out.extend(
                _fetch(
                    conn,
                    f"tid = ? AND deleted = 0 AND rk IN ({', '.join('?' for _ in rks)})",
                    [tid, *rks],
                )
            )
    return out


def _group(pairs: list[tuple[str, str]]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for type_, id_ in pairs:
        out.setdefault(type_, []).append(id_)
    return out
