"""The math operators ``+ - * / div mod &`` and unary minus, on System values.

Rules:
1. Each operand is a single item (an empty operand makes the result empty; several is an error).
2. Integer op Integer stays Integer, except ``/`` which is always Decimal; mixing Integer and
   Decimal gives Decimal. Division (``/``, ``div``, ``mod``) by zero gives empty.
3. ``+`` also concatenates Strings and adds a time-valued Quantity to a Date/DateTime/Time;
   ``-`` subtracts one; quantities add, subtract, multiply and divide with unit conversion.
4. ``&`` concatenates Strings, treating an empty operand as ``''``.
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal, DivisionByZero, InvalidOperation
from typing import Any

from careweave.fhir.fhirpath.errors import FhirPathError
from careweave.fhir.fhirpath.quantity import (
    Quantity,
    add_quantities,
    divide_quantities,
    multiply_quantities,
)
from careweave.fhir.fhirpath.temporal import Date, DateTime, Time, add_duration
from careweave.fhir.fhirpath.values import single, system_value

__all__ = ["BINARY_MATH", "concatenate", "negate"]

Operation = Callable[[Any, Any], Any]


def _num(value: Any) -> bool:
    cls = value.__class__
    return cls is int or cls is Decimal


def _fail(op: str, a: Any, b: Any) -> FhirPathError:
    return FhirPathError(f"operator {op} cannot apply to {a.__class__.__name__} and {b.__class__.__name__}")


def _add(a: Any, b: Any) -> Any:
    if _num(a) and _num(b):
        return a + b
    if a.__class__ is str and b.__class__ is str:
        return a + b
    if isinstance(a, Date | DateTime | Time) and b.__class__ is Quantity:
        result = add_duration(a, b.value, b.unit)
        if result is None:
            raise _fail("+", a, b)
        return result
    if a.__class__ is Quantity and b.__class__ is Quantity:
        return add_quantities(a, b, 1)
    raise _fail("+", a, b)


def _subtract(a: Any, b: Any) -> Any:
    if _num(a) and _num(b):
        return a - b
    if isinstance(a, Date | DateTime | Time) and b.__class__ is Quantity:
        result = add_duration(a, -b.value, b.unit)
        if result is None:
            raise _fail("-", a, b)
        return result
    if a.__class__ is Quantity and b.__class__ is Quantity:
        return add_quantities(a, b, -1)
    raise _fail("-", a, b)


def _as_quantity(value: Any) -> Quantity | None:
    if _num(value):
        return Quantity(Decimal(value), "1")
    return value if value.__class__ is Quantity else None


def _multiply(a: Any, b: Any) -> Any:
    if _num(a) and _num(b):
        return a * b
    qa, qb = _as_quantity(a), _as_quantity(b)
    if qa is None or qb is None:
        raise _fail("*", a, b)
    return multiply_quantities(qa, qb)


def _divide(a: Any, b: Any) -> Any:
    if _num(a) and _num(b):
        if b == 0:
            return None
        try:
            return Decimal(a) / Decimal(b)
        except (DivisionByZero, InvalidOperation):
            return None
    qa, qb = _as_quantity(a), _as_quantity(b)
    if qa is None or qb is None:
        raise _fail("/", a, b)
    return divide_quantities(qa, qb)


def _div(a: Any, b: Any) -> Any:
    if not (_num(a) and _num(b)):
        raise _fail("div", a, b)
    if b == 0:
        return None
    quotient = Decimal(a) / Decimal(b)
    return int(quotient)  # truncates toward zero


def _mod(a: Any, b: Any) -> Any:
    if not (_num(a) and _num(b)):
        raise _fail("mod", a, b)
    if b == 0:
        return None
    if a.__class__ is int and b.__class__ is int:
        remainder = abs(a) % abs(b)
        return remainder if a >= 0 else -remainder
    return Decimal(a) % Decimal(b)  # Decimal's % keeps the sign of the dividend


_OPERATIONS: dict[str, Operation] = {
    "+": _add,
    "-": _subtract,
    "*": _multiply,
    "/": _divide,
    "div": _div,
    "mod": _mod,
}


def _binary(op: str) -> Callable[[list[Any], list[Any]], list[Any]]:
    operation = _OPERATIONS[op]

    def apply(left: list[Any], right: list[Any]) -> list[Any]:
        a = system_value(single(left, f"operator {op}"))
        b = system_value(single(right, f"operator {op}"))
        if a is None or b is None:
            return []
        result = operation(a, b)
        return [] if result is None else [result]

    return apply


BINARY_MATH: dict[str, Callable[[list[Any], list[Any]], list[Any]]] = {op: _binary(op) for op in _OPERATIONS}


def concatenate(left: list[Any], right: list[Any]) -> list[Any]:
    a = system_value(single(left, "operator &"))
    b = system_value(single(right, "operator &"))
    a = "" if a is None else a
    b = "" if b is None else b
    if a.__class__ is not str or b.__class__ is not str:
        raise _fail("&", a, b)
    return [a + b]


def negate(items: list[Any]) -> list[Any]:
    value = system_value(single(items, "unary -"))
    if value is None:
        return []
    if _num(value):
        return [-value]
    if value.__class__ is Quantity:
        return [Quantity(-value.value, value.unit)]
    raise FhirPathError(f"unary - cannot apply to {value.__class__.__name__}")
