"""Existence functions: empty, exists, all, allTrue, anyTrue, allFalse, anyFalse, subsetOf,
supersetOf, count, distinct, isDistinct, and not()."""

from __future__ import annotations

from typing import Any

from careweave.fhir.fhirpath import ast
from careweave.fhir.fhirpath.calls import collection_function, map_items, spec
from careweave.fhir.fhirpath.equality import equal_items
from careweave.fhir.fhirpath.errors import FhirPathError
from careweave.fhir.fhirpath.runtime import Compiler, Env, FunctionSpec, Step
from careweave.fhir.fhirpath.values import distinct, system_value, to_bool

__all__ = ["FUNCTIONS"]


@spec(0, 1)
def _exists(c: Compiler, args: tuple[ast.Expr, ...], pos: int) -> Step:
    if not args:
        return lambda env, inp, focus: [bool(inp)]
    criteria = c.compile(args[0])

    def run(env: Env, inp: list[Any], focus: list[Any]) -> list[Any]:
        saved = env.index
        try:
            for i, item in enumerate(inp):
                env.index = [i]
                if to_bool(criteria(env, [item]), "exists()") is True:
                    return [True]
        finally:
            env.index = saved
        return [False]

    return run


@spec(1, 1)
def _all(c: Compiler, args: tuple[ast.Expr, ...], pos: int) -> Step:
    criteria = c.compile(args[0])

    def run(env: Env, inp: list[Any], focus: list[Any]) -> list[Any]:
        results = map_items(env, inp, criteria)
        return [all(to_bool(r, "all()") is True for r in results)]

    return run


def _booleans(items: list[Any], name: str) -> list[bool]:
    values = [system_value(x) for x in items]
    for v in values:
        if v is not True and v is not False:
            raise FhirPathError(f"{name}() expects Booleans")
    return values


def _all_true(items: list[Any]) -> list[Any]:
    return [all(_booleans(items, "allTrue"))]


def _any_true(items: list[Any]) -> list[Any]:
    return [any(_booleans(items, "anyTrue"))]


def _all_false(items: list[Any]) -> list[Any]:
    return [not any(_booleans(items, "allFalse"))]


def _any_false(items: list[Any]) -> list[Any]:
    return [not all(_booleans(items, "anyFalse"))]


def _contains_all(container: list[Any], items: list[Any]) -> bool:
    return all(any(equal_items(x, y) is True for y in container) for x in items)


@spec(1, 1)
def _subset_of(c: Compiler, args: tuple[ast.Expr, ...], pos: int) -> Step:
    other = c.compile(args[0])
    return lambda env, inp, focus: [_contains_all(other(env, focus), inp)]


@spec(1, 1)
def _superset_of(c: Compiler, args: tuple[ast.Expr, ...], pos: int) -> Step:
    other = c.compile(args[0])
    return lambda env, inp, focus: [_contains_all(inp, other(env, focus))]


def _not(items: list[Any]) -> list[Any]:
    value = to_bool(items, "not()")
    return [] if value is None else [not value]


FUNCTIONS: dict[str, FunctionSpec] = {
    "empty": collection_function(lambda items: [not items]),
    "exists": _exists,
    "all": _all,
    "allTrue": collection_function(_all_true),
    "anyTrue": collection_function(_any_true),
    "allFalse": collection_function(_all_false),
    "anyFalse": collection_function(_any_false),
    "subsetOf": _subset_of,
    "supersetOf": _superset_of,
    "count": collection_function(lambda items: [len(items)]),
    "distinct": collection_function(distinct),
    "isDistinct": collection_function(lambda items: [len(distinct(items)) == len(items)]),
    "not": collection_function(_not),
}
