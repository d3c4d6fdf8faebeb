"""Equality (``=``), equivalence (``~``) and order (``<``...) of FHIRPath items and collections.

Rules:
1. Items compare by System value: Integer and Decimal compare numerically, Boolean only with
   Boolean, String exactly, dates and times with precision (temporal.py), quantities with unit
   conversion (quantity.py), complex FHIR values by their JSON. Different types are not equal.
2. ``=`` on collections: empty if either side is empty; false if the sizes differ; otherwise
   item by item in order, empty if any pair is unknown (differing precision) and none is false.
3. ``~``: two empties are equivalent; items are matched in any order; strings ignore case and
   collapse whitespace; decimals and quantities are rounded to the less precise operand;
   differing date precision is not equivalent.
4. Order needs one item on each side of comparable types; otherwise it is an error.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from careweave.fhir.fhirpath.errors import FhirPathError
from careweave.fhir.fhirpath.node import Node
from careweave.fhir.fhirpath.quantity import (
    Quantity,
    compare_quantities,
    equivalent_quantities,
)
from careweave.fhir.fhirpath.temporal import Date, DateTime, Time, compare_temporal
from careweave.fhir.fhirpath.values import system_value

__all__ = [
    "compare_items",
    "equal_collections",
    "equal_items",
    "equivalent_collections",
    "equivalent_items",
]

_NUMBERS = (int, Decimal)
_TEMPORAL = (Date, DateTime, Time)


def _is_number(value: Any) -> bool:
    cls = value.__class__
    return cls is int or cls is Decimal


def equal_items(a: Any, b: Any) -> bool | None:
    """``a = b`` for two items: True, False, or None when unknown."""
    va = system_value(a)
    vb = system_value(b)
    if va is None or vb is None:
        return None
    ca, cb = va.__class__, vb.__class__
    if ca is cb and (ca is str or ca is bool or ca is int or ca is Decimal):
        return bool(va == vb)
    if ca is Node or cb is Node:
        return ca is cb and va.value == vb.value
    if _is_number(va) and _is_number(vb):
        return bool(va == vb)
    if isinstance(va, _TEMPORAL) and isinstance(vb, _TEMPORAL):
        try:
            order = compare_temporal(va, vb)
        except TypeError:
            return False
        return None if order is None else order == 0
    if ca is Quantity and cb is Quantity:
        order = compare_quantities(va, vb)
        return None if order is None else order == 0
    return bool(ca is cb and va == vb)


def equal_collections(left: list[Any], right: list[Any]) -> bool | None:
    if not left or not right:
        return None
    if len(left) != len(right):
        return False
    unknown = False
    for a, b in zip(left, right, strict=True):
        result = equal_items(a, b)
        if result is False:
            return False
        if result is None:
            unknown = True
    return None if unknown else True


def _normalize(text: str) -> str:
    return " ".join(text.split()).casefold()


def _places(value: Decimal | int) -> int:
    if value.__class__ is int:
        return 0
    exponent = value.as_tuple().exponent  # type: ignore[union-attr]
    return -exponent if isinstance(exponent, int) and exponent < 0 else 0


def _json_equivalent(a: Any, b: Any) -> bool:
    if a.__class__ is dict and b.__class__ is dict:
        keys = (a.keys() | b.keys()) - {"id", "extension"}
        return all(_json_equivalent(a.get(k), b.get(k)) for k in keys)
    if a.__class__ is list and b.__class__ is list:
        return len(a) == len(b) and all(_json_equivalent(x, y) for x, y in zip(a, b, strict=True))
    if a.__class__ is str and b.__class__ is str:
        return _normalize(a) == _normalize(b)
    return bool(a == b)


def equivalent_items(a: Any, b: Any) -> bool:
    va = system_value(a)
    vb = system_value(b)
    if va is None or vb is None:
        return va is None and vb is None
    ca, cb = va.__class__, vb.__class__
    if ca is str and cb is str:
        return _normalize(va) == _normalize(vb)
    if ca is Node or cb is Node:
        return ca is cb and _json_equivalent(va.value, vb.value)
    if _is_number(va) and _is_number(vb):
        places = min(_places(va), _places(vb))
        step = Decimal(1).scaleb(-places)
        return Decimal(va).quantize(step) == Decimal(vb).quantize(step)
    if isinstance(va, _TEMPORAL) and isinstance(vb, _TEMPORAL):
        try:
            return compare_temporal(va, vb) == 0
        except TypeError:
            return False
    if ca is Quantity and cb is Quantity:
        return equivalent_quantities(va, vb)
    return bool(ca is cb and va == vb)


def equivalent_collections(left: list[Any], right: list[Any]) -> bool:
    if len(left) != len(right):
        return False
    unmatched = list(right)
    for a in left:
        for i, b in enumerate(unmatched):
            if equivalent_items(a, b):
                del unmatched[i]
                break
        else:
            return False
    return True


def compare_items(a: Any, b: Any) -> int | None:
    """-1/0/1 ordering two items; None when unknown (precision, units). Raises FhirPathError
    when the items are not comparable."""
    va = system_value(a)
    vb = system_value(b)
    if va is None or vb is None:
        return None
    ca, cb = va.__class__, vb.__class__
    if (ca is str and cb is str) or (_is_number(va) and _is_number(vb)):
        if ca is bool or cb is bool:
            raise FhirPathError("Booleans cannot be ordered")
        return 0 if va == vb else (-1 if va < vb else 1)
    if isinstance(va, _TEMPORAL) and isinstance(vb, _TEMPORAL):
        try:
            return compare_temporal(va, vb)
        except TypeError:
            pass
    elif ca is Quantity and cb is Quantity:
        return compare_quantities(va, vb)
    raise FhirPathError(f"cannot compare {_type_label(va)} with {_type_label(vb)}")


def _type_label(value: Any) -> str:
    if isinstance(value, Node):
        return value.type or "an element"
    return type(value).__name__
