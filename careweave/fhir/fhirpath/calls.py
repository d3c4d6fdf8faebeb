"""Shared shapes of function calls: evaluating arguments and iterating lambda arguments.

Rules:
1. A non-lambda argument is evaluated against the call's focus (``$this``), once per call.
2. A lambda argument (``where``, ``select``...) is evaluated once per input item with that item as
   focus and ``$index`` set to its position; ``$index`` is restored afterwards.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from careweave.fhir.fhirpath import ast
from careweave.fhir.fhirpath.runtime import Compiler, Env, Fn, FunctionSpec, Step
from careweave.fhir.fhirpath.values import single, system_value

__all__ = [
    "arg_value",
    "collection_function",
    "input_value",
    "map_items",
    "spec",
]


def spec(min_args: int, max_args: int) -> Callable[[Callable[..., Step]], FunctionSpec]:
    """Decorator: declare a builder ``(compiler, args, pos) -> Step`` with its arity."""

    def wrap(build: Callable[..., Step]) -> FunctionSpec:
        return FunctionSpec(min_args, max_args, build)

    return wrap


def collection_function(fn: Callable[[list[Any]], list[Any]]) -> FunctionSpec:
    """A function of its input collection only (``count()``, ``first()``)."""

    def build(c: Compiler, args: tuple[ast.Expr, ...], pos: int) -> Step:
        return lambda env, inp, focus: fn(inp)

    return FunctionSpec(0, 0, build)


def arg_value(arg: Fn, env: Env, focus: list[Any], what: str) -> Any:
    """A single-valued argument's System value (None when empty)."""
    return system_value(single(arg(env, focus), what))


def input_value(items: list[Any], what: str) -> Any:
    """A single-valued input's System value (None when empty)."""
    return system_value(single(items, what))


def map_items(env: Env, items: list[Any], body: Fn) -> list[list[Any]]:
    """``body`` evaluated for each item (rule 2)."""
    saved = env.index
    results: list[list[Any]] = []
    try:
        for i, item in enumerate(items):
            env.index = [i]
            results.append(body(env, [item]))
    finally:
        env.index = saved
    return results
