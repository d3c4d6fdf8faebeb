"""Math functions: abs, ceiling, exp, floor, ln, log, power, round, sqrt, truncate; and the
aggregates sum, min, max, avg (FHIRPath 3.0, on Integers, Decimals or Quantities).

Rules:
1. The input is a single Integer, Decimal (or, for ``abs``, Quantity); empty gives empty.
2. Results that are not real numbers (``sqrt`` of a negative, ``ln`` of zero) give empty.
3. ``round`` rounds half away from zero; ``ceiling``/``floor``/``truncate`` give Integers.
4. ``sum`` of nothing is 0; ``min``/``max``/``avg`` of nothing are empty. Items are compared and
   added with the operators' rules (quantities convert units).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

from careweave.fhir.fhirpath import ast
from careweave.fhir.fhirpath.calls import arg_value, collection_function, input_value
from careweave.fhir.fhirpath.equality import compare_items
from careweave.fhir.fhirpath.errors import FhirPathError
from careweave.fhir.fhirpath.quantity import Quantity, add_quantities
from careweave.fhir.fhirpath.runtime import Compiler, Env, FunctionSpec, Step
from careweave.fhir.fhirpath.values import system_value

__all__ = ["FUNCTIONS"]


def _number(value: Any, name: str) -> Any:
    cls = value.__class__
    if cls is int or cls is Decimal:
        return value
    raise FhirPathError(f"{name}() expects a number, got {cls.__name__}")


def _abs(value: Any) -> Any:
    if value.__class__ is Quantity:
        return Quantity(abs(value.value), value.unit)
    return abs(_number(value, "abs"))


def _exp(value: Any) -> Decimal:
    return Decimal(value).exp()


def _ln(value: Any) -> Decimal | None:
    return Decimal(value).ln() if value > 0 else None


def _sqrt(value: Any) -> Decimal | None:
    return Decimal(value).sqrt() if value >= 0 else None


def _log(value: Any, base: Any) -> Decimal | None:
    if value <= 0 or base <= 0 or base == 1:
        return None
    return Decimal(value).ln() / Decimal(base).ln()


def _power(value: Any, exponent: Any) -> Any:
    if value.__class__ is int and exponent.__class__ is int and exponent >= 0:
        return value**exponent
    try:
        result = Decimal(value) ** Decimal(exponent)
    except InvalidOperation:
        return None
    return None if result.is_nan() else result


def _round(value: Any, precision: Any = 0) -> Decimal:
    if precision.__class__ is not int or precision < 0:
        raise FhirPathError("round() expects a non-negative Integer precision")
    return Decimal(value).quantize(Decimal(1).scaleb(-precision), rounding=ROUND_HALF_UP)


def _math_function(name: str, op: Callable[..., Any], min_args: int, max_args: int) -> FunctionSpec:
    def build(c: Compiler, args: tuple[ast.Expr, ...], pos: int) -> Step:
        compiled = [c.compile(a) for a in args]

        def run(env: Env, inp: list[Any], focus: list[Any]) -> list[Any]:
            value = input_value(inp, f"{name}()")
            if value is None:
                return []
            if name != "abs":
                value = _number(value, name)
            extra = []
            for fn in compiled:
                arg = arg_value(fn, env, focus, f"{name}()")
                if arg is None:
                    return []
                extra.append(_number(arg, name))
            result = op(value, *extra)
            return [] if result is None else [result]

        return run

    return FunctionSpec(min_args, max_args, build)


def _sum(items: list[Any]) -> list[Any]:
    total: Any = 0
    for item in items:
        total = _add(total, system_value(item))
    return [total]


def _extreme(items: list[Any], sign: int) -> list[Any]:
    best: Any = None
    for item in items:
        if best is None or (compare_items(item, best) or 0) * sign > 0:
            best = item
    return [] if best is None else [system_value(best)]


def _avg(items: list[Any]) -> list[Any]:
    if not items:
        return []
    (total,) = _sum(items)
    if total.__class__ is Quantity:
        return [Quantity(total.value / len(items), total.unit)]
    return [Decimal(total) / len(items)]


def _add(a: Any, b: Any) -> Any:
    if a == 0 and a.__class__ is int and b.__class__ is Quantity:
        return b
    if a.__class__ is Quantity and b.__class__ is Quantity:
        result = add_quantities(a, b, 1)
        if result is None:
            raise FhirPathError("sum() of quantities with incompatible units")
        return result
    return _number(a, "sum") + _number(b, "sum")


FUNCTIONS: dict[str, FunctionSpec] = {
    "sum": collection_function(_sum),
    "min": collection_function(lambda items: _extreme(items, -1)),
    "max": collection_function(lambda items: _extreme(items, 1)),
    "avg": collection_function(_avg),
    "abs": _math_function("abs", _abs, 0, 0),
    "ceiling": _math_function("ceiling", math.ceil, 0, 0),
    "floor": _math_function("floor", math.floor, 0, 0),
    "truncate": _math_function("truncate", math.trunc, 0, 0),
    "exp": _math_function("exp", _exp, 0, 0),
    "ln": _math_function("ln", _ln, 0, 0),
    "sqrt": _math_function("sqrt", _sqrt, 0, 0),
    "log": _math_function("log", _log, 1, 1),
    "power": _math_function("power", _power, 1, 1),
    "round": _math_function("round", _round, 0, 1),
}
