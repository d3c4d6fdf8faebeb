"""System.Date, System.DateTime and System.Time with precision, as FHIRPath 2.0 defines them.

Rules:
1. A value keeps only the parts it was given: ``parts`` is (year[, month[, day]]) for a Date,
   up to (year, month, day, hour, minute, second, millisecond) for a DateTime and up to
   (hour, minute, second, millisecond) for a Time. Its precision is ``len(parts)``.
2. Comparison walks the parts from the most significant; seconds and milliseconds count as one
   precision. Values that agree on every part both have but differ in precision compare as
   ``None`` (unknown): ``=`` then gives empty and ``~`` gives false.
3. A DateTime with a time zone offset is compared in UTC; one without an offset is taken as UTC.
   A Date compared with a DateTime is taken as a DateTime of the same precision.
4. Adding a calendar duration keeps the precision of the value; a duration finer than the value's
   precision is first converted to that precision, truncating (``@2014 + 25 months = @2016``).
"""

from __future__ import annotations

import calendar
import datetime as dt
import functools
import re
from dataclasses import dataclass
from decimal import Decimal

__all__ = [
    "Date",
    "DateTime",
    "Time",
    "add_duration",
    "compare_temporal",
    "now_datetime",
    "parse_date",
    "parse_datetime",
    "parse_time",
    "temporal_key",
]

_DATE_RE = re.compile(r"(\d{4})(?:-(\d{2})(?:-(\d{2}))?)?")
_TIME_RE = re.compile(r"(\d{2})(?::(\d{2})(?::(\d{2})(?:\.(\d+))?)?)?")
_TZ_RE = re.compile(r"Z|([+-])(\d{2}):(\d{2})")
# parsed texts remembered per parse function (the values are immutable; the same dates and times
# recur across resources, e.g. every invariant comparing a Period's start and end)
_PARSED = 8192

# Duration units (calendar keywords and UCUM time codes) -> (part index in a DateTime, multiplier).
# Part indexes: 1 month, 2 day, 3 hour, 4 minute, 5 second, 6 millisecond; years are 12 months.
DURATION_UNITS: dict[str, tuple[int, int]] = {
    "year": (1, 12), "years": (1, 12), "a": (1, 12),
    "month": (1, 1), "months": (1, 1), "mo": (1, 1),
    "week": (2, 7), "weeks": (2, 7), "wk": (2, 7),
    "day": (2, 1), "days": (2, 1), "d": (2, 1),
    "hour": (3, 1), "hours": (3, 1), "h": (3, 1),
    "minute": (4, 1), "minutes": (4, 1), "min": (4, 1),
    "second": (5, 1), "seconds": (5, 1), "s": (5, 1),
    "millisecond": (6, 1), "milliseconds": (6, 1), "ms": (6, 1),
}  # fmt: skip
# Size of one unit of each part, in milliseconds (months handled apart), for truncation.
_PART_MS = (0, 0, 86_400_000, 3_600_000, 60_000, 1000, 1)


@dataclass(frozen=True, slots=True)
class Date:
    parts: tuple[int, ...]

    def __str__(self) -> str:
        return _render_date(self.parts)


@dataclass(frozen=True, slots=True)
class DateTime:
    parts: tuple[int, ...]
    tz: int | None = None  # offset from UTC in minutes

    def __str__(self) -> str:
        text = _render_date(self.parts[:3])
        if len(self.parts) > 3:
            text += "T" + _render_time(self.parts[3:])
            if self.tz is not None:
                text += _render_tz(self.tz)
        return text  # a DateTime without a time carries no offset in its text


@dataclass(frozen=True, slots=True)
class Time:
    parts: tuple[int, ...]

    def __str__(self) -> str:
        return _render_time(self.parts)


def _render_date(parts: tuple[int, ...]) -> str:
    text = f"{parts[0]:04d}"
    for p in parts[1:3]:
        text += f"-{p:02d}"
    return text


def _render_time(parts: tuple[int, ...]) -> str:
    text = f"{parts[0]:02d}"
    for p in parts[1:3]:
        text += f":{p:02d}"
    if len(parts) > 3:
        text += f".{parts[3]:03d}"
    return text


def _render_tz(tz: int) -> str:
    if tz == 0:
        return "Z"
    sign = "+" if tz > 0 else "-"
    hours, minutes = divmod(abs(tz), 60)
    return f"{sign}{hours:02d}:{minutes:02d}"


def _time_parts(m: re.Match[str]) -> tuple[int, ...]:
    parts = [int(g) for g in m.groups()[:3] if g is not None]
    frac = m.group(4)
    if frac is not None:
        parts.append(int((frac + "00")[:3]))
    return tuple(parts)


def _valid_date(parts: tuple[int, ...]) -> bool:
    if len(parts) > 1 and not 1 <= parts[1] <= 12:
        return False
    return not (len(parts) > 2 and not 1 <= parts[2] <= calendar.monthrange(*parts[:2])[1])


def _valid_time(parts: tuple[int, ...]) -> bool:
    limits = (23, 59, 59, 999)
    return all(0 <= p <= limit for p, limit in zip(parts, limits, strict=False))


@functools.lru_cache(maxsize=_PARSED)
def parse_date(text: str) -> Date | None:
    """A FHIR ``date`` / FHIRPath Date (``2014``, ``2014-05``, ``2014-05-06``), or None."""
    m = _DATE_RE.fullmatch(text)
    if m is None:
        return None
    parts = tuple(int(g) for g in m.groups() if g is not None)
    return Date(parts) if _valid_date(parts) else None


@functools.lru_cache(maxsize=_PARSED)
def parse_time(text: str) -> Time | None:
    """A FHIR ``time`` / FHIRPath Time (``14``, ``14:30``, ``14:30:15.123``), or None."""
    m = _TIME_RE.fullmatch(text)
    if m is None:
        return None
    parts = _time_parts(m)
    return Time(parts) if _valid_time(parts) else None


@functools.lru_cache(maxsize=_PARSED)
def parse_datetime(text: str) -> DateTime | None:
    """A FHIR ``dateTime``/``instant`` or FHIRPath DateTime (``2014-05-06T10:00:00+02:00``,
    ``2014T``, ``2014-05``), or None."""
    date_text, sep, rest = text.partition("T")
    date = parse_date(date_text)
    if date is None:
        return None
    if not sep or not rest:
        return DateTime(date.parts)
    if len(date.parts) != 3:
        return None
    tz: int | None = None
    tz_match = _TZ_RE.search(rest)
    if tz_match is not None:
        if tz_match.end() != len(rest):
            return None
        if tz_match.group(0) != "Z":
            sign = -1 if tz_match.group(1) == "-" else 1
            tz = sign * (int(tz_match.group(2)) * 60 + int(tz_match.group(3)))
        else:
            tz = 0
        rest = rest[: tz_match.start()]
    m = _TIME_RE.fullmatch(rest)
    if m is None:
        return None
    parts = _time_parts(m)
    if not _valid_time(parts):
        return None
    return DateTime(date.parts + parts, tz)


def now_datetime(moment: dt.datetime) -> DateTime:
    """A DateTime at millisecond precision from an aware ``datetime`` (for ``now()``)."""
    offset = moment.utcoffset()
    tz = int(offset.total_seconds() // 60) if offset is not None else None
    parts = (moment.year, moment.month, moment.day, moment.hour, moment.minute, moment.second)
    return DateTime((*parts, moment.microsecond // 1000), tz)


# -- comparison ---------------------------------------------------------------------------------


def _utc_parts(value: DateTime) -> tuple[int, ...]:
    if value.tz is None or value.tz == 0 or len(value.parts) < 4:
        return value.parts
    p = (*value.parts, 0, 0)
    moment = dt.datetime(p[0], p[1], p[2], p[3], p[4], p[5])
    moment -= dt.timedelta(minutes=value.tz)
    full = (moment.year, moment.month, moment.day, moment.hour, moment.minute, moment.second)
    return (full + value.parts[6:])[: len(value.parts)]


def _merge_seconds(parts: tuple[int, ...], second_index: int) -> tuple[int, ...]:
    if len(parts) <= second_index:
        return parts
    millis = parts[second_index + 1] if len(parts) > second_index + 1 else 0
    return (*parts[:second_index], parts[second_index] * 1000 + millis)


def compare_temporal(a: object, b: object) -> int | None:
    """-1/0/1 comparing two temporal values of compatible kinds; None when the answer depends on
    missing precision. Raises TypeError for incompatible kinds (a Time and a Date)."""
    if isinstance(a, Time) and isinstance(b, Time):
        pa, pb = _merge_seconds(a.parts, 2), _merge_seconds(b.parts, 2)
    elif isinstance(a, Date | DateTime) and isinstance(b, Date | DateTime):
        if isinstance(a, Date) and isinstance(b, Date):
            pa, pb = a.parts, b.parts
        else:
            da = a if isinstance(a, DateTime) else DateTime(a.parts)
            db = b if isinstance(b, DateTime) else DateTime(b.parts)
            pa, pb = _merge_seconds(_utc_parts(da), 5), _merge_seconds(_utc_parts(db), 5)
    else:
        raise TypeError("incompatible temporal values")
    for x, y in zip(pa, pb, strict=False):
        if x != y:
            return -1 if x < y else 1
    return 0 if len(pa) == len(pb) else None


def temporal_key(value: Date | DateTime | Time) -> tuple[object, ...]:
    """A hashable key equal for values that compare equal (same precision, same instant)."""
    if isinstance(value, Time):
        return ("time", _merge_seconds(value.parts, 2))
    if isinstance(value, Date):
        return ("date", value.parts)
    return ("date", _merge_seconds(_utc_parts(value), 5))


# -- arithmetic ---------------------------------------------------------------------------------


def add_duration(value: Date | DateTime | Time, amount: Decimal, unit: str) -> object | None:
    """``value + amount unit``; None when the unit is not a time unit usable on that value."""
    spec = DURATION_UNITS.get(unit)
    if spec is None:
        return None
    index, multiplier = spec
    if isinstance(value, Time):
        if index < 3:
            return None
        return _add_to_time(value, amount * multiplier, index)
    precision = len(value.parts)
    if index == 1:  # months: integral, truncating
        months = int(amount) * multiplier
        if precision == 1:
            months = (months // 12) * 12 if months >= 0 else -((-months // 12) * 12)
        return _add_months(value, months)
    millis = int(amount * multiplier * _PART_MS[index])
    if precision <= 2:
        return value  # days and finer cannot change a year or month
    unit_ms = _PART_MS[min(precision, 7) - 1]
    millis = int(millis / unit_ms) * unit_ms  # truncate toward zero to the value's precision
    full = (*value.parts, 0, 0, 0, 0)[:7]
    moment = dt.datetime(full[0], full[1], full[2], full[3], full[4], full[5], full[6] * 1000)
    moment += dt.timedelta(milliseconds=millis)
    parts = (moment.year, moment.month, moment.day, moment.hour, moment.minute, moment.second,
             moment.microsecond // 1000)[:precision]  # fmt: skip
    if isinstance(value, Date):
        return Date(parts)
    return DateTime(parts, value.tz)


def _add_months(value: Date | DateTime, months: int) -> Date | DateTime:
    parts = list(value.parts)
    if len(parts) == 1:
        parts[0] += months // 12
    else:
        total = parts[0] * 12 + (parts[1] - 1) + months
        parts[0], parts[1] = divmod(total, 12)
        parts[1] += 1
        if len(parts) > 2:
            parts[2] = min(parts[2], calendar.monthrange(parts[0], parts[1])[1])
    if isinstance(value, Date):
        return Date(tuple(parts))
    return DateTime(tuple(parts), value.tz)


def _add_to_time(value: Time, amount: Decimal, index: int) -> Time:
    precision = len(value.parts)
    unit_ms = _PART_MS[min(precision + 2, 6)]
    millis = int(amount * _PART_MS[index])
    millis = int(millis / unit_ms) * unit_ms
    full = (*value.parts, 0, 0, 0)[:4]
    total = (full[0] * 3_600_000 + full[1] * 60_000 + full[2] * 1000 + full[3] + millis) % 86_400_000
    hours, rest = divmod(total, 3_600_000)
    minutes, rest = divmod(rest, 60_000)
    seconds, millis_left = divmod(rest, 1000)
    return Time((hours, minutes, seconds, millis_left)[:precision])
