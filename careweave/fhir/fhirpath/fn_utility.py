"""Tree navigation (children, descendants) and utility functions (trace, now, today, timeOfDay,
aggregate).

Rules:
1. ``children()`` lists every child element of each input Node; ``descendants()`` is
   ``repeat(children())``: level by level, parents before their children.
2. ``now()``, ``today()`` and ``timeOfDay()`` read the evaluation's single instant.
3. ``trace(name[, projection])`` passes its input through unchanged and hands the (projected)
   collection to the engine's tracer, if any.
4. ``aggregate(aggregator[, init])`` folds the input: ``$this`` is the item, ``$total`` the
   running result (starting as ``init`` or empty).
"""

from __future__ import annotations

from typing import Any

from careweave.fhir.fhirpath import ast
from careweave.fhir.fhirpath.calls import arg_value, map_items, spec
from careweave.fhir.fhirpath.node import Navigator, Node
from careweave.fhir.fhirpath.runtime import Compiler, Env, FunctionSpec, Step
from careweave.fhir.fhirpath.temporal import Date, Time, now_datetime

__all__ = ["FUNCTIONS"]


def _children_of(navigator: Navigator, items: list[Any]) -> list[Any]:
    out: list[Any] = []
    for item in items:
        if item.__class__ is Node:
            out.extend(navigator.children(item))
    return out


def _descendants_of(navigator: Navigator, items: list[Any]) -> list[Any]:
    out: list[Any] = []
    level = _children_of(navigator, items)
    while level:
        out.extend(level)
        level = _children_of(navigator, level)
    return out


@spec(0, 0)
def _children(c: Compiler, args: tuple[ast.Expr, ...], pos: int) -> Step:
    navigator = c.navigator
    return lambda env, inp, focus: _children_of(navigator, inp)


@spec(0, 0)
def _descendants(c: Compiler, args: tuple[ast.Expr, ...], pos: int) -> Step:
    navigator = c.navigator
    return lambda env, inp, focus: _descendants_of(navigator, inp)


@spec(0, 2)
def _trace(c: Compiler, args: tuple[ast.Expr, ...], pos: int) -> Step:
    name = c.compile(args[0]) if args else None
    projection = c.compile(args[1]) if len(args) > 1 else None

    def run(env: Env, inp: list[Any], focus: list[Any]) -> list[Any]:
        if env.tracer is not None:
            label = "" if name is None else str(arg_value(name, env, focus, "trace()") or "")
            shown = inp
            if projection is not None:
                shown = [x for r in map_items(env, inp, projection) for x in r]
            env.tracer(label, shown)
        return inp

    return run


@spec(0, 0)
def _now(c: Compiler, args: tuple[ast.Expr, ...], pos: int) -> Step:
    return lambda env, inp, focus: [now_datetime(env.now())]


@spec(0, 0)
def _today(c: Compiler, args: tuple[ast.Expr, ...], pos: int) -> Step:
    def run(env: Env, inp: list[Any], focus: list[Any]) -> list[Any]:
        moment = env.now()
        return [Date((moment.year, moment.month, moment.day))]

    return run


@spec(0, 0)
def _time_of_day(c: Compiler, args: tuple[ast.Expr, ...], pos: int) -> Step:
    def run(env: Env, inp: list[Any], focus: list[Any]) -> list[Any]:
        m = env.now()
        return [Time((m.hour, m.minute, m.second, m.microsecond // 1000))]

    return run


@spec(1, 2)
def _aggregate(c: Compiler, args: tuple[ast.Expr, ...], pos: int) -> Step:
    aggregator = c.compile(args[0])
    init = c.compile(args[1]) if len(args) > 1 else None

    def run(env: Env, inp: list[Any], focus: list[Any]) -> list[Any]:
        saved_index, saved_total = env.index, env.total
        try:
            env.total = init(env, focus) if init is not None else []
            for i, item in enumerate(inp):
                env.index = [i]
                env.total = aggregator(env, [item])
            return env.total
        finally:
            env.index, env.total = saved_index, saved_total

    return run


FUNCTIONS: dict[str, FunctionSpec] = {
    "children": _children,
    "descendants": _descendants,
    "trace": _trace,
    "now": _now,
    "today": _today,
    "timeOfDay": _time_of_day,
    "aggregate": _aggregate,
}
