"""v2 data types -> FHIR data types (the IG's datatype maps), as pure functions.

Rules:
1. Each function takes a :class:`Repetition` (or text) and returns a FHIR JSON dict, or ``None``
   when the v2 value is empty: empty v2 never becomes an empty FHIR element.
2. Timestamps (TS/DTM): ``YYYY[MM[DD[HH[MM[SS[.S...]]]]]][+/-ZZZZ]``. A value with a time and no
   offset is local time in the ``timezone`` the caller gives (UK feeds: Europe/London). A value
   that is not a real date raises :class:`Hl7v2Error` (102, with its location).
3. Coded values (CE/CWE/CNE): CWE-3 (or 6 for the alternate code) names the coding system via
   table 0396 (:data:`~careweave.hl7v2.tables.CODING_SYSTEM`, ``HL7nnnn`` -> the v2 table's
   CodeSystem); an unknown or local system keeps code and display without a system.
"""

from __future__ import annotations

import re
from datetime import datetime, tzinfo
from typing import Any

from careweave.hl7v2.errors import Hl7v2Error, Location
from careweave.hl7v2.message import Repetition
from careweave.hl7v2.tables import (
    ADDRESS_TYPE,
    ADDRESS_USE,
    CODING_SYSTEM,
    NAME_USE,
    TELECOM_EQUIPMENT,
    TELECOM_USE,
)

__all__ = [
    "address",
    "codeable",
    "coding_system",
    "contact_point",
    "date",
    "date_time",
    "human_name",
    "instant",
    "number",
]

Json = dict[str, Any]

_TS = re.compile(r"(\d{4})(\d{2})?(\d{2})?(\d{2})?(\d{2})?(\d{2})?(?:\.(\d{1,4}))?([+-]\d{4}|Z)?\Z", re.ASCII)
_V2_TABLE = re.compile(r"HL7(\d{4})\Z", re.ASCII)
_NUMBER = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)\Z", re.ASCII)


def coding_system(name: str) -> str | None:
    """The FHIR system URI for a table 0396 coding system name, or None (rule 3)."""
    if not name:
        return None
    found = CODING_SYSTEM.get(name.upper())
    if found:
        return found
    table = _V2_TABLE.match(name.upper())
    return f"http://terminology.hl7.org/CodeSystem/v2-{table.group(1)}" if table else None


def _coding(code: str, display: str, system_name: str, default_system: str | None) -> Json | None:
    if not code:
        return None
    out: Json = {}
    system = coding_system(system_name) or (default_system if not system_name else None)
    if system:
        out["system"] = system
    out["code"] = code.strip()
    if display:
        out["display"] = display
    return out


def codeable(rep: Repetition, default_system: str | None = None) -> Json | None:
    """CE/CWE/CNE -> CodeableConcept (rule 3); ``default_system`` when CWE-3 is empty."""
    codings = [
        c
        for c in (
            _coding(rep.get(1), rep.get(2), rep.get(3), default_system),
            _coding(rep.get(4), rep.get(5), rep.get(6), None),
        )
        if c
    ]
    text = rep.get(9) or (rep.get(2) if not codings else "")
    if not codings and not text:
        return None
    out: Json = {}
    if codings:
        out["coding"] = codings
    if text:
        out["text"] = text
    return out


_Parts = tuple[datetime, tuple[str | None, ...], str | None]


def _ts_parts(text: str, where: Location | None) -> _Parts | None:
    """(value, the digits given: year, month, day, hour, minute, second (None when absent),
    offset text) of a TS/DTM, None when empty."""
    text = text.strip()
    if not text:
        return None
    match = _TS.match(text)
    if match is None:
        raise Hl7v2Error(f"{text!r} is not an HL7 date/time", "102", location=where)
    year, month, day, hour, minute, second, fraction, offset = match.groups()
    micro = int(fraction.ljust(6, "0")[:6]) if fraction else 0
    try:
        value = datetime(
            int(year), int(month or 1), int(day or 1), int(hour or 0), int(minute or 0),
            int(second or 0), micro,
        )  # fmt: skip
    except ValueError as exc:
        raise Hl7v2Error(f"{text!r} is not a real date/time", "102", location=where) from exc
    return value, (year, month, day, hour, minute, second), offset


def _offset(value: datetime, offset: str | None, timezone: tzinfo) -> str:
    if offset is None:
        delta = value.replace(tzinfo=timezone).utcoffset()
        minutes = int(delta.total_seconds() // 60) if delta is not None else 0
    elif offset == "Z":
        minutes = 0
    else:
        sign = -1 if offset[0] == "-" else 1
        minutes = sign * (int(offset[1:3]) * 60 + int(offset[3:5]))
    sign_text = "-" if minutes < 0 else "+"
    minutes = abs(minutes)
    return f"{sign_text}{minutes // 60:02d}:{minutes % 60:02d}"


def _day(value: datetime, digits: tuple[str | None, ...]) -> str:
    """The date part, at the precision given (the digits as written: they are zero-padded)."""
    year, month, day = digits[:3]
    if year is None or year[0] == "0":  # years before 1000: as strftime writes them
        return value.strftime("%Y-%m-%d" if day else "%Y-%m" if month else "%Y")
    if not month:
        return year
    return f"{year}-{month}-{day}" if day else f"{year}-{month}"


def _time(digits: tuple[str | None, ...]) -> str:
    """``THH:MM:SS`` (what is not given is zero)."""
    _, _, _, hour, minute, second = digits
    return f"T{hour or '00'}:{minute or '00'}:{second or '00'}"


def date_time(text: str, timezone: tzinfo, where: Location | None = None) -> str | None:
    """TS/DTM -> FHIR dateTime at the precision given (rule 2)."""
    parts = _ts_parts(text, where)
    if parts is None:
        return None
    value, digits, offset = parts
    if digits[3] is None:  # a date alone
        return _day(value, digits)
    stamp = _day(value, digits) + _time(digits)
    if value.microsecond:
        stamp += f".{value.microsecond:06d}".rstrip("0")
    return stamp + _offset(value, offset, timezone)


def instant(text: str, timezone: tzinfo, where: Location | None = None) -> str | None:
    """TS/DTM -> FHIR instant (to the second, with an offset; a date alone is its midnight)."""
    parts = _ts_parts(text, where)
    if parts is None:
        return None
    value, digits, offset = parts
    if digits[2] is None:
        raise Hl7v2Error(f"{text!r} is not precise enough for an instant", "102", location=where)
    return _day(value, digits) + _time(digits) + _offset(value, offset, timezone)


def date(text: str, where: Location | None = None) -> str | None:
    """DT (or the date part of a TS) -> FHIR date."""
    parts = _ts_parts(text, where)
    if parts is None:
        return None
    value, digits, _ = parts
    return _day(value, digits)


def number(text: str) -> int | float | None:
    """NM -> a JSON number (int when written without a decimal point), None when not a number."""
    text = text.strip()
    if not _NUMBER.match(text):
        return None
    if "." in text:
        return float(text)
    return int(text)


def human_name(rep: Repetition) -> Json | None:
    """XPN -> HumanName: family (XPN-1.1), given (2, then 3 split on spaces), prefix (5),
    suffix (4 and 6), use from table 0200 (XPN-7)."""
    family = rep.get(1)
    given = [g for g in [rep.get(2), *rep.get(3).split()] if g]
    if not family and not given:
        return None
    out: Json = {}
    use = NAME_USE.get(rep.get(7))
    if use:
        out["use"] = use
    if family:
        out["family"] = family
    if given:
        out["given"] = given
    if rep.get(5):
        out["prefix"] = [rep.get(5)]
    suffix = [s for s in (rep.get(4), rep.get(6)) if s]
    if suffix:
        out["suffix"] = suffix
    return out


def address(rep: Repetition) -> Json | None:
    """XAD -> Address: line (1.1, 2), city (3), district (4: the county in UK feeds), postalCode
    (5), country (6), use/type from table 0190 (7)."""
    lines = [line for line in (rep.get(1), rep.get(2)) if line]
    city, district, postcode, country = rep.get(3), rep.get(4), rep.get(5), rep.get(6)
    if not (lines or city or district or postcode):
        return None
    out: Json = {}
    kind = rep.get(7)
    if kind in ADDRESS_USE:
        out["use"] = ADDRESS_USE[kind]
    if kind in ADDRESS_TYPE:
        out["type"] = ADDRESS_TYPE[kind]
    for key, value in (("city", city), ("district", district), ("postalCode", postcode),
                       ("country", country)):  # fmt: skip
        if value:
            out[key] = value
    if lines:
        out["line"] = lines
    return out


def contact_point(rep: Repetition, default_use: str | None) -> Json | None:
    """XTN -> ContactPoint: system from table 0202 (XTN-3), use from table 0201 (XTN-2; CP
    equipment means mobile), value from XTN-4 (e-mail), XTN-1 (the v2.3 text) or XTN-12, else
    XTN-5/6/7/8 (country, area, local number, extension)."""
    equipment, use_code = rep.get(3), rep.get(2)
    system = TELECOM_EQUIPMENT.get(equipment, "phone")
    if use_code == "NET" and equipment not in TELECOM_EQUIPMENT:
        system = "email"
    if system == "email":
        value = rep.get(4) or rep.get(1)
    else:
        value = rep.get(1) or rep.get(12) or _composed_number(rep)
    if not value:
        return None
    out: Json = {"system": system, "value": value}
    use = "mobile" if equipment == "CP" else TELECOM_USE.get(use_code, default_use)
    if use:
        out["use"] = use
    return out


def _composed_number(rep: Repetition) -> str:
    country, area, local, extension = rep.get(5), rep.get(6), rep.get(7), rep.get(8)
    if not local:
        return ""
    text = (f"+{country.lstrip('+')} " if country else "") + (f"{area} " if area else "") + local
    return text + (f" ext. {extension}" if extension else "")
