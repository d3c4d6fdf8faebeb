"""UK local times for generated events, written as FHIR dateTimes and HL7 v2 timestamps.

Rules:
1. Events happen at a wall-clock time in Europe/London. The UTC offset is computed here from the
   EU summer-time rule (in force since 1996: BST from 01:00 UTC on the last Sunday of March to
   01:00 UTC on the last Sunday of October), not from the system's time-zone database, so output
   is the same on every machine. Older dates use the same rule, an approximation.
2. A wall-clock time inside the skipped hour (01:00-01:59 on the March change day) moves forward
   an hour; the repeated October hour takes the later (GMT) offset.
3. FHIR dateTimes with a time always carry the offset (``2024-03-05T09:30:00+00:00``); HL7 v2
   timestamps use the ``YYYYMMDDHHMMSS+ZZZZ`` form.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta

__all__ = ["fhir_date", "fhir_datetime", "fhir_instant", "hl7_date", "hl7_timestamp", "settle"]


def _last_sunday(year: int, month: int) -> date:
    last = date(year, month, 31)  # March and October both have 31 days
    return last - timedelta(days=(last.weekday() + 1) % 7)


def settle(local: datetime) -> tuple[datetime, int]:
    """The wall-clock time (moved out of the skipped hour) and its UTC offset in hours (0 or 1)."""
    month = local.month
    if 3 < month < 10:
        return local, 1
    if month < 3 or month > 10:
        return local, 0
    change = _last_sunday(local.year, month)
    day = local.date()
    if month == 3:
        if day == change and local.hour == 1:
            local += timedelta(hours=1)
        return local, 1 if day > change or (day == change and local.hour >= 2) else 0
    return local, 1 if day < change or (day == change and local.hour < 1) else 0


def _wall(local: datetime) -> str:
    return (
        f"{local.year:04d}-{local.month:02d}-{local.day:02d}"
        f"T{local.hour:02d}:{local.minute:02d}:{local.second:02d}"
    )


def fhir_datetime(local: datetime) -> str:
    """A FHIR dateTime with seconds and the London offset (rule 3)."""
    wall, offset = settle(local)
    return f"{_wall(wall)}+0{offset}:00"


def fhir_instant(local: datetime) -> str:
    """A FHIR instant (milliseconds and offset)."""
    wall, offset = settle(local)
    return f"{_wall(wall)}.{wall.microsecond // 1000:03d}+0{offset}:00"


def fhir_date(day: date) -> str:
    return day.isoformat()


def hl7_timestamp(local: datetime) -> str:
    """An HL7 v2 TS/DTM value with the London offset (``20240305093000+0000``)."""
    wall, offset = settle(local)
    return (
        f"{wall.year:04d}{wall.month:02d}{wall.day:02d}"
        f"{wall.hour:02d}{wall.minute:02d}{wall.second:02d}+0{offset}00"
    )


def hl7_date(day: date) -> str:
    return f"{day.year:04d}{day.month:02d}{day.day:02d}"
