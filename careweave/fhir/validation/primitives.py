"""Checks for FHIR primitive values as JSON carries them: JSON type, lexical form, real values.

Rules:
1. One :data:`PrimitiveCheck` per primitive type, built once by :func:`build_primitive_checks` from
   the regexes in the definitions (compiled once here) plus what a regex cannot say: real calendar
   dates, 32-bit integer ranges, strict base64, the 1 MB string limit.
2. A check takes the JSON value and returns ``None`` when it is valid, or a :class:`Problem`: the
   severity and an English clause that completes "<element> ..." (``"is not a valid date"``).
3. JSON types: boolean -> JSON boolean; integer, positiveInt, unsignedInt -> JSON integer (not a
   boolean); decimal -> JSON number; every other primitive -> JSON string. Strings are never empty;
   a whitespace-only ``string``/``markdown`` is a warning (the spec says SHOULD NOT).
4. ``xhtml`` is checked by :mod:`careweave.fhir.validation.xhtml`, not here.
5. A string check remembers the short values it found valid (values recur: codes, systems, dates,
   displays) and does not check them again; :func:`known_valid` hands the walker that set, so a
   value already in it is not even passed to the check.
"""

from __future__ import annotations

import binascii
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date

from careweave.fhir.elements import ElementModel

__all__ = ["PrimitiveCheck", "Problem", "build_primitive_checks", "json_type_name", "known_valid"]

_INT32_MIN = -(2**31)
_INT32_MAX = 2**31 - 1
_MAX_STRING = 1024 * 1024
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f]")
_DATE_PARTS = re.compile(r"(\d{4})(?:-(\d{2})(?:-(\d{2}))?)?")
_FRACTION_DIGITS = re.compile(r"\.(\d+)")
_MEMO_SIZE = 4096  # valid values remembered per primitive type
_MEMO_LENGTH = 256  # longer values are always checked


@dataclass(frozen=True, slots=True)
class Problem:
    """What is wrong with one primitive value."""

    severity: str  # error | warning
    code: str  # IssueType: value | structure
    clause: str  # completes "<element> <clause>"


PrimitiveCheck = Callable[[object], Problem | None]

_STRING_TYPES = frozenset(
    {
        "string",
        "markdown",
        "code",
        "id",
        "uri",
        "url",
        "canonical",
        "oid",
        "uuid",
        "base64Binary",
        "date",
        "dateTime",
        "instant",
        "time",
        "xhtml",
    }
)
_INTEGER_TYPES = {
    "integer": (_INT32_MIN, "integer"),
    "positiveInt": (1, "positive integer"),
    "unsignedInt": (0, "unsigned integer"),
}


def json_type_name(type_code: str) -> str:
    """The JSON type a primitive of ``type_code`` must have, as a word for messages."""
    if type_code == "boolean":
        return "boolean"
    if type_code in _INTEGER_TYPES:
        return "integer"
    if type_code == "decimal":
        return "number"
    return "string"


def build_primitive_checks(model: ElementModel) -> Mapping[str, PrimitiveCheck]:
    """A check for every primitive type in ``model`` (``xhtml`` only checks the JSON type)."""
    checks: dict[str, PrimitiveCheck] = {}
    for name, typedef in model.types.items():
        if typedef.kind != "primitive-type":
            continue
        # base64's regex backtracks badly on long payloads; the strict decoder decides instead.
        regex = None if name == "base64Binary" else typedef.regex
        pattern = re.compile(regex) if regex else None
        checks[name] = _make_check(name, pattern)
    return checks


def _make_check(name: str, pattern: re.Pattern[str] | None) -> PrimitiveCheck:
    if name == "boolean":
        return _check_boolean
    if name in _INTEGER_TYPES:
        low, word = _INTEGER_TYPES[name]
        return lambda value: _check_integer(value, low, word)
    if name == "decimal":
        return _check_decimal
    semantic = _SEMANTIC.get(name)
    loose = name in ("string", "markdown")
    fullmatch = pattern.fullmatch if pattern is not None else None
    # short values found valid (codes, systems, dates recur): a value's check never changes, so
    # they are not checked again; bounded, it starts over when full
    valid: set[str] = set()

    def check(value: object) -> Problem | None:
        if type(value) is not str:
            return Problem("error", "structure", "must be a JSON string")
        if value in valid:
            return None
        if not value:
            return Problem("error", "value", "must not be an empty string")
        if len(value) > _MAX_STRING:
            return Problem("error", "value", "is longer than the 1 MB limit for strings")
        if loose:
            if value.isspace():
                return Problem("warning", "value", "should not be whitespace only")
            if _CONTROL.search(value):
                return Problem("warning", "value", "should not contain control characters")
            problem = None
        else:
            if fullmatch is not None and fullmatch(value) is None:
                clause = _explain(name, value) or f"is not a valid {name} ({_shown(value)})"
                return Problem("error", "value", clause)
            problem = semantic(value) if semantic is not None else None
        if problem is None and len(value) <= _MEMO_LENGTH:
            if len(valid) >= _MEMO_SIZE:
                valid.clear()
            valid.add(value)
        return problem

    check.known_valid = valid  # type: ignore[attr-defined]  # rule 5
    return check


def known_valid(check: PrimitiveCheck | None) -> set[str] | None:
    """The strings a check has found valid so far (rule 5): for any of them it returns None; the
    set is the check's own, and grows and starts over as the check runs. None for a check that
    keeps none (boolean, integer and decimal checks)."""
    found = getattr(check, "known_valid", None)
    return found if isinstance(found, set) else None


def _shown(value: str) -> str:
    return repr(value if len(value) <= 60 else value[:57] + "...")


def _check_boolean(value: object) -> Problem | None:
    if type(value) is bool:
        return None
    return Problem("error", "structure", "must be a JSON boolean (true or false)")


def _check_integer(value: object, low: int, word: str) -> Problem | None:
    if type(value) is not int:
        return Problem("error", "structure", f"must be a JSON integer ({word})")
    if value < low or value > _INT32_MAX:
        limit = ">= 1" if low == 1 else ">= 0" if low == 0 else "a 32-bit signed integer"
        return Problem("error", "value", f"is out of range ({value}); a {word} is {limit}")
    return None


def _check_decimal(value: object) -> Problem | None:
    if type(value) is int or type(value) is float:
        return None
    return Problem("error", "structure", "must be a JSON number (decimal)")


def _check_calendar(value: str) -> Problem | None:
    match = _DATE_PARTS.match(value)
    if match is None or match.group(3) is None:
        return None  # a year or year-month: the regex has checked the month
    year, month, day = (int(g) for g in match.groups())
    try:
        date(year, month, day)
    except ValueError:
        return Problem("error", "value", f"is not a real calendar date ({_shown(value)})")
    return _check_time_part(value)


def _check_time_part(value: str) -> Problem | None:
    if "T" not in value:
        return None
    second = value[17:19]
    if second == "60" and value[14:16] != "59":
        return Problem("error", "value", f"has a leap second that is not at :59:60 ({_shown(value)})")
    return None


def _check_time(value: str) -> Problem | None:
    if value[6:8] == "60" and value[3:5] != "59":
        return Problem("error", "value", f"has a leap second that is not at :59:60 ({_shown(value)})")
    return None


def _check_base64(value: str) -> Problem | None:
    compact = "".join(value.split())
    try:
        binascii.a2b_base64(compact, strict_mode=True)
    except (binascii.Error, ValueError):
        return Problem("error", "value", "is not valid base64")
    return None


_SEMANTIC: Mapping[str, Callable[[str], Problem | None]] = {
    "date": _check_calendar,
    "dateTime": _check_calendar,
    "instant": _check_calendar,
    "time": _check_time,
    "base64Binary": _check_base64,
}


def _explain(type_code: str, value: str) -> str | None:
    """A precise clause for common lexical mistakes, in place of the bare regex clause."""
    if type_code in ("dateTime", "instant") and "T" in value:
        time = re.split(r"[Z+-]", value.split("T", 1)[1], maxsplit=1)[0]
        zoned = len(time) < len(value.split("T", 1)[1])
        if time.count(":") < 2:
            return f"has a time without seconds ({_shown(value)})"
        if not zoned:
            return f"has a time but no time zone ({_shown(value)})"
    if type_code == "instant" and "T" not in value:
        return f"needs a time with seconds and a time zone ({_shown(value)})"
    if type_code == "code" and value.strip() != value:
        return f"has leading or trailing whitespace ({_shown(value)})"
    if type_code == "id" and len(value) > 64:
        return "is longer than 64 characters"
    return None
