"""Running a search (SQLite and PostgreSQL): the page, its cursors, the total, and _include / _revinclude.

Rules:
1. A page is read inside one read transaction (the caller's), so matches, total and includes are
   one consistent snapshot.
2. Includes follow references from the page's matches (``_include``) or find resources pointing at
   them (``_revinclude``); ``:iterate`` repeats over what was added, at most :data:`MAX_ROUNDS`
   rounds and :data:`MAX_INCLUDES` resources. A resource appears once, matches first.
3. Statements are compiled once per plan shape (:class:`StatementCache`, owned by the store): two
   searches that differ only in their values run the same statement texts with their own values
   bound. A shape is per tenant and parameter generation; one compiled while some parameter key
   had no storage id is compiled again once the key has one.
4. On SQLite, a search whose plan is bounded (a small index driver, cheap checks, no total) runs
   on the calling thread (:func:`search_inline`) within a time budget; any other, or one
   that overruns, runs on the reader pool. The probes only choose statements, so a plan made on
   one connection runs on another; one statement needs no explicit read transaction.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import Any

from careweave.search.plan import QueryPlan
from careweave.store.base import SearchPage, StoredResource
from careweave.store.sql.compile import (
    SQLITE,
    Compiler,
    Derived,
    Dialect,
    PidOf,
    Slot,
    plan_shape,
    slotted_plan,
)
from careweave.store.sql.components import Sql
from careweave.store.sql.query import (
    MARKERS,
    PROBE_CAP,
    Build,
    Built,
    SearchStatement,
    direct,
    page_statements,
    plan_count,
    probe_count,
    probed_page,
)

__all__ = [
    "INLINE_BUDGET_S",
    "INLINE_CANDIDATES",
    "MAX_INCLUDES",
    "MAX_ROUNDS",
    "PreparedSearch",
    "StatementCache",
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
_PROGRESS_STEPS = 1000  # (a Python call each time: about 10-20 µs of VM work apart)

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
    conn: Sql,
    compiler: Compiler,
    plan: QueryPlan,
    probe_cap: int = PROBE_CAP,
    cache: StatementCache | None = None,
    generation: int = 0,
    build: Build | None = None,
) -> PreparedSearch:
    """Plan ``plan`` (the probes run on ``conn``) and compile its statements, or take them from
    ``cache`` (``generation``: the tenant's parameter generation), or from ``build`` (made by
    :func:`builder` for this plan). With a ``probe_cap`` below PROBE_CAP the result may be
    unsettled (only a quick look)."""
    if build is None:
        build = builder(compiler, plan, cache, generation)
    count = None
    if plan.total in ("accurate", "estimate") or plan.count == 0:
        count = plan_count(conn, build, plan)
    if plan.count == 0:
        return PreparedSearch(count, [])
    return PreparedSearch(count, page_statements(conn, build, plan, probe_cap))


def builder(compiler: Compiler, plan: QueryPlan, cache: StatementCache | None, generation: int) -> Build:
    """The statements of ``plan``: from ``cache`` (by its shape) when there is one."""
    return direct(compiler, plan) if cache is None else cache.builder(compiler, plan, generation)


class _Template:
    """One statement compiled for a shape: its text, its constant parameters, and where the
    search's own values go (Slots and values derived from them)."""

    __slots__ = ("fills", "info", "params", "sql")

    def __init__(self, sql: str, params: list[Any], info: Any) -> None:
        if "Slot object" in sql or "Derived object" in sql:
            raise AssertionError(f"a value was written into the statement text: {sql}")
        self.sql = sql
        self.info = info
        self.fills = [(i, p) for i, p in enumerate(params) if isinstance(p, (Slot, Derived))]
        self.params = [None if isinstance(p, (Slot, Derived)) else p for p in params]

    def bind(self, values: list[Any]) -> Built:
        params = self.params.copy()
        for i, ref in self.fills:
            params[i] = ref.get(values)
        return self.sql, params, self.info


class _Shape:
    """The statements compiled for one plan shape, by what they are (probe i, page, count...)."""

    __slots__ = ("plan", "templates", "unknown")

    def __init__(self, plan: QueryPlan) -> None:
        self.plan = plan  # the shape: the plan with Slots for its values
        self.templates: dict[Hashable, _Template | None] = {}
        self.unknown: set[str] = set()  # parameter keys that had no storage id when compiled

    def builder(self, compiler: Compiler, values: list[Any]) -> Build:
        def build(what: Hashable, fn: Callable[[Compiler, QueryPlan], Built | None]) -> Built | None:
            if what in self.templates:
                template = self.templates[what]
            else:
                template = self.templates[what] = self._compile(compiler, fn)
            return None if template is None else template.bind(values)

        return build

    def _compile(
        self, compiler: Compiler, fn: Callable[[Compiler, QueryPlan], Built | None]
    ) -> _Template | None:
        def pid_of(key: str) -> int | None:
            pid = compiler.pid_of(key)
            if pid is None:
                self.unknown.add(key)
            return pid

        built = fn(Compiler(compiler.tid, pid_of, Slot(0), compiler.dialect), self.plan)
        return None if built is None else _Template(*built)


class StatementCache:
    """Compiled statements by plan shape (least recently used ones dropped past ``size`` shapes),
    keyed by tenant, its parameter generation and the dialect; safe to share between threads."""

    def __init__(self, size: int = 256) -> None:
        self._size = size
        self._shapes: OrderedDict[Hashable, _Shape] = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._shapes)

    def builder(self, compiler: Compiler, plan: QueryPlan, generation: int = 0) -> Build:
        """A :data:`~careweave.store.sql.query.Build` giving ``plan``'s statements from its shape's."""
        try:
            shape_key, values = plan_shape(plan, compiler.now_ms, MARKERS)
        except TypeError:  # a value of a kind shapes do not know: compile for this plan alone
            return direct(compiler, plan)
        key = (compiler.tid, generation, compiler.dialect.name, shape_key)
        with self._lock:
            shape = self._shapes.get(key)
            if shape is not None:
                self._shapes.move_to_end(key)
        if shape is not None and shape.unknown and any(compiler.pid_of(k) is not None for k in shape.unknown):
            shape = None  # a parameter has rows (and an id) since: its conditions are no longer FALSE
        if shape is None:
            shape = _Shape(slotted_plan(plan, MARKERS))
            with self._lock:
                self._shapes[key] = shape
                self._shapes.move_to_end(key)
                while len(self._shapes) > self._size:
                    self._shapes.popitem(last=False)
        return shape.builder(compiler, values)


def run_search(
    conn: Sql,
    tid: int,
    pid_of: PidOf,
    plan: QueryPlan,
    dialect: Dialect = SQLITE,
    prepared: PreparedSearch | None = None,
    cache: StatementCache | None = None,
    generation: int = 0,
) -> SearchPage:
    """The page of ``plan``, in the caller's read transaction; ``prepared`` when planned already."""
    if prepared is None:
        compiler = Compiler(tid, pid_of, dialect=dialect)
        prepared = prepare_search(conn, compiler, plan, cache=cache, generation=generation)
    total: int | None = None
    if prepared.count is not None:
        sql, params = prepared.count
        total = int(conn.execute(sql, params).fetchone()[0])
    if plan.count == 0:
        return SearchPage([], [], total, None, None)
    rows: list[Any] = []
    for part in prepared.page:  # one statement, or a sorted scan's phases while the page is short
        params = part.params if not rows else [*part.params[:-1], plan.count + 1 - len(rows)]
        rows += conn.execute(part.sql, params).fetchall()  # (the last parameter is the LIMIT)
        if len(rows) > plan.count:
            break
    return _assemble(conn, tid, pid_of, dialect, plan, prepared.page[0].keys, rows, total)


def _assemble(
    conn: Sql,
    tid: int,
    pid_of: PidOf,
    dialect: Dialect,
    plan: QueryPlan,
    keys: int,
    rows: list[Any],
    total: int | None,
) -> SearchPage:
    """The page from its statements' rows (resource columns, then ``keys`` sort keys)."""
    more = len(rows) > plan.count
    if more:
        rows = rows[: plan.count]
    backwards = plan.before is not None
    if backwards:
        rows.reverse()
    matches = [StoredResource(row[1], row[2], row[3], row[4], False, row[5]) for row in rows]
    next_after = prev_before = None
    if rows:
        first, last = rows[0], rows[-1]
        if backwards:
            next_after = (*last[6 : 6 + keys], last[0])
            if more:
                prev_before = (*first[6 : 6 + keys], first[0])
        else:
            if more:
                next_after = (*last[6 : 6 + keys], last[0])
            if plan.after is not None:
                prev_before = (*first[6 : 6 + keys], first[0])
    if total is None and plan.after is None and plan.before is None and not more:
        total = len(matches)
    includes: list[StoredResource] = []
    if plan.includes:
        found = [(row[0], r) for row, r in zip(rows, matches, strict=True)]
        includes = _includes(conn, Compiler(tid, pid_of, dialect=dialect), plan, found)
    return SearchPage(matches, includes, total, next_after, prev_before)


def search_inline(
    conn: sqlite3.Connection,
    tid: int,
    pid_of: PidOf,
    plan: QueryPlan,
    budget_s: float = INLINE_BUDGET_S,
    cache: StatementCache | None = None,
    generation: int = 0,
) -> tuple[SearchPage | None, PreparedSearch | None]:
    """Try ``plan`` on the calling thread (SQLite): plan it with probes capped just above
    :data:`INLINE_CANDIDATES`, and run it when the plan is :attr:`~PreparedSearch.bounded`, all
    within ``budget_s`` seconds of wall time, or once that is spent, another ``budget_s`` of this
    thread's CPU time (and at most 20 times as much wall time).

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
    start = time.perf_counter()
    soft, hard = start + budget_s, start + budget_s * _WALL_FACTOR
    late: list[bool] = []
    cpu_limit: list[float] = []

    def progress() -> int:
        now = time.perf_counter()  # (CPU time never runs ahead of wall time: ask it only then)
        if now <= soft:
            return 0
        if not cpu_limit:
            # the thread's CPU clock is a system call: read only once the budget's wall time is
            # spent (up to budget_s of CPU spent before it), then allow budget_s more
            cpu_limit.append(time.thread_time() + budget_s)
        if now > hard or time.thread_time() > cpu_limit[0]:
            late.append(True)
            return 1
        return 0

    conn.set_progress_handler(progress, _PROGRESS_STEPS)
    try:
        compiler = Compiler(tid, pid_of)
        build = builder(compiler, plan, cache, generation)  # (the shape is looked up once)
        found = _probed(conn, tid, pid_of, build, plan) if plan.where is not None else None
        if found is not None:
            return found
        prepared = prepare_search(conn, compiler, plan, INLINE_CANDIDATES + 1, build=build)
        if not prepared.bounded:
            return None, prepared if prepared.settled else None
        if not plan.includes and prepared.count is None:
            # one statement is its own snapshot; so is a sorted scan's first phase when it fills
            # the page (the next phase is then not needed)
            first = prepared.page[0]
            rows = conn.execute(first.sql, first.params).fetchall()
            if len(rows) > plan.count or len(prepared.page) == 1:
                return _assemble(conn, tid, pid_of, SQLITE, plan, first.keys, rows, None), prepared
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


def _probed(
    conn: sqlite3.Connection, tid: int, pid_of: PidOf, build: Build, plan: QueryPlan
) -> tuple[SearchPage | None, PreparedSearch | None] | None:
    """The page in one statement, the probe of the condition probed first in a column
    (``query.probed_page``): when it has at most :data:`INLINE_CANDIDATES` rows, they are all the
    candidates and the rows are the page (a smaller driver would give the same page). When no
    row comes back, the probe alone (in the same snapshot) says whether that is because there are
    no matches (the page is empty) or because the candidates were cut at the cap. A single
    condition with more: neither page nor plan (as a probe capped there leaves the choice open).
    None when this does not apply, or when other conditions may drive better (then the plan is
    made as usual)."""
    cap = INLINE_CANDIDATES + 1
    found = probed_page(build, plan, cap)
    if found is None:
        return None
    statement, alone, index = found
    conn.execute("BEGIN")  # the page and, when it is empty, its probe (or its includes) in one snapshot
    rows = conn.execute(statement.sql, statement.params).fetchall()
    size = int(rows[0][-1]) if rows else probe_count(conn, build, index, cap)
    if size is None:
        size = cap
    if size >= cap:
        if conn.in_transaction:
            conn.execute("COMMIT")
        return (None, None) if rows and alone else None
    statement.candidates = size
    page = _assemble(conn, tid, pid_of, SQLITE, plan, statement.keys, rows, None)
    return page, PreparedSearch(None, [statement])


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
