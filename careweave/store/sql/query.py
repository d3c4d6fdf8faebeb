"""Search statements (SQLite and PostgreSQL): planning (which index drives), sorting, keyset paging, includes.

Rules:
1. The planner probes each index-backed condition with a capped count and lets the most selective
   one drive the query (``r.rk IN (<its rows>)``); the others are checked per candidate
   (``EXISTS``). When every condition matches more rows than the cap, the query walks the resource
   table (or the sort index) in order and stops at the page size.
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
    Or,
    Predicate,
    QueryPlan,
    RefIn,
    RefMatch,
    SortKey,
    StringMatch,
    TokenMatch,
    TypeIn,
)
from careweave.store.sql.compile import Atom, Compiler
from careweave.store.sql.components import Sql

__all__ = ["PROBE_CAP", "SearchStatement", "count_statement", "search_statement"]

PROBE_CAP = 2000
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
    params: list[Any] = []
    sql = f"SELECT count(*) FROM ({_set_sql(compiler, atoms, params)} LIMIT {cap}) AS p"
    return int(conn.execute(sql, params).fetchone()[0])


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
    conn: Sql, compiler: Compiler, parts: list[Predicate], counting: bool = False
) -> tuple[int | None, list[Atom | None] | None]:
    """The index of the part that should drive, by capped counts. Each probe counts at most as
    far as the best so far: a later condition only matters if it is smaller still.

    For a page, a condition matching more than PROBE_CAP rows does not drive: walking the type's
    rows in order finds a page of matches sooner. A count must visit every match, so there the
    smallest index always drives (never more rows than a scan of the whole type)."""
    best: tuple[int, int] | None = None
    order = sorted(range(len(parts)), key=lambda i: _likely_selective(parts[i]))
    for i in order:
        atoms = _atoms(compiler, parts[i])
        if atoms is None:
            continue
        cap = PROBE_CAP if best is None else best[0]
        if cap == 0:
            break
        size = _probe(conn, compiler, atoms, cap)
        if best is None or size < best[0]:
            best = (size, i)
    if best is None or (best[0] >= PROBE_CAP and not counting):
        return None, None
    return best[1], _atoms(compiler, parts[best[1]])  # fresh aliases for the real statement


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
    inner = [f"{a}.rk = r.rk", compiler.tenant(a, params), f"{a}.pid = ?", f"{a}.flags & {flag} = {flag}"]
    params.append(pid)
    params.append(missing)
    return f"coalesce((SELECT {a}.{column} FROM {table} {a} WHERE {' AND '.join(inner)} LIMIT 1), ?)"


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
    conn: Sql, compiler: Compiler, plan: QueryPlan, params: list[Any], counting: bool = False
) -> tuple[list[str], str]:
    where = [compiler.tenant("r", params), "r.deleted = 0"]
    if plan.types:
        where.append(f"r.type IN ({', '.join('?' for _ in plan.types)})")
        params.extend(plan.types)
    parts = _parts(plan.where)
    index, atoms = _choose_driver(conn, compiler, parts, counting)
    driver = "scan"
    if index is not None and atoms is not None:
        where.append(f"r.rk IN ({_set_sql(compiler, atoms, params)})")
        driver = "index:" + "+".join(a.table for a in atoms if a is not None)
        parts = parts[:index] + parts[index + 1 :]
    where.extend(compiler.where(p, "r", plan.types, params) for p in parts)
    return where, driver


def search_statement(conn: Sql, compiler: Compiler, plan: QueryPlan) -> SearchStatement:
    """The page query: resource columns, then the sort keys, ``count + 1`` rows."""
    key_params: list[Any] = []
    keys = [_sort_expr(compiler, k, key_params) for k in plan.sort]
    where_params: list[Any] = []
    where, driver = _base_where(conn, compiler, plan, where_params)
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
    return SearchStatement(sql, params, len(keys), driver)


def count_statement(conn: Sql, compiler: Compiler, plan: QueryPlan) -> tuple[str, list[Any]]:
    params: list[Any] = []
    where, _ = _base_where(conn, compiler, plan, params, counting=True)
    return f"SELECT count(*) FROM resource r WHERE {' AND '.join(where)}", params


# -- sorted scan ---------------------------------------------------------------------------------
_SCAN_INDEX = {  # (kind, descending) -> (table, column, flag) of a partial sort index
    ("date", False): ("ix_date", "lo", 1),
    ("date", True): ("ix_date", "hi", 2),
    ("string", False): ("ix_string", "norm", 1),
    ("string", True): ("ix_string", "norm", 2),
}


def sorted_scan(conn: Sql, compiler: Compiler, plan: QueryPlan) -> list[SearchStatement] | None:
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
    index, _ = _choose_driver(conn, compiler, parts)
    if index is not None:
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
        f"ON r.rk = k.rk WHERE {' AND '.join(where)} "
        f"ORDER BY k.{column} {'DESC' if descending else 'ASC'}, r.rk LIMIT ?"
    )
    return SearchStatement(sql, params, 1, f"sorted:{table}")


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
    inner = ["k.rk = r.rk", compiler.tenant("k", params), "k.pid = ?", f"k.flags & {flag} = {flag}"]
    params.append(pid)
    where.append(f"NOT EXISTS (SELECT 1 FROM {table} k WHERE {' AND '.join(inner)})")
    if after_rk is not None:
        where.append("r.rk > ?")
        params.append(after_rk)
    params.append(plan.count + 1)
    sql = f"SELECT {_COLUMNS}, ? AS k0 FROM resource r WHERE {' AND '.join(where)} ORDER BY r.rk LIMIT ?"
    return SearchStatement(sql, params, 1, "sorted:missing")
