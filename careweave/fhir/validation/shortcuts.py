"""Invariants that surely hold, told from the value's own children without the FHIRPath engine.

Most invariants are disjunctions whose first terms test whether an element is there:
``code.empty() or system.exists()`` (qty-3), ``dataAbsentReason.empty() or value.empty()``
(obs-6), ``start.hasValue().not() or ...`` (per-1). On most values one of those terms is true,
and then the invariant holds whatever its later terms say.

Rules:
1. A :class:`Shortcut` is built from the compiled expression's syntax tree, only for careweave's
   engine with its own ``empty``, ``exists``, ``hasValue``, ``not`` and ``where`` functions; the
   terms it reads are ``a.empty()``, ``a.exists()``, ``a.hasValue().not()`` and, for a path
   ``a.b.where(...)...`` ending in ``.empty()`` or ``.exists()``, only whether ``a`` finds anything.
2. It reads the top-level ``or`` terms in the engine's order, each on the same typed focus node the
   engine gets, through the engine's own navigation step (``navigator.member``). It answers True
   only when some term is true and every term before it is one it has read (those raise nothing
   in the engine either): the engine would give ``[True]`` too. Otherwise, or if anything raises,
   it answers False and the engine evaluates the invariant as before; issues are never made here.
3. One more term: ``a <= b`` (``<``, ``>``, ``>=``) of two elements, each one dateTime, both written
   in full to the second (no fraction) in years 1000 to 9998, with the same time zone. Those
   compare as their texts do (same offset, fixed-width fields), as the engine compares them in
   UTC; any other pair is the engine's to compare (per-1 on a Period: ``start <= end``).
"""

from __future__ import annotations

import calendar
import operator
import re
from collections.abc import Callable
from typing import Any

from careweave.fhir.fhirpath import ast
from careweave.fhir.fhirpath.fn_existence import FUNCTIONS as EXISTENCE
from careweave.fhir.fhirpath.fn_fhir import FUNCTIONS as FHIR
from careweave.fhir.fhirpath.fn_filtering import FUNCTIONS as FILTERING
from careweave.fhir.fhirpath.node import Node

__all__ = ["Shortcut", "shortcut"]

_STOCK = {
    "empty": EXISTENCE["empty"],
    "exists": EXISTENCE["exists"],
    "not": EXISTENCE["not"],
    "hasValue": FHIR["hasValue"],
    "where": FILTERING["where"],
}

Step = Callable[[list[Any]], list[Any]]
# one term: (what it asks, the step to its path's first element, whether the path is that step
# alone, and for an order the step to its right-hand element and the comparison)
_Term = tuple[str, Step, bool, Step | None, Callable[[str, str], bool] | None]
_ORDER: dict[str, Callable[[str, str], bool]] = {
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
}
_DATETIME_TYPES = frozenset({"dateTime", "instant"})
# a dateTime to the second with a zone, ASCII digits only (rule 3)
_FULL_DATETIME = re.compile(
    r"([0-9]{4})-([0-9]{2})-([0-9]{2})T([0-9]{2}):([0-9]{2}):([0-9]{2})(?:Z|[+-][0-9]{2}:[0-9]{2})"
)


class Shortcut:
    """True when an invariant surely holds on a typed focus node (rule 2)."""

    __slots__ = ("_terms",)

    def __init__(self, terms: tuple[_Term, ...]) -> None:
        self._terms = terms

    def __call__(self, focus: Node) -> bool:
        try:
            for asks, step, alone, right, order in self._terms:
                found = step([focus])
                if asks == "empty":
                    if not found:
                        return True
                elif asks == "exists":
                    if found and alone:
                        return True
                elif asks == "order":
                    assert right is not None and order is not None
                    decided = _ordered(found, right([focus]), order)
                    if decided is None:
                        return False
                    if decided:
                        return True
                    continue
                elif not (
                    len(found) == 1 and found[0].value is not None and found[0].value.__class__ is not dict
                ):
                    return True  # hasValue().not(): hasValue() is false
                if found and not alone:
                    return False  # the rest of the path decides this term: the engine's work
        except Exception:  # the engine will say what is wrong
            return False
        return False


def _ordered(left: list[Any], right: list[Any], order: Callable[[str, str], bool]) -> bool | None:
    """An order of two dateTimes as the engine gives it, where rule 3 tells it; else None."""
    if len(left) != 1 or len(right) != 1:
        return None
    a, b = left[0], right[0]
    if a.type not in _DATETIME_TYPES or b.type not in _DATETIME_TYPES:
        return None
    x, y = a.value, b.value
    if x.__class__ is not str or y.__class__ is not str or len(x) != len(y) or x[19:] != y[19:]:
        return None
    if not (_plain_datetime(x) and _plain_datetime(y)):
        return None
    return order(x, y)


def _plain_datetime(text: str) -> bool:
    """A real date and time of day, to the second, in years 1000 to 9998 (no overflow in UTC)."""
    m = _FULL_DATETIME.fullmatch(text)
    if m is None:
        return False
    year, month, day, hour, minute, second = (int(g) for g in m.groups())
    return (
        1000 <= year <= 9998
        and 1 <= month <= 12
        and 1 <= day <= calendar.monthrange(year, month)[1]
        and hour <= 23
        and minute <= 59
        and second <= 59
    )


def shortcut(engine: Any, compiled: Any) -> Shortcut | None:
    """The shortcut for a compiled invariant, or None when it has no term to read first, the
    engine is not careweave's own, or its functions are not the stock ones (rule 1)."""
    navigator = getattr(engine, "navigator", None)
    functions = getattr(engine, "functions", None)
    tree = getattr(compiled, "tree", None)
    if navigator is None or not isinstance(functions, dict) or tree is None:
        return None
    if any(functions.get(name) is not spec for name, spec in _STOCK.items()):
        return None
    terms: list[_Term] = []
    for term in _or_terms(tree):
        found = _term(term)
        if found is None:
            break  # an opaque term: the terms after it cannot be read before it
        asks, name, alone = found
        if asks == "order":
            assert isinstance(term, ast.Binary) and isinstance(term.right, ast.Identifier)
            terms.append(
                (asks, navigator.member(name), True, navigator.member(term.right.name), _ORDER[term.op])
            )
        else:
            terms.append((asks, navigator.member(name), alone, None, None))
    return Shortcut(tuple(terms)) if terms else None


def _or_terms(expr: ast.Expr) -> list[ast.Expr]:
    """The terms of ``a or b or c`` in evaluation order (``or`` evaluates left, then right)."""
    if isinstance(expr, ast.Binary) and expr.op == "or":
        return _or_terms(expr.left) + _or_terms(expr.right)
    return [expr]


def _term(expr: ast.Expr) -> tuple[str, str, bool] | None:
    """(empty | exists | novalue | order, the path's first element, whether it is the whole
    path); an order's right-hand element is the expression's own."""
    if isinstance(expr, ast.Binary) and expr.op in _ORDER:
        left, right = _element(expr.left), _element(expr.right)
        return None if left is None or right is None else ("order", left, True)
    if not isinstance(expr, ast.Call) or expr.args or expr.base is None:
        return None
    if expr.name == "not":
        inner = expr.base
        if isinstance(inner, ast.Call) and inner.name == "hasValue" and not inner.args:
            name = _element(inner.base)
            return None if name is None else ("novalue", name, True)
        return None
    if expr.name not in ("empty", "exists"):
        return None
    if isinstance(expr.base, ast.Identifier):
        name = _element(expr.base)
        return None if name is None else (expr.name, name, True)
    first = _path_start(expr.base)
    return None if first is None else (expr.name, first, False)


def _element(expr: ast.Expr | None) -> str | None:
    """The name of an element of the focus (a type name would filter by type instead)."""
    if isinstance(expr, ast.Identifier) and expr.name[:1].islower():
        return expr.name
    return None


def _path_start(expr: ast.Expr) -> str | None:
    """The first element of ``a.b.where(...).c``: a path that finds nothing when ``a`` does not
    (members and ``where`` of nothing are nothing; ``where`` then evaluates no criteria)."""
    while isinstance(expr, ast.Member) or (
        isinstance(expr, ast.Call) and expr.name == "where" and expr.base is not None
    ):
        assert expr.base is not None
        expr = expr.base
    return _element(expr)
