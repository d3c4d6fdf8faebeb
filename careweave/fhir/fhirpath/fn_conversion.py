"""Conversion functions: iif, toBoolean, toInteger, toDecimal, toString, toDate, toDateTime,
toTime, toQuantity and their convertsTo* twins.

Rules:
1. Each converts a single item (empty gives empty, several is an error); a value that cannot be
   converted gives empty, and ``convertsToX()`` is true exactly when ``toX()`` gives a value.
2. ``iif`` evaluates its criterion and the chosen branch only, against the call's input.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from careweave.fhir.fhirpath import ast
from careweave.fhir.fhirpath.calls import arg_value, input_value, spec
from careweave.fhir.fhirpath.quantity import CALENDAR_KEYWORDS, Quantity
from careweave.fhir.fhirpath.runtime import Compiler, Env, FunctionSpec, Step
from careweave.fhir.fhirpath.temporal import (
    Date,
    DateTime,
    Time,
    parse_date,
    parse_datetime,
    parse_time,
)
from careweave.fhir.fhirpath.ucum import convert
from careweave.fhir.fhirpath.values import to_bool

__all__ = ["FUNCTIONS", "to_string"]

_INTEGER_RE = re.compile(r"[+-]?\d+")
_DECIMAL_RE = re.compile(r"[+-]?\d+(?:\.\d+)?")
_QUANTITY_RE = re.compile(r"([+-]?\d+(?:\.\d+)?)\s*(?:'([^']+)'|([a-z]+))?")
_TRUE_TEXT = frozenset({"true", "t", "yes", "y", "1", "1.0"})
_FALSE_TEXT = frozenset({"false", "f", "no", "n", "0", "0.0"})


def _is_bool(v: Any) -> bool:
    return v is True or v is False


def to_boolean(v: Any) -> bool | None:
    if _is_bool(v):
        return bool(v)
    if v.__class__ is int or v.__class__ is Decimal:
        return True if v == 1 else False if v == 0 else None
    if v.__class__ is str:
        text = v.lower()
        return True if text in _TRUE_TEXT else False if text in _FALSE_TEXT else None
    return None


def to_integer(v: Any) -> int | None:
    if _is_bool(v):
        return int(v)
    if v.__class__ is int:
        return int(v)
    if v.__class__ is str and _INTEGER_RE.fullmatch(v):
        return int(v)
    return None


def to_decimal(v: Any) -> Decimal | None:
    if _is_bool(v):
        return Decimal("1.0") if v else Decimal("0.0")
    if v.__class__ is int or v.__class__ is Decimal:
        return Decimal(v)
    if v.__class__ is str and _DECIMAL_RE.fullmatch(v):
        return Decimal(v)
    return None


def to_string(v: Any) -> str | None:
    if _is_bool(v):
        return "true" if v else "false"
    if v.__class__ is str:
        return str(v)
    if v.__class__ in (int, Decimal, Date, DateTime, Time, Quantity):
        return str(v)
    return None


def to_date(v: Any) -> Date | None:
    if v.__class__ is Date:
        return v
    if v.__class__ is DateTime:
        return Date(v.parts[:3])
    if v.__class__ is str:
        found = parse_date(v)
        if found is None:
            as_datetime = parse_datetime(v)
            found = Date(as_datetime.parts[:3]) if as_datetime is not None else None
        return found
    return None


def to_datetime(v: Any) -> DateTime | None:
    if v.__class__ is DateTime:
        return v
    if v.__class__ is Date:
        return DateTime(v.parts)
    if v.__class__ is str:
        return parse_datetime(v)
    return None


def to_time(v: Any) -> Time | None:
    if v.__class__ is Time:
        return v
    if v.__class__ is str:
        return parse_time(v[1:] if v.startswith("T") else v)
    return None


def to_quantity(v: Any) -> Quantity | None:
    if _is_bool(v):
        return Quantity(Decimal("1.0") if v else Decimal("0.0"), "1")
    if v.__class__ is int or v.__class__ is Decimal:
        return Quantity(Decimal(v), "1")
    if v.__class__ is Quantity:
        return v
    if v.__class__ is str:
        m = _QUANTITY_RE.fullmatch(v.strip())
        if m is None:
            return None
        number, unit, keyword = m.groups()
        if keyword is not None:
            if keyword not in CALENDAR_KEYWORDS:
                return None
            return Quantity(Decimal(number), CALENDAR_KEYWORDS[keyword])
        return Quantity(Decimal(number), unit or "1")
    return None


def _converter(name: str, convert_fn: Callable[[Any], Any], test: bool) -> FunctionSpec:
    def build(c: Compiler, args: tuple[ast.Expr, ...], pos: int) -> Step:
        def run(env: Env, inp: list[Any], focus: list[Any]) -> list[Any]:
            value = input_value(inp, f"{name}()")
            if value is None:
                return []
            result = convert_fn(value)
            if test:
                return [result is not None]
            return [] if result is None else [result]

        return run

    return FunctionSpec(0, 0, build)


@spec(0, 1)
def _to_quantity_unit(c: Compiler, args: tuple[ast.Expr, ...], pos: int) -> Step:
    unit_arg = c.compile(args[0]) if args else None

    def run(env: Env, inp: list[Any], focus: list[Any]) -> list[Any]:
        value = input_value(inp, "toQuantity()")
        quantity = None if value is None else to_quantity(value)
        if quantity is None:
            return []
        if unit_arg is not None:
            unit = arg_value(unit_arg, env, focus, "toQuantity()")
            if unit is None:
                return []
            converted = convert(quantity.value, quantity.unit, str(unit))
            return [] if converted is None else [Quantity(converted, str(unit))]
        return [quantity]

    return run


@spec(2, 3)
def _iif(c: Compiler, args: tuple[ast.Expr, ...], pos: int) -> Step:
    criterion = c.compile(args[0])
    when_true = c.compile(args[1])
    otherwise = c.compile(args[2]) if len(args) > 2 else None

    def run(env: Env, inp: list[Any], focus: list[Any]) -> list[Any]:
        if to_bool(criterion(env, inp), "iif()") is True:
            return when_true(env, inp)
        return otherwise(env, inp) if otherwise is not None else []

    return run


_CONVERSIONS: dict[str, Callable[[Any], Any]] = {
    "Boolean": to_boolean,
    "Integer": to_integer,
    "Decimal": to_decimal,
    "String": to_string,
    "Date": to_date,
    "DateTime": to_datetime,
    "Time": to_time,
    "Quantity": to_quantity,
}

FUNCTIONS: dict[str, FunctionSpec] = {"iif": _iif, "toQuantity": _to_quantity_unit}
for _name, _fn in _CONVERSIONS.items():
    if _name != "Quantity":
        FUNCTIONS["to" + _name] = _converter("to" + _name, _fn, test=False)
    FUNCTIONS["convertsTo" + _name] = _converter("convertsTo" + _name, _fn, test=True)
