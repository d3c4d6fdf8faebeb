"""Filtering, projection, subsetting and combining: where, select, repeat, ofType, single, first,
last, tail, skip, take, intersect, exclude, union, combine; and the type functions is(), as(),
type()."""

from __future__ import annotations

from typing import Any

from careweave.fhir.fhirpath import ast
from careweave.fhir.fhirpath.calls import arg_value, collection_function, spec
from careweave.fhir.fhirpath.errors import FhirPathError
from careweave.fhir.fhirpath.node import Node
from careweave.fhir.fhirpath.runtime import Compiler, Env, FunctionSpec, Step
from careweave.fhir.fhirpath.values import (
    TypeInfo,
    distinct,
    item_key,
    single,
    system_type_name,
    to_bool,
)

__all__ = ["FUNCTIONS"]


@spec(1, 1)
def _where(c: Compiler, args: tuple[ast.Expr, ...], pos: int) -> Step:
    criteria = c.compile(args[0])

    def run(env: Env, inp: list[Any], focus: list[Any]) -> list[Any]:
        if not inp:
            return inp
        saved = env.index
        out: list[Any] = []
        try:
            for i, item in enumerate(inp):
                env.index = [i]
                if to_bool(criteria(env, [item]), "where()") is True:
                    out.append(item)
        finally:
            env.index = saved
        return out

    return run


@spec(1, 1)
def _select(c: Compiler, args: tuple[ast.Expr, ...], pos: int) -> Step:
    projection = c.compile(args[0])

    def run(env: Env, inp: list[Any], focus: list[Any]) -> list[Any]:
        saved = env.index
        out: list[Any] = []
        try:
            for i, item in enumerate(inp):
                env.index = [i]
                out.extend(projection(env, [item]))
        finally:
            env.index = saved
        return out

    return run


@spec(1, 1)
def _repeat(c: Compiler, args: tuple[ast.Expr, ...], pos: int) -> Step:
    projection = c.compile(args[0])

    def run(env: Env, inp: list[Any], focus: list[Any]) -> list[Any]:
        out: list[Any] = []
        seen: set[Any] = set()
        pending = inp
        while pending:
            found: list[Any] = []
            for item in pending:
                for child in projection(env, [item]):
                    key = (
                        id(child.value)
                        if child.__class__ is Node and child.value.__class__ is dict
                        else item_key(child)
                    )
                    if key not in seen:
                        seen.add(key)
                        found.append(child)
            out.extend(found)
            pending = found
        return out

    return run


@spec(1, 1)
def _of_type(c: Compiler, args: tuple[ast.Expr, ...], pos: int) -> Step:
    test = c.type_test(args[0])
    return lambda env, inp, focus: [x for x in inp if test(x)]


@spec(1, 1)
def _is(c: Compiler, args: tuple[ast.Expr, ...], pos: int) -> Step:
    test = c.type_test(args[0])

    def run(env: Env, inp: list[Any], focus: list[Any]) -> list[Any]:
        item = single(inp, "is()")
        return [] if item is None else [test(item)]

    return run


def _type_of(items: list[Any]) -> list[Any]:
    out: list[Any] = []
    for item in items:
        if item.__class__ is Node:
            out.append(TypeInfo("FHIR", item.type or "Element"))
        else:
            out.append(TypeInfo("System", system_type_name(item) or "Any"))
    return out


def _single(items: list[Any]) -> list[Any]:
    if len(items) > 1:
        raise FhirPathError("single() on a collection of several items")
    return items


@spec(1, 1)
def _skip(c: Compiler, args: tuple[ast.Expr, ...], pos: int) -> Step:
    count = c.compile(args[0])

    def run(env: Env, inp: list[Any], focus: list[Any]) -> list[Any]:
        n = arg_value(count, env, focus, "skip()")
        if n.__class__ is not int:
            raise FhirPathError("skip() expects an Integer")
        return inp[max(n, 0) :]

    return run


@spec(1, 1)
def _take(c: Compiler, args: tuple[ast.Expr, ...], pos: int) -> Step:
    count = c.compile(args[0])

    def run(env: Env, inp: list[Any], focus: list[Any]) -> list[Any]:
        n = arg_value(count, env, focus, "take()")
        if n.__class__ is not int:
            raise FhirPathError("take() expects an Integer")
        return inp[: max(n, 0)]

    return run


def _other(c: Compiler, args: tuple[ast.Expr, ...]) -> Any:
    return c.compile(args[0])


@spec(1, 1)
def _intersect(c: Compiler, args: tuple[ast.Expr, ...], pos: int) -> Step:
    other = _other(c, args)

    def run(env: Env, inp: list[Any], focus: list[Any]) -> list[Any]:
        keys = {item_key(x) for x in other(env, focus)}
        return distinct([x for x in inp if item_key(x) in keys])

    return run


@spec(1, 1)
def _exclude(c: Compiler, args: tuple[ast.Expr, ...], pos: int) -> Step:
    other = _other(c, args)

    def run(env: Env, inp: list[Any], focus: list[Any]) -> list[Any]:
        keys = {item_key(x) for x in other(env, focus)}
        return [x for x in inp if item_key(x) not in keys]

    return run


@spec(1, 1)
def _union(c: Compiler, args: tuple[ast.Expr, ...], pos: int) -> Step:
    other = _other(c, args)
    return lambda env, inp, focus: distinct(inp + other(env, focus))


@spec(1, 1)
def _combine(c: Compiler, args: tuple[ast.Expr, ...], pos: int) -> Step:
    other = _other(c, args)
    return lambda env, inp, focus: inp + other(env, focus)


FUNCTIONS: dict[str, FunctionSpec] = {
    "where": _where,
    "select": _select,
    "repeat": _repeat,
    "ofType": _of_type,
    "as": _of_type,
    "is": _is,
    "type": collection_function(_type_of),
    "single": collection_function(_single),
    "first": collection_function(lambda items: items[:1]),
    "last": collection_function(lambda items: items[-1:]),
    "tail": collection_function(lambda items: items[1:]),
    "skip": _skip,
    "take": _take,
    "intersect": _intersect,
    "exclude": _exclude,
    "union": _union,
    "combine": _combine,
}
