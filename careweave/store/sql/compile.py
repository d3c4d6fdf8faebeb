"""QueryPlan -> SQL for SQLite. The one place search becomes SQL.

Rules:
1. Every statement produced here restricts every tenant table it touches with ``tid = ?``, added by
   :func:`_tenant` and nowhere else; values are always bound parameters, never spliced.
2. Positive predicates drive from the index tables (``r.rk IN (SELECT rk FROM ix_... WHERE ...)``) so
   SQLite can start from the most selective index.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from careweave.search.plan import And, IdIn, Not, Or, Predicate, QueryPlan, TokenMatch

__all__ = ["Compiled", "compile_ids"]


@dataclass(slots=True)
class Compiled:
    sql: str
    params: list[Any] = field(default_factory=list)


PidOf = Callable[[str], int | None]


def _tenant(alias: str, tid: int, params: list[Any]) -> str:
    params.append(tid)
    return f"{alias}.tid = ?"


def compile_ids(plan: QueryPlan, tid: int, pid_of: PidOf, limit: int) -> Compiled:
    """SELECT type, id of current, non-deleted resources matching the plan."""
    params: list[Any] = []
    clauses = [_tenant("r", tid, params), "r.deleted = 0"]
    clauses.append(f"r.type IN ({', '.join('?' for _ in plan.types)})")
    params.extend(plan.types)
    if plan.where is not None:
        clauses.append(_predicate(plan.where, tid, pid_of, params))
    params.append(limit)
    sql = f"SELECT r.type, r.id FROM resource r WHERE {' AND '.join(clauses)} LIMIT ?"
    return Compiled(sql, params)


def _predicate(pred: Predicate, tid: int, pid_of: PidOf, params: list[Any]) -> str:
    if isinstance(pred, And):
        return "(" + " AND ".join(_predicate(p, tid, pid_of, params) for p in pred.parts) + ")"
    if isinstance(pred, Or):
        return "(" + " OR ".join(_predicate(p, tid, pid_of, params) for p in pred.parts) + ")"
    if isinstance(pred, Not):
        return "NOT " + _predicate(pred.part, tid, pid_of, params)
    if isinstance(pred, IdIn):
        params.extend(pred.ids)
        return f"r.id IN ({', '.join('?' for _ in pred.ids)})"
    if isinstance(pred, TokenMatch):
        return _token(pred, tid, pid_of, params)
    raise TypeError(f"cannot compile {pred!r}")


def _token(pred: TokenMatch, tid: int, pid_of: PidOf, params: list[Any]) -> str:
    pid = pid_of(pred.param)
    if pid is None:
        return "0"  # no resource was ever indexed on this parameter
    parts = [_tenant("t", tid, params), "t.pid = ?"]
    params.append(pid)
    if pred.code is not None:
        parts.append("t.code = ?")
        params.append(pred.code)
    if pred.system == "":
        parts.append("t.system IS NULL")
    elif pred.system is not None:
        parts.append("t.system = ?")
        params.append(pred.system)
    return f"r.rk IN (SELECT t.rk FROM ix_token t WHERE {' AND '.join(parts)})"
