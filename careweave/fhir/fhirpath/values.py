"""Items of a FHIRPath collection and their System values.

Rules:
1. A collection is a Python list. An item is a :class:`Node` (a value from FHIR JSON, typed by
   the model) or a System value: ``bool``, ``int`` (Integer), ``Decimal``, ``str`` (String),
   Date, DateTime, Time, Quantity, or a TypeInfo (the result of ``type()``).
2. ``system_value`` turns a FHIR primitive Node into its System value (``decimal`` -> Decimal,
   ``dateTime`` -> DateTime, ``Quantity`` -> Quantity...); complex Nodes stay Nodes. A primitive
   with no value (only an extension) gives None, which operators treat as empty.
3. Booleans are evaluated by singleton rules: empty is unknown (None), one Boolean is itself,
   one other item is true, more than one item is an error.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

import orjson

from careweave.fhir.fhirpath.errors import FhirPathError
from careweave.fhir.fhirpath.node import Node
from careweave.fhir.fhirpath.quantity import Quantity
from careweave.fhir.fhirpath.temporal import (
    Date,
    DateTime,
    Time,
    parse_date,
    parse_datetime,
    parse_time,
    temporal_key,
)

__all__ = [
    "QUANTITY_TYPES",
    "TypeInfo",
    "distinct",
    "item_key",
    "quantity_of",
    "single",
    "system_type_name",
    "system_value",
    "to_bool",
    "to_decimal",
]

UCUM = "http://unitsofmeasure.org"
QUANTITY_TYPES = frozenset(
    {"Quantity", "Age", "Count", "Distance", "Duration", "SimpleQuantity", "MoneyQuantity"}
)


@dataclass(frozen=True, slots=True)
class TypeInfo:
    """The result of ``type()``: ``namespace`` ("FHIR" or "System") and ``name``."""

    namespace: str
    name: str

    def fhirpath_member(self, name: str) -> list[Any]:
        if name == "namespace":
            return [self.namespace]
        if name == "name":
            return [self.name]
        return []


def to_decimal(value: Any) -> Decimal:
    if value.__class__ is float:
        return Decimal(repr(value))
    return Decimal(value)


def _as_is(value: Any) -> Any:
    return value


def _decimal(value: Any) -> Any:
    try:
        return to_decimal(value)
    except (InvalidOperation, TypeError, ValueError):
        return value


def _date(value: Any) -> Any:
    parsed = parse_date(value) if value.__class__ is str else None
    return parsed if parsed is not None else value


def _datetime(value: Any) -> Any:
    parsed = parse_datetime(value) if value.__class__ is str else None
    return parsed if parsed is not None else value


def _time(value: Any) -> Any:
    parsed = parse_time(value) if value.__class__ is str else None
    return parsed if parsed is not None else value


_CONVERTERS: dict[str, Callable[[Any], Any]] = {
    "decimal": _decimal,
    "date": _date,
    "dateTime": _datetime,
    "instant": _datetime,
    "time": _time,
}


def quantity_of(data: dict[str, Any]) -> Quantity | None:
    """The System Quantity of a FHIR Quantity (UCUM code, else the unit text), or None."""
    value = data.get("value")
    if value is None:
        return None
    code = data.get("code")
    system = data.get("system")
    if code is not None and (system is None or system == UCUM):
        unit = code
    else:
        unit = data.get("unit") or code or "1"
    return Quantity(to_decimal(value), unit)


def system_value(item: Any) -> Any:
    """The System value of an item (see rule 2)."""
    if item.__class__ is not Node:
        return item
    value = item.value
    if value is None:
        return None
    if value.__class__ is dict:
        if item.type in QUANTITY_TYPES:
            return quantity_of(value) or item
        return item
    convert = _CONVERTERS.get(item.type)
    if convert is not None:
        return convert(value)
    if value.__class__ is float:
        return to_decimal(value)
    return value


_SYSTEM_NAMES: dict[type, str] = {
    bool: "Boolean",
    int: "Integer",
    Decimal: "Decimal",
    str: "String",
    Date: "Date",
    DateTime: "DateTime",
    Time: "Time",
    Quantity: "Quantity",
}


def system_type_name(value: Any) -> str:
    """The System type name of a System value (``"Integer"``), or "" for anything else."""
    return _SYSTEM_NAMES.get(value.__class__, "")


def single(items: list[Any], what: str) -> Any:
    """The only item of a collection, None when empty; error when several."""
    if not items:
        return None
    if len(items) > 1:
        raise FhirPathError(f"{what} expects a single item, got {len(items)}")
    return items[0]


def to_bool(items: list[Any], what: str = "a boolean operator") -> bool | None:
    """Singleton evaluation of a collection as a Boolean (rule 3)."""
    if not items:
        return None
    if len(items) > 1:
        raise FhirPathError(f"{what} expects a single boolean, got {len(items)} items")
    item = items[0]
    if item is True or item is False:
        return item
    if item.__class__ is Node and item.value.__class__ is bool:
        return bool(item.value)
    return True


def item_key(item: Any) -> Any:
    """A hashable key such that items equal under ``=`` share a key (for ``|``, distinct())."""
    if item.__class__ is Node and item.value.__class__ is dict:
        return ("j", orjson.dumps(item.value, option=orjson.OPT_SORT_KEYS))
    value = system_value(item)
    cls = value.__class__
    if cls is str:
        return value
    if cls is bool:
        return ("b", value)
    if cls is int or cls is Decimal:
        return ("n", value)
    if cls is Node:
        data = value.value
        return ("j", orjson.dumps(data, option=orjson.OPT_SORT_KEYS)) if data is not None else id(value)
    if cls is Date or cls is DateTime or cls is Time:
        return temporal_key(value)
    if cls is Quantity:
        return ("q", value.value.normalize(), value.unit)
    if value is None:
        return ("x", id(item))
    return (cls.__name__, str(value))


def distinct(items: list[Any]) -> list[Any]:
    """The items without repeats (by ``item_key``), first occurrence kept."""
    if len(items) < 2:
        return items
    seen: set[Any] = set()
    out: list[Any] = []
    for item in items:
        key = item_key(item)
        if key not in seen:
            seen.add(key)
            out.append(item)
    return out
