"""Running a search (SQLite and PostgreSQL): the page, its cursors, the total, and _include / _revinclude.

Rules:
1. A page is read inside one read transaction (the caller's), so matches, total and includes are
   one consistent snapshot.
2. Includes follow references from the page's matches (``_include``) or find resources pointing at
   them (``_revinclude``); ``:iterate`` repeats over what was added, at most :data:`MAX_ROUNDS`
   rounds and :data:`MAX_INCLUDES` resources. A resource appears once, matches first.
"""

from __future__ import annotations

from typing import Any

from careweave.search.plan import QueryPlan
from careweave.store.base import SearchPage, StoredResource
from careweave.store.sql.compile import SQLITE, Compiler, Dialect, PidOf
from careweave.store.sql.components import Sql
from careweave.store.sql.query import count_statement, search_statement, sorted_scan

__all__ = ["MAX_INCLUDES", "MAX_ROUNDS", "run_search"]

MAX_ROUNDS = 4
MAX_INCLUDES = 1000

Found = tuple[int, StoredResource]  # rk, resource


def run_search(conn: Sql, tid: int, pid_of: PidOf, plan: QueryPlan, dialect: Dialect = SQLITE) -> SearchPage:
    compiler = Compiler(tid, pid_of, dialect=dialect)
    total: int | None = None
    if plan.total in ("accurate", "estimate") or plan.count == 0:
        sql, params = count_statement(conn, compiler, plan)
        total = int(conn.execute(sql, params).fetchone()[0])
    if plan.count == 0:
        return SearchPage([], [], total, None, None)
    scan = sorted_scan(conn, compiler, plan)
    if scan is not None:
        statement = scan[0]
        rows: list[Any] = []
        for part in scan:
            part.params[-1] = plan.count + 1 - len(rows)  # (the last parameter is the LIMIT)
            rows += conn.execute(part.sql, part.params).fetchall()
            if len(rows) > plan.count:
                break
    else:
        statement = search_statement(conn, compiler, plan)
        rows = conn.execute(statement.sql, statement.params).fetchall()
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
    includes = _includes(conn, tid, pid_of, plan, found) if plan.includes else []
    return SearchPage([r for _, r in found], includes, total, next_after, prev_before)


def _includes(
    conn: Sql, tid: int, pid_of: PidOf, plan: QueryPlan, matches: list[Found]
) -> list[StoredResource]:
    seen = {(r.type, r.id) for _, r in matches}
    added: list[StoredResource] = []
    frontier = matches
    for round_ in range(MAX_ROUNDS):
        new: list[Found] = []
        for include in plan.includes:
            if round_ > 0 and not include.iterate:
                continue
            pid = pid_of(include.param) if include.param else None
            if pid is None:
                continue
            if include.rev:
                candidates = _reverse(conn, tid, pid, include.target_type, frontier)
            else:
                candidates = _forward(conn, tid, pid, include.source_type, include.target_type, frontier)
            for rk, resource in candidates:
                if (resource.type, resource.id) not in seen and len(added) < MAX_INCLUDES:
                    seen.add((resource.type, resource.id))
                    added.append(resource)
                    new.append((rk, resource))
        if not new:
            break
        frontier = new
    return added


def _fetch(conn: Sql, where: str, params: list[Any]) -> list[Found]:
    rows = conn.execute(f"SELECT rk, type, id, version, updated_ms, body FROM resource WHERE {where}", params)
    return [(rk, StoredResource(t, i, v, u, False, b)) for rk, t, i, v, u, b in rows]


def _forward(
    conn: Sql,
    tid: int,
    pid: int,
    source: str,
    target: str | None,
    frontier: list[Found],
) -> list[Found]:
    rks = [rk for rk, r in frontier if r.type == source]
    if not rks:
        return []
    params: list[Any] = [tid, pid, *rks]
    sql = (
        f"SELECT DISTINCT target_type, target_id FROM ix_reference WHERE tid = ? AND pid = ? "
        f"AND rk IN ({', '.join('?' for _ in rks)}) AND target_id IS NOT NULL"
    )
    if target is not None:
        sql += " AND target_type = ?"
        params.append(target)
    refs = conn.execute(sql, params).fetchall()
    out: list[Found] = []
    for type_, ids in _group(refs).items():
        out.extend(
            _fetch(
                conn,
                f"tid = ? AND type = ? AND deleted = 0 AND id IN ({', '.join('?' for _ in ids)})",
                [tid, type_, *ids],
            )
        )
    return out


def _reverse(conn: Sql, tid: int, pid: int, target: str | None, frontier: list[Found]) -> list[Found]:
    by_type = _group([(r.type, r.id) for _, r in frontier if target is None or r.type == target])
    out: list[Found] = []
    for type_, ids in by_type.items():
        sql = (
            f"SELECT DISTINCT rk FROM ix_reference WHERE tid = ? AND pid = ? AND "
            f"target_type = ? AND target_id IN ({', '.join('?' for _ in ids)})"
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
