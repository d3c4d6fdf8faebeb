"""Binary operators as closures over their compiled operands.

Rules:
1. ``and``/``or``/``xor``/``implies`` use three-valued logic with singleton evaluation of each
   side; ``and``/``or``/``implies`` do not evaluate the right side when the left decides.
2. ``=``/``!=``/``~``/``!~``/ordering follow equality.py; ``!=`` is ``not (=)`` (empty stays
   empty) and ``!~`` is ``not (~)``.
3. ``|`` is union without duplicates; ``in``/``contains`` test membership with ``=`` and give
   empty when the single-item side is empty.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from careweave.fhir.fhirpath.arithmetic import BINARY_MATH, concatenate
from careweave.fhir.fhirpath.equality import (
    compare_items,
    equal_collections,
    equal_items,
    equivalent_collections,
)
from careweave.fhir.fhirpath.runtime import Env, Fn
from careweave.fhir.fhirpath.values import distinct, single, to_bool

__all__ = ["binary_operator"]


def _and(left: Fn, right: Fn) -> Fn:
    def run(env: Env, focus: list[Any]) -> list[Any]:
        a = to_bool(left(env, focus), "and")
        if a is False:
            return [False]
        b = to_bool(right(env, focus), "and")
        if b is False:
            return [False]
        return [True] if a is True and b is True else []

    return run


def _or(left: Fn, right: Fn) -> Fn:
    def run(env: Env, focus: list[Any]) -> list[Any]:
        a = to_bool(left(env, focus), "or")
        if a is True:
            return [True]
        b = to_bool(right(env, focus), "or")
        if b is True:
            return [True]
        return [False] if a is False and b is False else []

    return run


def _xor(left: Fn, right: Fn) -> Fn:
    def run(env: Env, focus: list[Any]) -> list[Any]:
        a = to_bool(left(env, focus), "xor")
        b = to_bool(right(env, focus), "xor")
        if a is None or b is None:
            return []
        return [a is not b]

    return run


def _implies(left: Fn, right: Fn) -> Fn:
    def run(env: Env, focus: list[Any]) -> list[Any]:
        a = to_bool(left(env, focus), "implies")
        if a is False:
            return [True]
        b = to_bool(right(env, focus), "implies")
        if b is True:
            return [True]
        if a is True and b is False:
            return [False]
        return []

    return run


def _equality(op: str, left: Fn, right: Fn) -> Fn:
    if op in ("=", "!="):
        negate = op == "!="

        def run(env: Env, focus: list[Any]) -> list[Any]:
            a = left(env, focus)
            b = right(env, focus)
            single_items = len(a) == 1 and len(b) == 1
            result = equal_items(a[0], b[0]) if single_items else equal_collections(a, b)
            if result is None:
                return []
            return [result is not negate]

        return run
    negate_eq = op == "!~"

    def run_equivalent(env: Env, focus: list[Any]) -> list[Any]:
        result = equivalent_collections(left(env, focus), right(env, focus))
        return [result is not negate_eq]

    return run_equivalent


_ORDER: dict[str, Callable[[int], bool]] = {
    "<": lambda c: c < 0,
    "<=": lambda c: c <= 0,
    ">": lambda c: c > 0,
    ">=": lambda c: c >= 0,
}


def _order(op: str, left: Fn, right: Fn) -> Fn:
    test = _ORDER[op]

    def run(env: Env, focus: list[Any]) -> list[Any]:
        a = single(left(env, focus), f"operator {op}")
        b = single(right(env, focus), f"operator {op}")
        if a is None or b is None:
            return []
        order = compare_items(a, b)
        return [] if order is None else [test(order)]

    return run


def _membership(op: str, left: Fn, right: Fn) -> Fn:
    def run(env: Env, focus: list[Any]) -> list[Any]:
        a = left(env, focus)
        b = right(env, focus)
        item, collection = (a, b) if op == "in" else (b, a)
        needle = single(item, f"operator {op}")
        if needle is None:
            return []
        return [any(equal_items(needle, x) is True for x in collection)]

    return run


def _union(left: Fn, right: Fn) -> Fn:
    def run(env: Env, focus: list[Any]) -> list[Any]:
        return distinct(left(env, focus) + right(env, focus))

    return run


def _math(op: str, left: Fn, right: Fn) -> Fn:
    operation = BINARY_MATH[op] if op != "&" else concatenate

    def run(env: Env, focus: list[Any]) -> list[Any]:
        return operation(left(env, focus), right(env, focus))

    return run


_LOGIC: dict[str, Callable[[Fn, Fn], Fn]] = {
    "and": _and,
    "or": _or,
    "xor": _xor,
    "implies": _implies,
    "|": _union,
}


def binary_operator(op: str, left: Fn, right: Fn) -> Fn:
    """The closure for ``left op right``."""
    logic = _LOGIC.get(op)
    if logic is not None:
        return logic(left, right)
    if op in ("=", "!=", "~", "!~"):
        return _equality(op, left, right)
    if op in _ORDER:
        return _order(op, left, right)
    if op in ("in", "contains"):
        return _membership(op, left, right)
    return _math(op, left, right)
