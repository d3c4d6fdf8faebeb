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
from careweave.store.sql.compile import Atom, Compiler
from careweave.store.sql.components import Sql

__all__ = ["PROBE_CAP", "PROBE_ENOUGH", "SearchStatement", "count_statement", "search_statement"]

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
    atoms: list[Atom | None] | None
    size: int  # its rows, counted up to the probe cap
    settled: bool  # False: a probe reached a cap below PROBE_CAP, so a full probe might differ


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


def _probe(conn: Sql, compiler: Compiler, atoms: list[Atom | None], cap: int) -> int:
    """How many rows ``atoms`` match, counted up to ``cap``. One atom's rows are counted as index
    rows (as the statement would read them, duplicates too) without reading each one's rk: a
    covering index answers alone. A union's rows are distinct rks."""
    params: list[Any] = []
    live = [a for a in atoms if a is not None]
    if len(live) == 1:
        rows = compiler.rk_set(live[0], params, rows_only=True)
    else:
        rows = _set_sql(compiler, atoms, params)
    params.append(cap)  # bound, not spliced: one statement text per shape (the statement cache)
    return int(conn.execute(f"SELECT count(*) FROM ({rows} LIMIT ?) AS p", params).fetchone()[0])


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
    compiler: Compiler,
    parts: list[Predicate],
    counting: bool = False,
    probe_cap: int = PROBE_CAP,
) -> _Driver:
    """The part that should drive, its atoms and its row count, by capped counts. Each probe
    counts at most as far as the best so far: a later condition only matters if it is smaller
    still; once the best is :data:`PROBE_ENOUGH` rows or fewer, the rest are not probed.

    For a page, a condition matching more than PROBE_CAP rows does not drive: walking the type's
    rows in order finds a page of matches sooner. A count must visit every match, so there the
    smallest index always drives (never more rows than a scan of the whole type).

    A lower ``probe_cap`` makes the same choice when some part has fewer rows than it, and
    otherwise says the choice is not settled (for a quick look: is there a small driver?)."""
    best: tuple[int, int, list[Atom | None]] | None = None
    order = sorted(range(len(parts)), key=lambda i: _likely_selective(parts[i]))
    for i in order:
        if best is not None and best[0] <= PROBE_ENOUGH:
            break
        atoms = _atoms(compiler, parts[i])
        if atoms is None:
            continue
        cap = probe_cap if best is None else best[0]
        size = _probe(conn, compiler, atoms, cap)
        if best is None or size < best[0]:
            best = (size, i, atoms)
    if best is None:
        return _Driver(None, None, 0, True)
    if best[0] >= probe_cap and (probe_cap < PROBE_CAP or not counting):
        return _Driver(None, None, 0, probe_cap >= PROBE_CAP)
    # the atoms' aliases are not in the statement yet: the probe's SQL was its own text
    return _Driver(best[1], best[2], best[0], True)


def _cheap_filter(part: Predicate) -> bool:
    """Whether checking ``part`` on one candidate costs a few index lookups by its row key (not a
    subquery whose size the planner does not know)."""
    if isinstance(part, (And, Or)):
        return all(_cheap_filter(p) for p in part.parts)
    if isinstance(part, Not):
        return _cheap_filter(part.part)
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


def _base_where(
    conn: Sql,
    compiler: Compiler,
    plan: QueryPlan,
    params: list[Any],
    counting: bool = False,
    probe_cap: int = PROBE_CAP,
) -> tuple[list[str], str, _Driver, int | None]:
    where = [compiler.tenant("r", params), "r.deleted = 0"]
    if plan.types:
        where.append(f"r.type IN ({', '.join('?' for _ in plan.types)})")
        params.extend(plan.types)
    parts = _parts(plan.where)
    chosen = _choose_driver(conn, compiler, parts, counting, probe_cap)
    driver = "scan"
    candidates: int | None = None
    if chosen.index is not None and chosen.atoms is not None:
        where.append(f"r.rk IN ({_set_sql(compiler, chosen.atoms, params)})")
        driver = "index:" + "+".join(a.table for a in chosen.atoms if a is not None)
        parts = parts[: chosen.index] + parts[chosen.index + 1 :]
        if chosen.size < PROBE_CAP and all(_cheap_filter(p) for p in parts):
            candidates = chosen.size
    where.extend(compiler.where(p, "r", plan.types, params) for p in parts)
    return where, driver, chosen, candidates


def search_statement(
    conn: Sql, compiler: Compiler, plan: QueryPlan, probe_cap: int = PROBE_CAP
) -> SearchStatement:
    """The page query: resource columns, then the sort keys, ``count + 1`` rows."""
    key_params: list[Any] = []
    keys = [_sort_expr(compiler, k, key_params) for k in plan.sort]
    where_params: list[Any] = []
    where, driver, chosen, candidates = _base_where(conn, compiler, plan, where_params, probe_cap=probe_cap)
    columns = ", ".join([f"{k} AS k{i}" for i, k in enumerate(keys)])
    inner = (
        "SELECT r.rk AS rk, r.type AS type, r.id AS id, r.version AS version, "
        f"r.updated_ms AS updated_ms, r.body AS body{', ' + columns if columns else ''} "
        f"FROM resource r WHERE {' AND '.join(where)}"
    )
    params = [*key_params, *where_params]
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
    sql = f"SELECT q.* FROM ({inner}) AS q{outer_where} ORDER BY {', '.join(order)} LIMIT ?"
    params.append(plan.count + 1)
    return SearchStatement(sql, params, len(keys), driver, candidates, chosen.settled)


def count_statement(conn: Sql, compiler: Compiler, plan: QueryPlan) -> tuple[str, list[Any]]:
    """The total's statement. One index-backed condition on one type is counted in its index
    alone (distinct row keys): its parameter belongs to that type, and a deleted resource has no
    index rows, so no resource row needs reading; otherwise the resources are filtered."""
    params: list[Any] = []
    parts = _parts(plan.where)
    if len(parts) == 1 and len(plan.types) == 1:
        sql = _index_count(compiler, plan.types[0], parts[0], params)
        if sql is not None:
            return sql, params
        params.clear()
    where, _, _, _ = _base_where(conn, compiler, plan, params, counting=True)
    return f"SELECT count(*) FROM resource r WHERE {' AND '.join(where)}", params


def _index_count(compiler: Compiler, type_: str, part: Predicate, params: list[Any]) -> str | None:
    param = getattr(part, "param", None)
    if not compiler.drivable(part) or not isinstance(param, str) or not param.startswith(type_ + "."):
        return None
    atom = compiler.atom(part)
    if atom is None:
        return None
    where = [compiler.tenant(atom.alias, params), *atom.conditions]
    params.extend(atom.params)
    return (
        f"SELECT count(DISTINCT {compiler.row_rk(atom.alias)}) FROM {atom.table} {atom.alias} "
        f"WHERE {' AND '.join(where)}"
    )


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
    key = plan.sort[0]
    found = _SCAN_INDEX.get((key.kind, key.descending))
    pid = compiler.pid_of(key.param)
    if found is None or pid is None:
        return None
    parts = _parts(plan.where)
    chosen = _choose_driver(conn, compiler, parts, probe_cap=probe_cap)
    if chosen.index is not None:
        return None  # a selective condition: sorting its few candidates is cheaper
    table, column, flag = found
    text = key.kind == "string"
    missing = ("" if text else _LOW_NUM) if key.descending else (_HIGH_TEXT if text else _HIGH_NUM)
    cursor = plan.after
    statements = []
    if cursor is None or cursor[0] != missing:
        statements.append(_phase_one(compiler, plan, parts, table, column, flag, pid, cursor))
    statements.append(
        _phase_two(
            compiler,
            plan,
            parts,
            table,
            flag,
            pid,
            missing,
            cursor[1] if cursor is not None and cursor[0] == missing else None,
        )
    )
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
    where.extend(compiler.where(p, "r", plan.types, params) for p in parts)
    return where


_COLUMNS = "r.rk, r.type, r.id, r.version, r.updated_ms, r.body"


def _phase_one(
    compiler: Compiler,
    plan: QueryPlan,
    parts: list[Predicate],
    table: str,
    column: str,
    flag: int,
    pid: int,
    cursor: tuple[Any, ...] | None,
) -> SearchStatement:
    params: list[Any] = []
    where = [compiler.tenant("k", params), "k.pid = ?", f"k.flags & {flag} = {flag}"]
    params.append(pid)
    where += _resource_filters(compiler, plan, parts, params)
    descending = plan.sort[0].descending
    if cursor is not None:
        op = "<" if descending else ">"
        where.append(f"(k.{column} {op} ? OR (k.{column} = ? AND r.rk > ?))")
        params.extend((cursor[0], cursor[0], cursor[1]))
    params.append(plan.count + 1)
    sql = (
        f"SELECT {_COLUMNS}, k.{column} AS k0 FROM {table} k {compiler.dialect.join_in_order} resource r "
        f"ON r.rk = {compiler.row_rk('k')} WHERE {' AND '.join(where)} "
        f"ORDER BY k.{column} {'DESC' if descending else 'ASC'}, r.rk LIMIT ?"
    )
    # with no filter the walk stops at the page; with one, it may walk far to fill it
    return SearchStatement(sql, params, 1, f"sorted:{table}", None if parts else plan.count + 1)


def _phase_two(
    compiler: Compiler,
    plan: QueryPlan,
    parts: list[Predicate],
    table: str,
    flag: int,
    pid: int,
    missing: Any,
    after_rk: int | None,
) -> SearchStatement:
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
    if after_rk is not None:
        where.append("r.rk > ?")
        params.append(after_rk)
    params.append(plan.count + 1)
    sql = f"SELECT {_COLUMNS}, ? AS k0 FROM resource r WHERE {' AND '.join(where)} ORDER BY r.rk LIMIT ?"
    return SearchStatement(sql, params, 1, "sorted:missing")
