"""Search predicates -> SQL fragments for SQLite and PostgreSQL. The one place a predicate becomes SQL.

Rules:
1. Every table a fragment reads is restricted by ``<alias>.tid = ?``, added by :meth:`Compiler.tenant`
   and nowhere else; values are always bound parameters, never spliced into the text. Identifiers
   (table and column names) come from this module's own constants.
2. An index-backed predicate is an :class:`Atom`: a table, an alias and conditions. It compiles to a
   set (``SELECT a.rk FROM ix_x a WHERE ...``, to drive a query from the index) or to a filter
   (``EXISTS (... WHERE a.rk = r.rk AND ...)``, to check one candidate). How an index row names its
   resource is the dialect's: a column ``rk`` on PostgreSQL; on SQLite the high bits of the row's key
   (``a.ik >> 24``), one resource's rows being a key range (``schema.py`` rule 3).
3. Range semantics (search.html 3.1.1.4): dates compare half-open ranges; numbers and quantities are
   points compared with the value, ``eq`` meaning "within the value's precision".
4. The text is portable SQL with ``?`` placeholders; the few spellings the two databases disagree on
   (substring test, scalar minimum, full text) come from the :class:`Dialect`. Booleans are
   written TRUE and FALSE, which both accept.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass, field, fields
from types import MappingProxyType
from typing import Any

from careweave.search.extract import MAX_INDEX_STRING
from careweave.search.plan import (
    And,
    Chain,
    CompositeMatch,
    DateMatch,
    Has,
    IdIn,
    LastUpdated,
    ListMember,
    Missing,
    Near,
    Not,
    NumberMatch,
    Or,
    Predicate,
    QuantityMatch,
    QueryPlan,
    RefIn,
    RefMatch,
    StringMatch,
    TextSearch,
    TokenIn,
    TokenMatch,
    TokenText,
    TypeIn,
    UriMatch,
)
from careweave.store.sql.schema import ROW_BITS

__all__ = [
    "POSTGRES",
    "SQLITE",
    "TABLE_OF_KIND",
    "Atom",
    "Compiler",
    "Derived",
    "Dialect",
    "PidOf",
    "Slot",
    "derive",
    "index_only",
    "plan_shape",
    "slotted_plan",
]

PidOf = Callable[[str], int | None]

TABLE_OF_KIND = {
    "token": "ix_token",
    "string": "ix_string",
    "reference": "ix_reference",
    "date": "ix_date",
    "number": "ix_number",
    "quantity": "ix_quantity",
    "uri": "ix_uri",
    "composite": "ix_composite",
    "special": "ix_geo",
}
_DAY_MS = 86_400_000
# conditions whose index form reads one table under one alias, with no subquery (where_all)
_ROW_LOCAL = (
    TokenMatch,
    TokenIn,
    StringMatch,
    RefMatch,
    RefIn,
    DateMatch,
    NumberMatch,
    QuantityMatch,
    UriMatch,
)
# conditions whose index rows can drive a search (their row keys are its candidates)
_DRIVABLE = (*_ROW_LOCAL, TokenText, CompositeMatch, Near, Chain)


@dataclass(frozen=True, slots=True)
class Dialect:
    """What differs between the two databases' SQL, as format strings over column and value."""

    name: str
    contains: str  # "{hay}" contains "{needle}"
    least: str  # scalar minimum of two values
    text_match: str  # full-text condition of alias {a}, column {column}, query {needle}
    text_key: str  # the column of the full-text table that holds the resource row key
    join_in_order: str  # a join keeping the written table order
    row_rk: str  # the resource row key of index row {a}
    row_of: str  # index row {a} belongs to the resource whose row key is {rk} (a column)
    any_row: str  # aggregate: the condition {c} holds on some row (NULL or false on none)
    # after an index table's alias, where the statement reads one resource's rows: by their key,
    # never by a value index (SQLite would otherwise often walk every row with the value instead)
    by_key: str


_ROW_LOW = (1 << ROW_BITS) - 1
SQLITE = Dialect(
    "sqlite",
    "instr({hay}, {needle}) > 0",
    "min({x}, {y})",
    "{a}.{column} MATCH {needle}",
    "rowid",
    "CROSS JOIN",
    f"({{a}}.ik >> {ROW_BITS})",
    # a key range, which SQLite searches on the table's own B-tree (INTEGER PRIMARY KEY)
    f"{{a}}.ik BETWEEN ({{rk}} << {ROW_BITS}) AND (({{rk}} << {ROW_BITS}) | {_ROW_LOW})",
    "max({c})",
    " NOT INDEXED",  # (the table's own key, INTEGER PRIMARY KEY, is still used)
)
POSTGRES = Dialect(
    "postgresql",
    "strpos({hay}, {needle}) > 0",
    "least({x}, {y})",
    "{a}.{column} @@ plainto_tsquery('simple', {needle})",
    "rk",
    "JOIN",
    "{a}.rk",
    "{a}.rk = {rk}",
    "bool_or({c})",
    "",
)


@dataclass(slots=True)
class Atom:
    table: str
    alias: str
    conditions: list[str]
    params: list[Any] = field(default_factory=list)


class Compiler:
    """Builds SQL fragments for one statement; collects its bound parameters in order."""

    def __init__(self, tid: int, pid_of: PidOf, now_ms: Any = None, dialect: Dialect = SQLITE) -> None:
        self.tid = tid
        self.pid_of = pid_of
        self.dialect = dialect
        self.now_ms = now_ms if now_ms is not None else int(time.time() * 1000)
        self._n = 0

    def alias(self, prefix: str) -> str:
        self._n += 1
        return f"{prefix}{self._n}"

    def tenant(self, alias: str, params: list[Any]) -> str:
        params.append(self.tid)
        return f"{alias}.tid = ?"

    def row_rk(self, alias: str) -> str:
        """The resource row key of the index row ``alias``."""
        return self.dialect.row_rk.format(a=alias)

    def row_of(self, alias: str, rk: str) -> str:
        """The index row ``alias`` belongs to the resource whose row key is the column ``rk``."""
        return self.dialect.row_of.format(a=alias, rk=rk)

    def by_key(self, table: str, alias: str) -> str:
        """``table alias``, read by :meth:`row_of` alone: one resource's rows."""
        return f"{table} {alias}{self.dialect.by_key}"

    # -- sets and filters -------------------------------------------------------------------
    def rk_set(self, atom: Atom, params: list[Any], rows_only: bool = False) -> str:
        """The atom's row keys; ``rows_only``: one row per matching index row, with no column
        (for counting: the index alone can answer, without reading each row's rk)."""
        where = [self.tenant(atom.alias, params), *atom.conditions]
        params.extend(atom.params)
        what = "1" if rows_only else self.row_rk(atom.alias)
        return f"SELECT {what} FROM {atom.table} {atom.alias} WHERE {' AND '.join(where)}"

    def exists(self, atom: Atom, r: str, params: list[Any]) -> str:
        return self._exists_at(atom, f"{r}.rk", params)

    def _exists_at(self, atom: Atom, rk: str, params: list[Any]) -> str:
        """The atom has a row of the resource whose row key is the expression ``rk``."""
        where = [self.row_of(atom.alias, rk), self.tenant(atom.alias, params), *atom.conditions]
        params.extend(atom.params)
        return f"EXISTS (SELECT 1 FROM {self.by_key(atom.table, atom.alias)} WHERE {' AND '.join(where)})"

    def where_all(
        self, preds: Sequence[Predicate], r: str, types: tuple[str, ...], params: list[Any]
    ) -> list[str]:
        """:meth:`where` of each predicate (all must hold), except that the simple conditions on
        one index table are checked in one read of the resource's rows there: each condition must
        hold on some row, as ``EXISTS`` of each would say (``date=ge..&date=lt..`` on a value
        each). One read instead of one per condition."""
        groups: dict[str, list[Atom]] = {}
        order: list[Predicate | str] = []
        for pred in preds:
            atom = self.atom(pred) if isinstance(pred, _ROW_LOCAL) else None
            if atom is None:
                order.append(pred)
                continue
            if atom.table not in groups:
                groups[atom.table] = []
                order.append(atom.table)
            groups[atom.table].append(atom)
        out: list[str] = []
        for item in order:
            if not isinstance(item, str):
                out.append(self.where(item, r, types, params))
            elif len(groups[item]) == 1:
                out.append(self.exists(groups[item][0], r, params))
            else:
                out.append(self._all_exist(groups[item], f"{r}.rk", params))
        return out

    def _all_exist(self, atoms: list[Atom], rk: str, params: list[Any]) -> str:
        """Each atom (one table, one alias each, in its conditions) has a row of the resource."""
        a = atoms[0].alias
        checks = []
        for atom in atoms:
            conditions = [re.sub(rf"\b{atom.alias}\.", f"{a}.", c) for c in atom.conditions]
            checks.append(self.dialect.any_row.format(c=" AND ".join(conditions)))
            params.extend(atom.params)
        where = [self.row_of(a, rk), self.tenant(a, params)]
        rows = self.by_key(atoms[0].table, a)
        return f"(SELECT {' AND '.join(checks)} FROM {rows} WHERE {' AND '.join(where)})"

    def where(self, pred: Predicate, r: str, types: tuple[str, ...], params: list[Any]) -> str:
        """A boolean SQL expression over the resource row alias ``r``."""
        if isinstance(pred, And):
            return "(" + " AND ".join(self.where(p, r, types, params) for p in pred.parts) + ")"
        if isinstance(pred, Or):
            return "(" + " OR ".join(self.where(p, r, types, params) for p in pred.parts) + ")"
        if isinstance(pred, Not):
            return f"NOT {self.where(pred.part, r, types, params)}"
        if isinstance(pred, IdIn):
            params.extend(pred.ids)
            return f"{r}.id IN ({', '.join('?' for _ in pred.ids)})"
        if isinstance(pred, TypeIn):
            params.extend(pred.types)
            return f"{r}.type IN ({', '.join('?' for _ in pred.types)})"
        if isinstance(pred, LastUpdated):
            return _range_point_ms(pred.prefix, f"{r}.updated_ms", pred.lo, pred.hi, self.now_ms, params)
        if isinstance(pred, Missing):
            return self._missing(pred, r, params)
        if isinstance(pred, Has):
            return self._has(pred, r, types, params)
        if isinstance(pred, TextSearch):
            return self._text(pred, r, params)
        if isinstance(pred, ListMember):
            return self._list(pred, r, params)
        atom = self.atom(pred)
        if atom is None:
            return "FALSE"
        return self.exists(atom, r, params)

    # -- atoms ------------------------------------------------------------------------------
    def atom(self, pred: Predicate) -> Atom | None:
        """The index-backed form of a predicate; None when its parameter was never indexed."""
        if isinstance(pred, Chain):
            return self._chain(pred)
        key = getattr(pred, "param", None)
        if key is None:
            return None
        pid = self.pid_of(key)
        if pid is None:
            return None
        if isinstance(pred, TokenMatch):
            return self._token(pred, pid)
        if isinstance(pred, TokenText):
            a = self.alias("tt")
            return Atom(
                "ix_token_text",
                a,
                [f"{a}.pid = ?", f"({a}.text >= ? AND {a}.text < ? OR {self._contains(a + '.text')})"],
                [pid, pred.text, derive(_upper, pred.text), derive(_spaced, pred.text)],
            )
        if isinstance(pred, TokenIn):
            return self._token_in(pred, pid)
        if isinstance(pred, StringMatch):
            return self._string(pred, pid)
        if isinstance(pred, RefMatch):
            return self._reference(pred, pid)
        if isinstance(pred, RefIn):
            a = self.alias("f")
            marks = ", ".join("?" for _ in pred.ids) or "NULL"
            return Atom(
                "ix_reference",
                a,
                [f"{a}.pid = ?", f"{a}.target_type = ?", f"{a}.target_id IN ({marks})"],
                [pid, pred.type, *pred.ids],
            )
        if isinstance(pred, DateMatch):
            a = self.alias("d")
            conds, values = _range_dates(pred.prefix, f"{a}.lo", f"{a}.hi", pred.lo, pred.hi, self.now_ms)
            return Atom("ix_date", a, [f"{a}.pid = ?", *conds], [pid, *values])
        if isinstance(pred, NumberMatch):
            a = self.alias("n")
            conds, values = _range_points(pred.prefix, f"{a}.lo", f"{a}.hi", pred.value, pred.lo, pred.hi)
            return Atom("ix_number", a, [f"{a}.pid = ?", *conds], [pid, *values])
        if isinstance(pred, QuantityMatch):
            return self._quantity(pred, pid)
        if isinstance(pred, UriMatch):
            return self._uri(pred, pid)
        if isinstance(pred, CompositeMatch):
            return self._composite(pred, pid)
        if isinstance(pred, Near):
            return self._near(pred, pid)
        return None

    def _token(self, pred: TokenMatch, pid: int) -> Atom:
        a = self.alias("t")
        conds: list[str] = [f"{a}.pid = ?"]
        values: list[Any] = [pid]
        if pred.code is not None:
            conds.append(f"{a}.code = ?")
            values.append(pred.code)
        if pred.system == "":
            conds.append(f"{a}.system IS NULL")
        elif pred.system is not None:
            conds.append(f"{a}.system = ?")
            values.append(pred.system)
        return Atom("ix_token", a, conds, values)

    def _token_in(self, pred: TokenIn, pid: int) -> Atom:
        a = self.alias("t")
        if not pred.codes:
            return Atom("ix_token", a, ["FALSE"], [])
        alternatives: list[str] = []
        values: list[Any] = [pid]
        for system, code in pred.codes:
            if system is None:
                alternatives.append(f"{a}.code = ?")
                values.append(code)
            else:
                alternatives.append(f"({a}.code = ? AND {a}.system = ?)")
                values.extend((code, system))
        return Atom("ix_token", a, [f"{a}.pid = ?", "(" + " OR ".join(alternatives) + ")"], values)

    def _string(self, pred: StringMatch, pid: int) -> Atom:
        a = self.alias("s")
        value = derive(_cut, pred.value)  # as the index rows were cut
        if pred.mode == "exact":
            return Atom("ix_string", a, [f"{a}.pid = ?", f"{a}.exact = ?"], [pid, value])
        if pred.mode == "phonetic":
            return Atom("ix_string", a, [f"{a}.pid = ?", f"{a}.norm = ?"], [pid, value])
        if pred.mode == "contains":
            return Atom("ix_string", a, [f"{a}.pid = ?", self._contains(f"{a}.norm")], [pid, value])
        return Atom(
            "ix_string",
            a,
            [f"{a}.pid = ?", f"{a}.norm >= ?", f"{a}.norm < ?"],
            [pid, value, derive(_upper, value)],
        )

    def _reference(self, pred: RefMatch, pid: int) -> Atom:
        a = self.alias("f")
        conds: list[str] = [f"{a}.pid = ?"]
        values: list[Any] = [pid]
        if pred.url is not None:
            conds.append(f"{a}.url = ?")
            conds.append(f"{a}.url IS NOT NULL")  # lets SQLite use the partial url index
            values.append(pred.url)
        if pred.id is not None:
            conds.append(f"{a}.target_id = ?")
            values.append(pred.id)
        if pred.type is not None:
            conds.append(f"{a}.target_type = ?")
            values.append(pred.type)
        return Atom("ix_reference", a, conds, values)

    def _quantity(self, pred: QuantityMatch, pid: int) -> Atom:
        a = self.alias("q")
        conds, values = _range_points(pred.prefix, f"{a}.lo", f"{a}.hi", pred.value, pred.lo, pred.hi)
        head: list[str] = [f"{a}.pid = ?"]
        head_values: list[Any] = [pid]
        if pred.code is not None:
            head.append(f"{a}.code = ?")
            head_values.append(pred.code)
        if pred.system is not None:
            head.append(f"{a}.system = ?")
            head_values.append(pred.system)
        return Atom("ix_quantity", a, [*head, *conds], [*head_values, *values])

    def _uri(self, pred: UriMatch, pid: int) -> Atom:
        a = self.alias("u")
        if pred.mode == "below":
            return Atom(
                "ix_uri",
                a,
                [f"{a}.pid = ?", f"{a}.uri >= ?", f"{a}.uri < ?"],
                [pid, pred.value, derive(_upper, pred.value)],
            )
        if pred.mode == "above":
            return Atom(
                "ix_uri", a, [f"{a}.pid = ?", f"substr(?, 1, length({a}.uri)) = {a}.uri"], [pid, pred.value]
            )
        return Atom("ix_uri", a, [f"{a}.pid = ?", f"{a}.uri = ?"], [pid, pred.value])

    def _composite(self, pred: CompositeMatch, pid: int) -> Atom:
        a = self.alias("c")
        conds: list[str] = [f"{a}.pid = ?"]
        values: list[Any] = [pid]
        for position, part in enumerate(pred.parts, start=1):
            c, v = _component(a, position, part, self.now_ms)
            conds.extend(c)
            values.extend(v)
        return Atom("ix_composite", a, conds, values)

    def _near(self, pred: Near, pid: int) -> Atom:
        a = self.alias("g")
        conds = [
            f"{a}.pid = ?",
            f"{a}.lat BETWEEN ? AND ?",
            "6371.0 * acos("
            + self.dialect.least.format(
                x="1.0",
                y=f"sin(radians(?)) * sin(radians({a}.lat)) + "
                f"cos(radians(?)) * cos(radians({a}.lat)) * cos(radians({a}.lon - ?))",
            )
            + ") <= ?",
        ]
        values = [
            pid,
            derive(_south, pred.latitude, pred.distance_km),
            derive(_north, pred.latitude, pred.distance_km),
            pred.latitude,
            pred.latitude,
            pred.longitude,
            pred.distance_km,
        ]
        return Atom("ix_geo", a, conds, values)

    def _chain(self, pred: Chain) -> Atom | None:
        pid = self.pid_of(pred.param)
        if pid is None:
            return None
        a = self.alias("f")
        inner_params: list[Any] = []
        target = self.resource_query(pred.where, (pred.target_type,), "id", inner_params)
        return Atom(
            "ix_reference",
            a,
            [f"{a}.pid = ?", f"{a}.target_type = ?", f"{a}.target_id IN ({target})"],
            [pid, pred.target_type, *inner_params],
        )

    def _has(self, pred: Has, r: str, types: tuple[str, ...], params: list[Any]) -> str:
        """Correlated: the candidate's own referrers are found through their reference rows and
        each is checked against the inner condition; nothing is materialised."""
        pid = self.pid_of(pred.param)
        if pid is None:
            return "FALSE"
        if pred.param.startswith(pred.source_type + ".") and (pred.where is None or index_only(pred.where)):
            return self._has_by_rows(pred, pid, r, params)
        a, s = self.alias("h"), self.alias("s")
        join_params: list[Any] = []
        join = [
            f"{s}.rk = {self.row_rk(a)}",
            self.tenant(s, join_params),
            f"{s}.deleted = 0",
            f"{s}.type = ?",
        ]
        join_params.append(pred.source_type)
        if pred.where is not None:
            join.append(self.where(pred.where, s, (pred.source_type,), join_params))
        params.extend(join_params)  # bound in the order they appear in the text: ON, then WHERE
        where = self._pointing_at(a, pid, r, params)
        return (
            f"EXISTS (SELECT 1 FROM ix_reference {a} JOIN resource {s} ON {' AND '.join(join)} "
            f"WHERE {' AND '.join(where)})"
        )

    def _has_by_rows(self, pred: Has, pid: int, r: str, params: list[Any]) -> str:
        """``_has`` from index rows alone: the parameter belongs to the source type, a deleted
        resource has no index rows, and the inner condition is checked on the referrer's rows by
        its row key, so no referrer's resource row is read."""
        a = self.alias("h")
        where = self._pointing_at(a, pid, r, params)
        if pred.where is not None:
            where.append(self._keyed(pred.where, self.row_rk(a), params))
        return f"EXISTS (SELECT 1 FROM ix_reference {a} WHERE {' AND '.join(where)})"

    def _pointing_at(self, a: str, pid: int, r: str, params: list[Any]) -> list[str]:
        """Conditions: the reference row ``a`` of parameter ``pid`` points at the resource row ``r``."""
        where = [
            self.tenant(a, params),
            f"{a}.pid = ?",
            f"{a}.target_id = {r}.id",
            f"{a}.target_type = {r}.type",
        ]
        params.append(pid)
        return where

    def _keyed(self, pred: Predicate, rk: str, params: list[Any]) -> str:
        """``pred`` (see :func:`index_only`) over the resource whose row key is the expression ``rk``."""
        if isinstance(pred, (And, Or)):
            joiner = " AND " if isinstance(pred, And) else " OR "
            return "(" + joiner.join(self._keyed(p, rk, params) for p in pred.parts) + ")"
        if isinstance(pred, Not):
            return f"NOT {self._keyed(pred.part, rk, params)}"
        atom = self.atom(pred)
        if atom is None:
            return "FALSE"
        return self._exists_at(atom, rk, params)

    def _missing(self, pred: Missing, r: str, params: list[Any]) -> str:
        pid = self.pid_of(pred.param)
        if pid is None:
            return "TRUE" if pred.missing else "FALSE"
        table = TABLE_OF_KIND.get(pred.kind, "ix_token")
        a = self.alias("m")
        where = [self.row_of(a, f"{r}.rk"), self.tenant(a, params), f"{a}.pid = ?"]
        params.append(pid)
        found = f"EXISTS (SELECT 1 FROM {self.by_key(table, a)} WHERE {' AND '.join(where)})"
        return f"NOT {found}" if pred.missing else found

    def _list(self, pred: ListMember, r: str, params: list[Any]) -> str:
        pid = self.pid_of("List.item")
        if pid is None:
            return "FALSE"
        a, lst = self.alias("l"), self.alias("r")
        where = [self.tenant(lst, params), f"{lst}.type = ?", f"{lst}.id = ?", f"{lst}.deleted = 0"]
        params.extend(("List", pred.list_id))
        where += [self.tenant(a, params), f"{a}.pid = ?", f"{a}.target_type = {r}.type"]
        params.append(pid)
        rows = (
            f"resource {lst} {self.dialect.join_in_order} {self.by_key('ix_reference', a)} "
            f"ON {self.row_of(a, lst + '.rk')}"
        )
        return f"{r}.id IN (SELECT {a}.target_id FROM {rows} WHERE {' AND '.join(where)})"

    def _text(self, pred: TextSearch, r: str, params: list[Any]) -> str:
        a = self.alias("x")
        column = "narrative" if pred.field == "narrative" else "content"
        query = derive(_fts_words, pred.query) if self.dialect is SQLITE else pred.query
        where = [
            f"{a}.{self.dialect.text_key} = {r}.rk",
            self.tenant(a, params),
            self.dialect.text_match.format(a=a, column=column, needle="?"),
        ]
        params.append(query)
        return f"EXISTS (SELECT 1 FROM ix_text {a} WHERE {' AND '.join(where)})"

    # -- resource queries (chains, _has) ----------------------------------------------------
    def resource_query(
        self, pred: Predicate | None, types: tuple[str, ...], column: str, params: list[Any]
    ) -> str:
        """``SELECT r.<column> FROM resource r WHERE ...``: current resources matching ``pred``,
        driven from the first index-backed part of it when there is one."""
        r = self.alias("r")
        where = [self.tenant(r, params), f"{r}.deleted = 0"]
        if types:
            where.append(f"{r}.type IN ({', '.join('?' for _ in types)})")
            params.extend(types)
        if pred is not None:
            parts: list[Predicate] = list(pred.parts) if isinstance(pred, And) else [pred]
            driver: Predicate | None = next((p for p in parts if self.drivable(p)), None)
            if driver is not None:
                atom = self.atom(driver)
                if atom is None:
                    return f"SELECT {r}.{column} FROM resource {r} WHERE FALSE"
                where.append(f"{r}.rk IN ({self.rk_set(atom, params)})")
                parts.remove(driver)
            where.extend(self.where(p, r, types, params) for p in parts)
        return f"SELECT {r}.{column} FROM resource {r} WHERE {' AND '.join(where)}"

    def _contains(self, hay: str) -> str:
        return self.dialect.contains.format(hay=hay, needle="?")

    @staticmethod
    def drivable(pred: Predicate) -> bool:
        return isinstance(pred, _DRIVABLE)


def index_only(pred: Predicate) -> bool:
    """Whether ``pred`` is decided by index rows alone (atoms under And / Or / Not), never by
    the resource row's own columns."""
    if isinstance(pred, (And, Or)):
        return all(index_only(p) for p in pred.parts)
    if isinstance(pred, Not):
        return index_only(pred.part)
    return Compiler.drivable(pred)


# -- ranges -------------------------------------------------------------------------------------
def _approx_window(lo: int, hi: int, now_ms: int) -> tuple[int, int]:
    """``ap`` on dates: the value's range widened by 10% of its distance from now (at least a day)."""
    gap = max(abs(now_ms - lo), abs(now_ms - hi))
    margin = max(gap // 10, _DAY_MS)
    return lo - margin, hi + margin


def _range_dates(
    prefix: str, lo_col: str, hi_col: str, s_lo: Any, s_hi: Any, now_ms: Any
) -> tuple[list[str], list[Any]]:
    """Target ``[lo_col, hi_col)`` against search ``[s_lo, s_hi)``, as search.html defines."""
    if prefix == "eq":
        return [f"{lo_col} >= ?", f"{lo_col} < ?", f"{hi_col} <= ?"], [s_lo, s_hi, s_hi]
    if prefix == "ne":
        return [f"NOT ({lo_col} >= ? AND {hi_col} <= ?)"], [s_lo, s_hi]
    if prefix == "gt":
        return [f"{hi_col} > ?"], [s_hi]
    if prefix == "lt":
        return [f"{lo_col} < ?"], [s_lo]
    if prefix == "ge":
        return [f"{hi_col} > ?", f"({hi_col} > ? OR ({lo_col} >= ? AND {hi_col} <= ?))"], [
            s_lo,
            s_hi,
            s_lo,
            s_hi,
        ]
    if prefix == "le":
        return [f"{lo_col} < ?", f"({lo_col} < ? OR ({lo_col} >= ? AND {hi_col} <= ?))"], [
            s_hi,
            s_lo,
            s_lo,
            s_hi,
        ]
    if prefix == "sa":
        return [f"{lo_col} >= ?"], [s_hi]
    if prefix == "eb":
        return [f"{hi_col} <= ?"], [s_lo]
    w_hi = derive(_approx_hi, s_lo, s_hi, now_ms)
    w_lo = derive(_approx_lo, s_lo, s_hi, now_ms)
    return [f"{lo_col} < ?", f"{hi_col} > ?"], [w_hi, w_lo]


def _range_point_ms(prefix: str, col: str, s_lo: Any, s_hi: Any, now_ms: Any, params: list[Any]) -> str:
    """A point in time (``_lastUpdated``) as the range ``[col, col + 1)``."""
    conds, values = _range_dates(prefix, col, f"({col} + 1)", s_lo, s_hi, now_ms)
    params.extend(values)
    return "(" + " AND ".join(conds) + ")"


def _range_points(
    prefix: str, lo_col: str, hi_col: str, value: Any, s_lo: Any, s_hi: Any
) -> tuple[list[str], list[Any]]:
    """Numbers and quantities: stored points (or Range [low, high]) against a search value."""
    if prefix == "eq":
        return [f"{lo_col} >= ?", f"{hi_col} < ?"], [s_lo, s_hi]
    if prefix == "ne":
        return [f"NOT ({lo_col} >= ? AND {hi_col} < ?)"], [s_lo, s_hi]
    if prefix == "gt":
        return [f"{hi_col} > ?"], [value]
    if prefix == "lt":
        return [f"{lo_col} < ?"], [value]
    if prefix == "ge":
        return [f"{hi_col} >= ?"], [value]
    if prefix == "le":
        return [f"{lo_col} <= ?"], [value]
    if prefix == "sa":
        return [f"{lo_col} > ?"], [value]
    if prefix == "eb":
        return [f"{hi_col} < ?"], [value]
    return [f"{lo_col} <= ?", f"{hi_col} >= ?"], [derive(_approx_above, value), derive(_approx_below, value)]


def _component(a: str, position: int, part: Any, now_ms: Any) -> tuple[list[str], list[Any]]:
    """Conditions on one composite component, by its position (1, 2 or 3)."""
    s, v, lo, hi = (f"{a}.s{position}", f"{a}.v{position}", f"{a}.lo{position}", f"{a}.hi{position}")
    if isinstance(part, TokenMatch):
        conds, values = [], []
        if part.code is not None:
            conds.append(f"{v} = ?")
            values.append(part.code)
        if part.system == "":
            conds.append(f"{s} IS NULL")
        elif part.system is not None:
            conds.append(f"{s} = ?")
            values.append(part.system)
        return conds, values
    if isinstance(part, StringMatch):
        if part.mode == "exact":
            return [f"{v} = ?"], [part.value]
        return [f"{v} >= ?", f"{v} < ?"], [part.value, derive(_upper, part.value)]
    if isinstance(part, RefMatch):
        return [f"{v} = ?"], [part.id or part.url or ""]
    if isinstance(part, UriMatch):
        return [f"{v} = ?"], [part.value]
    if isinstance(part, DateMatch):
        return _range_dates(part.prefix, lo, hi, part.lo, part.hi, now_ms)
    if isinstance(part, QuantityMatch):
        conds, values = _range_points(part.prefix, lo, hi, part.value, part.lo, part.hi)
        if part.code is not None:
            conds.append(f"{v} = ?")
            values.append(part.code)
        if part.system is not None:
            conds.append(f"{s} = ?")
            values.append(part.system)
        return conds, values
    if isinstance(part, NumberMatch):
        return _range_points(part.prefix, lo, hi, part.value, part.lo, part.hi)
    return ["FALSE"], []


# -- values computed from search values (bound, so a statement's text is one per shape) -----------
_HIGH = "\U0010ffff"


def _upper(value: str) -> str:
    """The exclusive upper bound of the strings starting with ``value``."""
    return value + _HIGH


def _spaced(value: str) -> str:
    return " " + value


def _cut(value: str) -> str:
    return value[:MAX_INDEX_STRING]


def _fts_words(query: str) -> str:
    """SQLite FTS5: each word a quoted string (no operators from the client)."""
    return " ".join('"' + word.replace('"', '""') + '"' for word in query.split())


def _approx_lo(lo: int, hi: int, now_ms: int) -> int:
    return _approx_window(lo, hi, now_ms)[0]


def _approx_hi(lo: int, hi: int, now_ms: int) -> int:
    return _approx_window(lo, hi, now_ms)[1]


def _approx_above(value: float) -> float:
    return value + abs(value) * 0.1


def _approx_below(value: float) -> float:
    return value - abs(value) * 0.1


def _south(latitude: float, distance_km: float) -> float:
    return latitude - distance_km / 111.0


def _north(latitude: float, distance_km: float) -> float:
    return latitude + distance_km / 111.0


# -- statement shapes ----------------------------------------------------------------------------
# A compiled statement depends on a plan's shape, never on its values: every value is bound. A
# shape is the plan with each value replaced by a Slot (its position in the plan's value list);
# compiling the slotted plan gives the text once and a bound-parameter list of constants, Slots
# and Derived values, which :meth:`Slot.get` / :meth:`Derived.get` fill from another plan's values.
# What changes the text is structure, never a value: predicate classes, parameter keys, prefixes,
# modes, kinds, how many values a list holds, and which optional values are absent (None) or empty
# ("": a token's "no system", an empty reference id), so those are kept in the shape.


class Slot:
    """The plan's ``index``-th value."""

    __slots__ = ("index",)

    def __init__(self, index: int) -> None:
        self.index = index

    def get(self, values: list[Any]) -> Any:
        return values[self.index]


class Derived:
    """A bound value computed from plan values: ``fn(*args)``, Slots among the args."""

    __slots__ = ("args", "fn")

    def __init__(self, fn: Callable[..., Any], args: tuple[Any, ...]) -> None:
        self.fn = fn
        self.args = args

    def get(self, values: list[Any]) -> Any:
        return self.fn(*[a.get(values) if isinstance(a, (Slot, Derived)) else a for a in self.args])


def derive(fn: Callable[..., Any], *args: Any) -> Any:
    """``fn(*args)``; for a shape (some arg a Slot), the recipe to compute it from values."""
    for a in args:
        if isinstance(a, (Slot, Derived)):
            return Derived(fn, args)
    return fn(*args)


# fields whose values are structure (they name things or choose the SQL), never bound values
_STRUCTURAL = frozenset({"param", "prefix", "mode", "kind", "missing", "field", "source_type", "target_type"})
_VALUE = "?"  # a value's place in a shape
_PLAN_CLASSES = (
    IdIn, TypeIn, LastUpdated, TokenMatch, TokenText, TokenIn, StringMatch, RefMatch, RefIn, DateMatch,
    NumberMatch, QuantityMatch, UriMatch, CompositeMatch, Missing, Chain, Has, TextSearch, Near,
    ListMember, And, Or, Not,
)  # fmt: skip
# each plan class's fields, in order, and whether each is structure
_FIELDS: MappingProxyType[type, tuple[tuple[str, bool], ...]] = MappingProxyType(
    {cls: tuple((f.name, f.name in _STRUCTURAL) for f in fields(cls)) for cls in _PLAN_CLASSES}
)


def _fields_of(cls: type) -> tuple[tuple[str, bool], ...]:
    found = _FIELDS.get(cls)
    if found is None:
        raise TypeError(f"no shape for {cls.__name__}")
    return found


def _shape(value: Any, values: list[Any]) -> Any:
    cls = type(value)
    if cls is str:
        if value:
            values.append(value)
            return _VALUE
        return value
    if cls is int or cls is float:
        values.append(value)
        return _VALUE
    if value is None or cls is bool:
        return value
    if cls is tuple:
        return tuple([_shape(v, values) for v in value])
    shaper = _SHAPERS.get(cls)
    if shaper is None:
        raise TypeError(f"no shape for {cls.__name__}")
    return shaper(value, values)


def _shaper(cls: type) -> Callable[[Any, list[Any]], Any]:
    """:func:`_shape` of one plan class, its fields unrolled (the shape is taken on every search):
    ``(cls, field shapes...)``, each value field's value appended to ``values`` in field order."""
    lines = ["def shape(v, values):"]
    items = ["cls"]
    for k, (name, fixed) in enumerate(_FIELDS[cls]):
        if fixed:
            items.append(f"v.{name}")
            continue
        lines += [
            f"    x{k} = v.{name}",
            f"    t = type(x{k})",
            f"    if t is int or t is float or (t is str and x{k}):",
            f"        values.append(x{k})",
            f"        x{k} = _VALUE",
            f"    elif not (x{k} is None or t is bool or t is str):",
            f"        x{k} = _shape(x{k}, values)",
        ]
        items.append(f"x{k}")
    lines.append(f"    return ({', '.join(items)},)")
    scope: dict[str, Any] = {"cls": cls, "_VALUE": _VALUE, "_shape": _shape}
    exec("\n".join(lines), scope)  # (names and code are this module's own: no outside input)
    shape: Callable[[Any, list[Any]], Any] = scope["shape"]
    return shape


_SHAPERS: dict[type, Callable[[Any, list[Any]], Any]] = {cls: _shaper(cls) for cls in _PLAN_CLASSES}


def _slotted(value: Any, counter: list[int]) -> Any:
    """``value`` with each value a Slot, numbered in :func:`_shape`'s order."""
    if value is None or value == "" or value is True or value is False:
        return value
    cls = type(value)
    if cls is str or cls is int or cls is float:
        counter[0] += 1
        return Slot(counter[0] - 1)
    if cls is tuple:
        return tuple([_slotted(v, counter) for v in value])
    names = _fields_of(cls)
    return cls(
        **{n: getattr(value, n) if fixed else _slotted(getattr(value, n), counter) for n, fixed in names}
    )


def _cursor(cursor: tuple[Any, ...] | None, markers: frozenset[Any]) -> tuple[Any, ...] | None:
    """A keyset cursor's shape: its values, but the "no value" sort markers are structure (a
    sorted scan's phase depends on them)."""
    if cursor is None:
        return None
    return tuple(v if v in markers else _VALUE for v in cursor)


def plan_shape(plan: QueryPlan, now_ms: int, markers: frozenset[Any]) -> tuple[Hashable, list[Any]]:
    """The shape of ``plan`` (what its statements' text depends on) and its values, in Slot order:
    ``now_ms`` first, then ``count``, the condition's values, then the cursors' values."""
    values: list[Any] = [now_ms, plan.count]
    where = _shape(plan.where, values)
    for cursor in (plan.after, plan.before):
        if cursor is not None:
            values.extend(v for v in cursor if v not in markers)
    key = (
        plan.types,
        where,
        tuple([(k.param, k.kind, k.descending) for k in plan.sort]),  # (tuples hash and compare in C)
        plan.count == 0,
        plan.total,
        _cursor(plan.after, markers),
        _cursor(plan.before, markers),
    )
    return key, values


def slotted_plan(plan: QueryPlan, markers: frozenset[Any]) -> QueryPlan:
    """``plan`` with Slots for values, numbered as :func:`plan_shape` lists them (index 0 is now)."""
    counter = [2]
    where = _slotted(plan.where, counter)

    def cursor(c: tuple[Any, ...] | None) -> tuple[Any, ...] | None:
        if c is None:
            return None
        out: list[Any] = []
        for v in c:
            if v in markers:
                out.append(v)
            else:
                out.append(Slot(counter[0]))
                counter[0] += 1
        return tuple(out)

    after = cursor(plan.after)
    before = cursor(plan.before)
    return QueryPlan(
        plan.types,
        where,
        plan.sort,
        0 if plan.count == 0 else Slot(1),  # type: ignore[arg-type]
        after,
        before,
        plan.total,
        (),
    )
