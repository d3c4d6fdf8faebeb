"""System.Quantity: a Decimal value with a UCUM unit or a calendar duration keyword.

Rules:
1. ``unit`` is a UCUM code (``'mg'``, ``'1'``) or a calendar keyword in the singular (``year``,
   ``week``); ``4 days`` is stored as ``Quantity(4, 'day')``.
2. Equality and order convert the right operand into the left's unit (see ucum.py); quantities
   whose units are not commensurable compare as unknown (None).
3. Equivalence rounds both values, in the left operand's unit, to the step of the less precise
   one (``4 'g' ~ 4040 'mg'``, but ``1.00 'kg' !~ 1040 'g'``).
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

from careweave.fhir.fhirpath.ucum import canonical, convert

__all__ = [
    "CALENDAR_KEYWORDS",
    "Quantity",
    "add_quantities",
    "compare_quantities",
    "divide_quantities",
    "equivalent_quantities",
    "multiply_quantities",
]

CALENDAR_KEYWORDS: dict[str, str] = {
    "year": "year", "years": "year", "month": "month", "months": "month",
    "week": "week", "weeks": "week", "day": "day", "days": "day", "hour": "hour", "hours": "hour",
    "minute": "minute", "minutes": "minute", "second": "second", "seconds": "second",
    "millisecond": "millisecond", "milliseconds": "millisecond",
}  # fmt: skip


@dataclass(frozen=True, slots=True)
class Quantity:
    value: Decimal
    unit: str = "1"

    @property
    def is_calendar(self) -> bool:
        return self.unit in CALENDAR_KEYWORDS

    def __str__(self) -> str:
        if self.is_calendar:
            plural = "" if self.value == 1 else "s"
            return f"{self.value} {self.unit}{plural}"
        return f"{self.value} '{self.unit}'"


def compare_quantities(a: Quantity, b: Quantity) -> int | None:
    """-1/0/1, or None when the units are not commensurable."""
    other = convert(b.value, b.unit, a.unit)
    if other is None:
        return None
    if a.value == other:
        return 0
    return -1 if a.value < other else 1


def _places(value: Decimal) -> int:
    exponent = value.as_tuple().exponent
    return -exponent if isinstance(exponent, int) and exponent < 0 else 0


def equivalent_quantities(a: Quantity, b: Quantity) -> bool:
    other = convert(b.value, b.unit, a.unit)
    if other is None:
        return False
    step = Decimal(1).scaleb(-_places(a.value))
    step_b = convert(Decimal(1).scaleb(-_places(b.value)), b.unit, a.unit)
    if step_b is not None and step_b > step:
        step = step_b
    return (a.value / step).to_integral_value(ROUND_HALF_UP) == (other / step).to_integral_value(
        ROUND_HALF_UP
    )


def add_quantities(a: Quantity, b: Quantity, sign: int) -> Quantity | None:
    other = convert(b.value, b.unit, a.unit)
    if other is None:
        return None
    return Quantity(a.value + sign * other, a.unit)


def _unit_product(a: str, b: str, op: str) -> str:
    a = _ucum_of(a)
    b = _ucum_of(b)
    if b == "1":
        return a
    if a == "1":
        return b if op == "." else f"1/{b}"
    return f"({a}){op}({b})"


def _ucum_of(unit: str) -> str:
    keyword = CALENDAR_KEYWORDS.get(unit)
    if keyword is None:
        return unit
    return {"year": "a", "month": "mo", "week": "wk", "day": "d", "hour": "h",
            "minute": "min", "second": "s", "millisecond": "ms"}[keyword]  # fmt: skip


def multiply_quantities(a: Quantity, b: Quantity) -> Quantity | None:
    unit = _unit_product(a.unit, b.unit, ".")
    return Quantity(a.value * b.value, unit) if canonical(unit) is not None else None


def divide_quantities(a: Quantity, b: Quantity) -> Quantity | None:
    if b.value == 0:
        return None
    if a.unit == b.unit:
        return Quantity(a.value / b.value, "1")
    unit = _unit_product(a.unit, b.unit, "/")
    return Quantity(a.value / b.value, unit) if canonical(unit) is not None else None
