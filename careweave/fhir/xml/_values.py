"""Primitive values: the text of an XML ``value`` attribute <-> the FHIR JSON value.

Rules:
1. The JSON shape follows the type (json.html): ``boolean`` is a JSON boolean, ``integer`` and the
   types derived from it (``unsignedInt``, ``positiveInt``) are JSON integers, ``decimal`` is a JSON
   number, every other primitive is a JSON string. The derivation comes from the definitions.
2. Booleans and numbers must have the lexical form of their JSON kind, taken from the regex of
   ``boolean``, ``integer`` or ``decimal`` in the definitions, since JSON cannot carry them
   otherwise; any other text is CW-1015. The constraints of derived types (``positiveInt`` > 0,
   the 32-bit range) are left to the validator, as they are for JSON input, and strings are taken
   as they are. Integers beyond 64 bits are refused (orjson cannot write them).
3. Decimals are kept exact, so that orjson writes the digits the XML held. The text becomes an
   ``int`` (no fraction or exponent) or a ``float`` when orjson writes exactly that text back
   (``0.1``, ``100.0``, ``2.5``); otherwise it becomes an ``orjson.Fragment`` holding the text, which
   orjson writes verbatim (``1.50``, ``0.10``, ``1e3``, ``-0``, long digit strings). Precision is
   significant for FHIR decimals (search ranges and display), and ``1.50`` as a float would be
   written ``1.5``. With ``exact=False`` the value is what ``orjson.loads`` gives for that text.
"""

from __future__ import annotations

import math
import re
from typing import Any, Literal

import orjson

from careweave.fhir.elements import ElementModel

__all__ = ["Kind", "json_kind", "read_primitive", "write_primitive"]

Kind = Literal["boolean", "integer", "decimal", "string"]

_INT64 = (-(2**63), 2**63 - 1)
_FALLBACK_REGEX: dict[Kind, str] = {  # used only if the definitions carry no regex
    "boolean": "true|false",
    "integer": "-?(0|[1-9][0-9]*)",
    "decimal": r"-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?",
}


def json_kind(model: ElementModel, type_code: str) -> Kind:
    """How FHIR JSON represents a primitive of this type."""
    if model.is_subtype(type_code, "boolean"):
        return "boolean"
    if model.is_subtype(type_code, "integer"):
        return "integer"
    if model.is_subtype(type_code, "decimal"):
        return "decimal"
    return "string"


def read_primitive(text: str, kind: Kind, model: ElementModel, *, exact: bool) -> Any:
    """The JSON value of ``text``; raises ValueError with a reason when the text does not fit."""
    if kind == "string":
        return text
    typedef = model.types.get(kind)
    pattern = (typedef.regex if typedef else None) or _FALLBACK_REGEX[kind]
    if re.fullmatch(pattern, text) is None:
        raise ValueError(f"{text[:40]!r} is not a valid {kind}")
    if kind == "boolean":
        return text == "true"
    if kind == "integer":
        if len(text) > 20 or not _INT64[0] <= int(text) <= _INT64[1]:
            raise ValueError(f"{text[:40]} is out of the 64-bit range JSON numbers keep here")
        return int(text)
    return _read_decimal(text, exact=exact)


def _read_decimal(text: str, *, exact: bool) -> Any:
    number: int | float
    if "." in text or "e" in text or "E" in text or len(text) > 20:
        number = float(text)
    else:
        number = int(text)
        if not _INT64[0] <= number <= _INT64[1]:
            number = float(text)  # as orjson.loads reads an integer beyond 64 bits
    if not math.isfinite(number):
        raise ValueError(f"the decimal {text[:40]} is out of range")
    if not exact or orjson.dumps(number) == text.encode():
        return number
    return orjson.Fragment(text)


def write_primitive(value: Any, kind: Kind) -> str | None:
    """The XML text of a JSON primitive value, or None when the JSON type does not fit ``kind``."""
    if kind == "boolean":
        return ("true" if value else "false") if isinstance(value, bool) else None
    if kind == "string":
        return value if isinstance(value, str) else None
    if isinstance(value, bool):
        return None
    if kind == "integer":
        return str(value) if isinstance(value, int) else None
    if isinstance(value, int) or (isinstance(value, float) and math.isfinite(value)):
        return str(value) if isinstance(value, int) else orjson.dumps(value).decode()
    if isinstance(value, orjson.Fragment):
        return orjson.dumps(value).decode()
    return None
