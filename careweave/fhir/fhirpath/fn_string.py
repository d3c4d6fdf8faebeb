"""String functions: indexOf, substring, startsWith, endsWith, contains, upper, lower, replace,
matches, replaceMatches, length, toChars, trim, split, join.

Rules:
1. The input is a single String (FHIR string-like primitives count); empty input gives empty;
   any other single item is an error.
2. Regular expressions are Python ``re`` patterns in DOTALL mode; ``matches`` is true when the
   pattern matches anywhere (anchor with ``^...$`` for a full match). A literal pattern is
   compiled once, at compile time.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from careweave.fhir.fhirpath import ast
from careweave.fhir.fhirpath.calls import arg_value, input_value, spec
from careweave.fhir.fhirpath.errors import FhirPathError
from careweave.fhir.fhirpath.runtime import Compiler, Env, Fn, FunctionSpec, Step
from careweave.fhir.fhirpath.values import system_value

__all__ = ["FUNCTIONS"]

StringOp = Callable[..., Any]


def _string_input(items: list[Any], name: str) -> str | None:
    value = input_value(items, f"{name}()")
    if value is None or value.__class__ is str:
        return value
    raise FhirPathError(f"{name}() expects a String, got {value.__class__.__name__}")


def _string_function(name: str, arity: int, op: StringOp, arg_types: tuple[type, ...]) -> FunctionSpec:
    """A function of a single string input and ``arity`` single-valued arguments."""

    def build(c: Compiler, args: tuple[ast.Expr, ...], pos: int) -> Step:
        compiled = [c.compile(a) for a in args]

        def run(env: Env, inp: list[Any], focus: list[Any]) -> list[Any]:
            text = _string_input(inp, name)
            if text is None:
                return []
            values = []
            for fn, cls in zip(compiled, arg_types, strict=False):
                v = arg_value(fn, env, focus, f"{name}()")
                if v is None:
                    return []
                if not isinstance(v, cls) or v.__class__ is bool:
                    raise FhirPathError(f"{name}(): unexpected argument {v!r}")
                values.append(v)
            result = op(text, *values)
            if result is None:
                return []
            return result if result.__class__ is list else [result]

        return run

    return FunctionSpec(arity, len(arg_types), build)


def _substring(text: str, start: int, length: int | None = None) -> str | None:
    if start < 0 or start >= len(text):
        return None
    if length is None:
        return text[start:]
    return text[start : start + max(length, 0)]


def _regex(c: Compiler, arg: ast.Expr) -> tuple[re.Pattern[str] | None, Fn]:
    if isinstance(arg, ast.Literal) and isinstance(arg.value, str):
        try:
            return re.compile(arg.value, re.DOTALL), c.compile(arg)
        except re.error as exc:
            raise c.error(f"invalid regular expression: {exc}", arg.pos) from exc
    return None, c.compile(arg)


def _pattern(fixed: re.Pattern[str] | None, fn: Fn, env: Env, focus: list[Any]) -> Any:
    if fixed is not None:
        return fixed
    source = arg_value(fn, env, focus, "regular expression")
    if source is None:
        return None
    try:
        return re.compile(str(source), re.DOTALL)
    except re.error as exc:
        raise FhirPathError(f"invalid regular expression: {exc}") from exc


@spec(1, 1)
def _matches(c: Compiler, args: tuple[ast.Expr, ...], pos: int) -> Step:
    fixed, fn = _regex(c, args[0])

    def run(env: Env, inp: list[Any], focus: list[Any]) -> list[Any]:
        text = _string_input(inp, "matches")
        pattern = _pattern(fixed, fn, env, focus)
        if text is None or pattern is None:
            return []
        return [pattern.search(text) is not None]

    return run


@spec(2, 2)
def _replace_matches(c: Compiler, args: tuple[ast.Expr, ...], pos: int) -> Step:
    fixed, fn = _regex(c, args[0])
    substitution = c.compile(args[1])

    def run(env: Env, inp: list[Any], focus: list[Any]) -> list[Any]:
        text = _string_input(inp, "replaceMatches")
        pattern = _pattern(fixed, fn, env, focus)
        replacement = arg_value(substitution, env, focus, "replaceMatches()")
        if text is None or pattern is None or replacement is None:
            return []
        template = re.sub(r"\$(\d+)", r"\\\1", str(replacement))
        return [pattern.sub(template, text)]

    return run


def _join(c: Compiler, args: tuple[ast.Expr, ...], pos: int) -> Step:
    separator = c.compile(args[0]) if args else None

    def run(env: Env, inp: list[Any], focus: list[Any]) -> list[Any]:
        if not inp:
            return []
        sep = "" if separator is None else arg_value(separator, env, focus, "join()") or ""
        values = [system_value(x) for x in inp]
        if any(v.__class__ is not str for v in values):
            raise FhirPathError("join() expects Strings")
        return [str(sep).join(values)]

    return run


def _replace(text: str, pattern: str, substitution: str) -> str:
    return text.replace(pattern, substitution)


FUNCTIONS: dict[str, FunctionSpec] = {
    "indexOf": _string_function("indexOf", 1, lambda t, s: t.find(s), (str,)),
    "substring": _string_function("substring", 1, _substring, (int, int)),
    "startsWith": _string_function("startsWith", 1, lambda t, s: t.startswith(s), (str,)),
    "endsWith": _string_function("endsWith", 1, lambda t, s: t.endswith(s), (str,)),
    "contains": _string_function("contains", 1, lambda t, s: s in t, (str,)),
    "upper": _string_function("upper", 0, str.upper, ()),
    "lower": _string_function("lower", 0, str.lower, ()),
    "replace": _string_function("replace", 2, _replace, (str, str)),
    "length": _string_function("length", 0, len, ()),
    "toChars": _string_function("toChars", 0, list, ()),
    "trim": _string_function("trim", 0, str.strip, ()),
    "split": _string_function("split", 1, lambda t, s: t.split(s) if s else list(t), (str,)),
    "matches": _matches,
    "replaceMatches": _replace_matches,
    "join": FunctionSpec(0, 1, _join),
}
