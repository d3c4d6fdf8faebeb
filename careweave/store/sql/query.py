"""Search statements (SQLite and PostgreSQL): planning (which index drives), sorting, keyset paging, includes.

Rules:
1. The planner probes each index-backed condition with a capped count and lets the most selective
   one drive the query (``r.rk IN (<its rows>)``); the others are checked per candidate
   (``EXISTS``). When every condition matches more rows than the cap, the query walks the resource
   table (or the sort index) in order and stops at the page size. A probe counts index entries
   only (a covering index answers it, without reading each row), its cap is a bound parameter
   (one statement text per shape, for the statement cache), and once a condition matches at most
   :data:`PROBE_ENOUGH` rows the rest are not probed.
2. Sort keys come from the rows flagged FIRST (ascending) or LAST (descending) of each parameter;
   resources without a value sort last in either direction. The row key ``rk`` breaks ties.
3. Paging is by keyset: a cursor holds the sort values and rk of the row it follows (or precedes,
   for the previous page); no offset, no server-side state.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import Any

from careweave.search.plan import (
    And,
    Chain,
    Has,
    ListMember,
    Not,
    Or,
    Predicate,
    QueryPlan,
    RefIn,
    RefMatch,
    SortKey,
    StringMatch,
    TextSearch,
    TokenMatch,
    TypeIn,
)
from careweave.store.sql.compile import Atom, Compiler, derive, index_only
from careweave.store.sql.components import Sql

__all__ = [
    "MARKERS",
    "PROBE_CAP",
    "PROBE_ENOUGH",
    "Build",
    "Built",
    "SearchStatement",
    "count_statement",
    "direct",
    "page_statements",
    "plan_count",
    "probe_count",
    "probed_page",
    "search_statement",
    "sorted_scan",
]

PROBE_CAP = 2000
# A driver this small is kept without probing the remaining conditions: a probe costs a statement
# and up to this many index rows, about what a smaller driver could save.
PROBE_ENOUGH = 32
_HIGH_TEXT = "\U0010ffff"
_HIGH_NUM = 9.0e18
_LOW_NUM = -9.0e18
_SORT_SOURCE = {
    # kind: (table, ascending column, descending column)
    "string": ("ix_string", "norm", "norm"),
    "token": ("ix_token", "code", "code"),
    "date": ("ix_date", "lo", "hi"),
    "number": ("ix_number", "lo", "hi"),
    "quantity": ("ix_quantity", "lo", "hi"),
    "reference": ("ix_reference", "target_id", "target_id"),
    "uri": ("ix_uri", "uri", "uri"),
}
_TEXT_KINDS = frozenset({"string", "token", "reference", "uri", "_id"})
# the sort values of a resource without one (a keyset cursor holding one is in the last phase)
MARKERS = frozenset({_HIGH_TEXT, _HIGH_NUM, _LOW_NUM, "", None})

# One statement built: its text, its bound parameters and what else the builder tells.
Built = tuple[str, list[Any], Any]
# Builds a statement: ``build(what, fn)`` runs ``fn(compiler, plan)`` on the search's plan, or
# gives the statement a cache compiled for the plan's shape, with this plan's values bound; ``what``
# names the statement within the shape (and every choice, other than the shape, it depends on).
Build = Callable[[Hashable, Callable[[Compiler, QueryPlan], Built | None]], Built | None]


@dataclass(slots=True)
class SearchStatement:
    sql: str
    params: list[Any]
    keys: int  # how many sort key columns follow the resource columns
    driver: str  # for EXPLAIN and tests: "index:<table>", "scan" or "none"
    # at most how many candidate rows the statement examines, each with cheap per-row checks,
    # when the planner knows (an index driver of known size, a sorted walk with no filter)
    candidates: int | None = None
    # False when probes capped below PROBE_CAP left the choice open (see ``probe_cap``)
    settled: bool = True


@dataclass(frozen=True, slots=True)
class _Driver:
    index: int | None  # which part drives; None: none does (scan)
    size: int  # its rows, counted up to the probe cap
    settled: bool  # False: a probe reached a cap below PROBE_CAP, so a full probe might differ


def direct(compiler: Compiler, plan: QueryPlan) -> Build:
    """A :data:`Build` that compiles each statement for ``plan`` itself (no cache)."""

    def build(what: Hashable, fn: Callable[[Compiler, QueryPlan], Built | None]) -> Built | None:
        return fn(compiler, plan)

    return build


def _parts(where: Predicate | None) -> list[Predicate]:
    if where is None:
        return []
    return list(where.parts) if isinstance(where, And) else [where]


def _atoms(compiler: Compiler, part: Predicate) -> list[Atom | None] | None:
    """The index-backed atoms whose rows, together, cover ``part``; None if it cannot drive.

    An Or drives as the union of its alternatives when each one can (a TypeIn beside an atom is
    left to the resource filter that is applied anyway)."""
    if compiler.drivable(part):
        return [compiler.atom(part)]
    if isinstance(part, Or):
        out: list[Atom | None] = []
        for alternative in part.parts:
            inner = alternative
            if isinstance(inner, And):
                rest = [p for p in inner.parts if not isinstance(p, TypeIn)]
                if len(rest) != 1:
                    return None
                inner = rest[0]
            if not compiler.drivable(inner):
                return None
            out.append(compiler.atom(inner))
        return out
    return None


def _set_sql(compiler: Compiler, atoms: list[Atom | None], params: list[Any]) -> str:
    live = [a for a in atoms if a is not None]
    if not live:
        return "SELECT CAST(NULL AS BIGINT) WHERE FALSE"
    return " UNION ".join(compiler.rk_set(a, params) for a in live)


def _probe_sql(compiler: Compiler, plan: QueryPlan, index: int) -> Built | None:
    """Counting part ``index``'s rows up to a cap (bound last, after these parameters); None if
    the part cannot drive. One atom's rows are counted as index rows (as the statement would read
    them, duplicates too) without reading each one's rk: a covering index answers alone. A union's
    rows are distinct rks."""
    atoms = _atoms(compiler, _parts(plan.where)[index])
    if atoms is None:
        return None
    params: list[Any] = []
    live = [a for a in atoms if a is not None]
    if len(live) == 1:
        rows = compiler.rk_set(live[0], params, rows_only=True)
    else:
        rows = _set_sql(compiler, atoms, params)
    return f"SELECT count(*) FROM ({rows} LIMIT ?) AS p", params, None


def _likely_selective(part: Predicate) -> int:
    """Probe order: conditions that usually match few rows first, so later probes stop early."""
    if isinstance(part, (RefMatch, RefIn)) and getattr(part, "id", None) != "":
        return 0
    if isinstance(part, TokenMatch) and part.code is not None and part.system:
        return 1
    if isinstance(part, (TokenMatch, StringMatch)):
        return 2
    return 3


def _choose_driver(
    conn: Sql,
    build: Build,
    plan: QueryPlan,
    counting: bool = False,
    probe_cap: int = PROBE_CAP,
) -> _Driver:
    """The part that should drive and its row count, by capped counts. Each probe counts at most
    as far as the best so far: a later condition only matters if it is smaller still; once the
    best is :data:`PROBE_ENOUGH` rows or fewer, the rest are not probed.

    For a page, a condition matching more than PROBE_CAP rows does not drive: walking the type's
    rows in order finds a page of matches sooner. A count must visit every match, so there the
    smallest index always drives (never more rows than a scan of the whole type).

    A lower ``probe_cap`` makes the same choice when some part has fewer rows than it, and
    otherwise says the choice is not settled (for a quick look: is there a small driver?)."""
    parts = _parts(plan.where)
    best: tuple[int, int] | None = None
    order = sorted(range(len(parts)), key=lambda i: _likely_selective(parts[i])) if len(parts) > 1 else [0]
    for i in order[: len(parts)]:
        if best is not None and best[0] <= PROBE_ENOUGH:
            break
        size = probe_count(conn, build, i, probe_cap if best is None else best[0])
        if size is None:
            continue
        if best is None or size < best[0]:
            best = (size, i)
    if best is None:
        return _Driver(None, 0, True)
    if best[0] >= probe_cap and (probe_cap < PROBE_CAP or not counting):
        return _Driver(None, 0, probe_cap >= PROBE_CAP)
    return _Driver(best[1], best[0], True)


def probe_count(conn: Sql, build: Build, index: int, cap: int) -> int | None:
    """How many rows condition ``index`` of the plan has, counted up to ``cap`` (bound, so one
    text per shape); None when it cannot drive."""
    probe = build(("probe", index), lambda c, p: _probe_sql(c, p, index))
    if probe is None:
        return None
    sql, params, _ = probe
    params.append(cap)
    return int(conn.execute(sql, params).fetchone()[0])


def _cheap_filter(part: Predicate, referrers: bool = False) -> bool:
    """Whether checking ``part`` on one candidate costs a few index lookups by its row key (not a
    subquery whose size the planner does not know). ``referrers``: a ``_has`` decided by index
    rows alone counts too (a lookup per referrer of the candidate, stopping at the first match)."""
    if isinstance(part, (And, Or)):
        return all(_cheap_filter(p, referrers) for p in part.parts)
    if isinstance(part, Not):
        return _cheap_filter(part.part, referrers)
    if referrers and isinstance(part, Has):
        return part.where is None or index_only(part.where)
    return not isinstance(part, (Chain, Has, TextSearch, ListMember))


def _sort_expr(compiler: Compiler, key: SortKey, params: list[Any]) -> str:
    if key.kind == "_id":
        return "r.id"
    if key.kind == "_lastUpdated":
        return "r.updated_ms"
    table, asc_col, desc_col = _SORT_SOURCE[key.kind]
    pid = compiler.pid_of(key.param)
    text = key.kind in _TEXT_KINDS
    missing = (_HIGH_TEXT if text else _HIGH_NUM) if not key.descending else ("" if text else _LOW_NUM)
    if pid is None:
        params.append(missing)
        return "?"
    a = compiler.alias("k")
    flag = 2 if key.descending else 1
    column = desc_col if key.descending else asc_col
    inner = [
        compiler.row_of(a, "r.rk"),
        compiler.tenant(a, params),
        f"{a}.pid = ?",
        f"{a}.flags & {flag} = {flag}",
    ]
    params.append(pid)
    params.append(missing)
    rows = compiler.by_key(table, a)
    return f"coalesce((SELECT {a}.{column} FROM {rows} WHERE {' AND '.join(inner)} LIMIT 1), ?)"


def _keyset(sort: tuple[SortKey, ...], cursor: tuple[Any, ...], backwards: bool, params: list[Any]) -> str:
    """Rows strictly after (or before) ``cursor`` in the sort order (k1.., rk)."""
    columns = [f"q.k{i}" for i in range(len(sort))] + ["q.rk"]
    descending = [k.descending for k in sort] + [False]
    alternatives = []
    for i in range(len(columns)):
        conds = []
        for j in range(i):
            conds.append(f"{columns[j]} = ?")
            params.append(cursor[j])
        forward = not descending[i]
        if backwards:
            forward = not forward
        conds.append(f"{columns[i]} {'>' if forward else '<'} ?")
        params.append(cursor[i])
        alternatives.append("(" + " AND ".join(conds) + ")")
    return "(" + " OR ".join(alternatives) + ")"


# how costly the other parts are to check on each candidate of a driver
_CHEAP, _REFERRERS, _COSTLY = "cheap", "referrers", "costly"


def _base_where(
    compiler: Compiler,
    plan: QueryPlan,
    index: int | None,
    params: list[Any],
    cap: int | None = None,
    driven_by: str | None = None,
) -> tuple[list[str], str, str]:
    """The resource conditions with part ``index`` driving (None: none; ``cap``: at most that
    many of its rows; ``driven_by``: its rows are in that table already, column ``rk``), the
    driver's name, and how costly the other parts are to check per candidate (:data:`_CHEAP` ...)."""
    where = [compiler.tenant("r", params), "r.deleted = 0"]
    if plan.types:
        where.append(f"r.type IN ({', '.join('?' for _ in plan.types)})")
        params.extend(plan.types)
    parts = _parts(plan.where)
    driver = "scan"
    if index is not None:
        atoms = _atoms(compiler, parts[index]) or []
        if driven_by is not None:
            where.append(f"r.rk IN (SELECT rk FROM {driven_by})")
        elif cap is None:
            where.append(f"r.rk IN ({_set_sql(compiler, atoms, params)})")
        else:
            where.append(f"r.rk IN ({_set_sql(compiler, atoms, params)} LIMIT ?)")
            params.append(cap)
        driver = "index:" + "+".join(a.table for a in atoms if a is not None)
        parts = parts[:index] + parts[index + 1 :]
    where.extend(compiler.where_all(parts, "r", plan.types, params))
    if all(_cheap_filter(p) for p in parts):
        return where, driver, _CHEAP
    return where, driver, _REFERRERS if all(_cheap_filter(p, True) for p in parts) else _COSTLY


def _page_sql(compiler: Compiler, plan: QueryPlan, index: int | None, cap: int | None = None) -> Built:
    """The page query: resource columns, then the sort keys, ``count + 1`` rows. With a ``cap``,
    the driver's rows are counted up to it in a last column (its probe) and the driver reads at
    most that many: the rows are the page when the count is below the cap."""
    head = ""
    head_params: list[Any] = []
    key_params: list[Any] = []
    keys = [_sort_expr(compiler, k, key_params) for k in plan.sort]
    columns = ", ".join([f"{k} AS k{i}" for i, k in enumerate(keys)])
    driven_by = None
    if cap is not None and index is not None:
        part = _parts(plan.where)[index]
        atoms = _atoms(compiler, part)
        if atoms is None:
            raise ValueError("the part cannot drive")
        if _likely_selective(part) >= 2:
            # a driver that may have hundreds of rows is read once, into c, which is both counted
            # and the candidates (its count is what the probe would count); a few rows are
            # cheaper to read twice than to store
            head = f"WITH c (rk) AS MATERIALIZED ({_set_sql(compiler, atoms, head_params)} LIMIT ?) "
            head_params.append(cap)
            columns += f"{', ' if columns else ''}(SELECT count(*) FROM c) AS n"
            driven_by = "c"
        else:
            probe = _probe_sql(compiler, plan, index)
            assert probe is not None
            columns += f"{', ' if columns else ''}({probe[0]}) AS n"
            key_params += [*probe[1], cap]
    where_params: list[Any] = []
    where, driver, cheap = _base_where(compiler, plan, index, where_params, cap, driven_by)
    inner = (
        "SELECT r.rk AS rk, r.type AS type, r.id AS id, r.version AS version, "
        f"r.updated_ms AS updated_ms, r.body AS body{', ' + columns if columns else ''} "
        f"FROM resource r WHERE {' AND '.join(where)}"
    )
    params = [*head_params, *key_params, *where_params]
    outer_where = ""
    backwards = plan.before is not None
    cursor = plan.before if backwards else plan.after
    if cursor is not None:
        outer_where = " WHERE " + _keyset(plan.sort, tuple(cursor), backwards, params)
    order = []
    for i, k in enumerate(plan.sort):
        descending = k.descending != backwards
        order.append(f"q.k{i} {'DESC' if descending else 'ASC'}")
    order.append(f"q.rk {'DESC' if backwards else 'ASC'}")
    sql = f"{head}SELECT q.* FROM ({inner}) AS q{outer_where} ORDER BY {', '.join(order)} LIMIT ?"
    params.append(derive(_plus_one, plan.count))
    return sql, params, (len(keys), driver, cheap)


def _plus_one(count: int) -> int:
    return count + 1


def _page(conn: Sql, build: Build, plan: QueryPlan, chosen: _Driver) -> SearchStatement:
    built = build(("page", chosen.index), lambda c, p: _page_sql(c, p, chosen.index))
    assert built is not None
    sql, params, (keys, driver, checks) = built
    # a few candidates' referrers are checked about as cheaply as many candidates' own rows
    known = checks == _CHEAP or (checks == _REFERRERS and chosen.size <= PROBE_ENOUGH)
    candidates = chosen.size if chosen.index is not None and chosen.size < PROBE_CAP and known else None
    return SearchStatement(sql, params, keys, driver, candidates, chosen.settled)


def probed_page(build: Build, plan: QueryPlan, cap: int) -> tuple[SearchStatement, bool, int] | None:
    """The page query driven by the condition probed first (see :func:`_choose_driver`), with
    its probe in a last column (see :func:`_page_sql`), when the other conditions are cheap checks
    per candidate; whether it is the only condition, and which it is. The rows are the page when
    that count (in any row) is below ``cap``. None when this does not apply. (All of it depends on
    the plan's shape alone, so a statement cache decides it once per shape.)"""
    built = build(("probed page", cap), lambda c, p: _probed_page_sql(c, p, cap))
    if built is None:
        return None
    sql, params, (keys, driver, _, index, alone) = built
    return SearchStatement(sql, params, keys, driver, None, True), alone, index


def _probed_page_sql(compiler: Compiler, plan: QueryPlan, cap: int) -> Built | None:
    parts = _parts(plan.where)
    if not parts:
        return None
    index = min(range(len(parts)), key=lambda i: _likely_selective(parts[i]))
    if not all(_cheap_filter(p) for i, p in enumerate(parts) if i != index):
        return None
    if _atoms(compiler, parts[index]) is None:
        return None  # it cannot drive
    sql, params, info = _page_sql(compiler, plan, index, cap)
    return sql, params, (*info, index, len(parts) == 1)


def search_statement(
    conn: Sql, compiler: Compiler, plan: QueryPlan, probe_cap: int = PROBE_CAP
) -> SearchStatement:
    """The page query: resource columns, then the sort keys, ``count + 1`` rows."""
    build = direct(compiler, plan)
    return _page(conn, build, plan, _choose_driver(conn, build, plan, probe_cap=probe_cap))


def page_statements(
    conn: Sql, build: Build, plan: QueryPlan, probe_cap: int = PROBE_CAP
) -> list[SearchStatement]:
    """The statements of a page: a sorted scan's phases (see :func:`sorted_scan`), or the page query."""
    chosen = _choose_driver(conn, build, plan, probe_cap=probe_cap)
    scan = _sorted_scan(build, plan, chosen)
    return scan if scan is not None else [_page(conn, build, plan, chosen)]


def count_statement(conn: Sql, compiler: Compiler, plan: QueryPlan) -> tuple[str, list[Any]]:
    """The total's statement (see :func:`plan_count`)."""
    return plan_count(conn, direct(compiler, plan), plan)


def plan_count(conn: Sql, build: Build, plan: QueryPlan) -> tuple[str, list[Any]]:
    """The total's statement. One index-backed condition on one type is counted in its index
    alone (distinct row keys): its parameter belongs to that type, and a deleted resource has no
    index rows, so no resource row needs reading; otherwise the resources are filtered."""
    if len(_parts(plan.where)) == 1 and len(plan.types) == 1:
        built = build(("index count",), _index_count)
        if built is not None:
            return built[0], built[1]
    chosen = _choose_driver(conn, build, plan, counting=True)
    built = build(("count", chosen.index), lambda c, p: _count_sql(c, p, chosen.index))
    assert built is not None
    return built[0], built[1]


def _count_sql(compiler: Compiler, plan: QueryPlan, index: int | None) -> Built:
    params: list[Any] = []
    where, _, _ = _base_where(compiler, plan, index, params)
    return f"SELECT count(*) FROM resource r WHERE {' AND '.join(where)}", params, None


def _index_count(compiler: Compiler, plan: QueryPlan) -> Built | None:
    part = _parts(plan.where)[0]
    type_ = plan.types[0]
    param = getattr(part, "param", None)
    if not compiler.drivable(part) or not isinstance(param, str):
        return None
    if not param.startswith(type_ + "."):
        return None
    atom = compiler.atom(part)
    if atom is None:
        return None
    params: list[Any] = []
    where = [compiler.tenant(atom.alias, params), *atom.conditions]
    params.extend(atom.params)
    sql = (
        f"SELECT count(DISTINCT {compiler.row_rk(atom.alias)}) FROM {atom.table} {atom.alias} "
        f"WHERE {' AND '.join(where)}"
    )
    return sql, params, None


# -- sorted scan ---------------------------------------------------------------------------------
_SCAN_INDEX = {  # (kind, descending) -> (table, column, flag) of a partial sort index
    ("date", False): ("ix_date", "lo", 1),
    ("date", True): ("ix_date", "hi", 2),
    ("string", False): ("ix_string", "norm", 1),
    ("string", True): ("ix_string", "norm", 2),
}


def sorted_scan(
    conn: Sql, compiler: Compiler, plan: QueryPlan, probe_cap: int = PROBE_CAP
) -> list[SearchStatement] | None:
    """For a search sorted by one date or string parameter with no selective condition: walk
    that parameter's sort index in order and stop at the page size (phase 1), then take the
    resources with no value, which sort last, in row order (phase 2). None when this does not
    apply (the generic statement then sorts the candidates)."""
    if len(plan.sort) != 1 or plan.before is not None:
        return None
    build = direct(compiler, plan)
    return _sorted_scan(build, plan, _choose_driver(conn, build, plan, probe_cap=probe_cap))


def _sorted_scan(build: Build, plan: QueryPlan, chosen: _Driver) -> list[SearchStatement] | None:
    if len(plan.sort) != 1 or plan.before is not None or chosen.index is not None:
        return None  # (a selective condition: sorting its few candidates is cheaper)
    key = plan.sort[0]
    found = _SCAN_INDEX.get((key.kind, key.descending))
    if found is None:
        return None
    table, column, flag = found
    text = key.kind == "string"
    missing = ("" if text else _LOW_NUM) if key.descending else (_HIGH_TEXT if text else _HIGH_NUM)
    cursor = plan.after
    in_phase_two = cursor is not None and cursor[0] == missing
    statements = []
    if not in_phase_two:
        one = build(("scan 1", table), lambda c, p: _phase_one(c, p, table, column, flag))
        if one is None:
            return None  # the sort parameter was never indexed
        # with no filter the walk stops at the page; with one, it may walk far to fill it
        walk = plan.count + 1 if one[2] else None
        statements.append(SearchStatement(one[0], one[1], 1, f"sorted:{table}", walk))
    two = build(
        ("scan 2", table, in_phase_two), lambda c, p: _phase_two(c, p, table, flag, missing, in_phase_two)
    )
    if two is None:
        return None
    statements.append(SearchStatement(two[0], two[1], 1, "sorted:missing"))
    if not chosen.settled:
        for statement in statements:
            statement.settled = False
    return statements


def _resource_filters(
    compiler: Compiler, plan: QueryPlan, parts: list[Predicate], params: list[Any]
) -> list[str]:
    where = [compiler.tenant("r", params), "r.deleted = 0"]
    if plan.types:
        where.append(f"r.type IN ({', '.join('?' for _ in plan.types)})")
        params.extend(plan.types)
    where.extend(compiler.where_all(parts, "r", plan.types, params))
    return where


_COLUMNS = "r.rk, r.type, r.id, r.version, r.updated_ms, r.body"


def _phase_one(compiler: Compiler, plan: QueryPlan, table: str, column: str, flag: int) -> Built | None:
    pid = compiler.pid_of(plan.sort[0].param)
    if pid is None:
        return None
    parts = _parts(plan.where)
    cursor = plan.after
    params: list[Any] = []
    where = [compiler.tenant("k", params), "k.pid = ?", f"k.flags & {flag} = {flag}"]
    params.append(pid)
    where += _resource_filters(compiler, plan, parts, params)
    descending = plan.sort[0].descending
    if cursor is not None:
        op = "<" if descending else ">"
        where.append(f"(k.{column} {op} ? OR (k.{column} = ? AND r.rk > ?))")
        params.extend((cursor[0], cursor[0], cursor[1]))
    params.append(derive(_plus_one, plan.count))
    order = "DESC" if descending else "ASC"
    # the walk sorts row keys and sort values only; the page's rows are read after (a sort that
    # carried their bodies cost about a fifth of the statement)
    join = compiler.dialect.join_in_order
    walk = (
        f"SELECT r.rk AS rk, k.{column} AS k0 FROM {table} k {join} resource r "
        f"ON r.rk = {compiler.row_rk('k')} WHERE {' AND '.join(where)} "
        f"ORDER BY k.{column} {order}, r.rk LIMIT ?"
    )
    sql = (
        f"SELECT {_COLUMNS}, w.k0 FROM ({walk}) AS w {join} resource r ON r.rk = w.rk "
        f"ORDER BY w.k0 {order}, w.rk"
    )
    return sql, params, not parts


def _phase_two(
    compiler: Compiler, plan: QueryPlan, table: str, flag: int, missing: Any, after: bool
) -> Built | None:
    pid = compiler.pid_of(plan.sort[0].param)
    if pid is None:
        return None
    parts = _parts(plan.where)
    params: list[Any] = [missing]
    where = _resource_filters(compiler, plan, parts, params)
    inner = [
        compiler.row_of("k", "r.rk"),
        compiler.tenant("k", params),
        "k.pid = ?",
        f"k.flags & {flag} = {flag}",
    ]
    params.append(pid)
    where.append(f"NOT EXISTS (SELECT 1 FROM {compiler.by_key(table, 'k')} WHERE {' AND '.join(inner)})")
    if after and plan.after is not None:
        where.append("r.rk > ?")
        params.append(plan.after[1])
    params.append(derive(_plus_one, plan.count))
    sql = f"SELECT {_COLUMNS}, ? AS k0 FROM resource r WHERE {' AND '.join(where)} ORDER BY r.rk LIMIT ?"
    return sql, params, None
