"""Small, pure helpers over FHIR JSON: ids, instants, references, canonical bytes.

Rules:
1. Resources are plain ``dict`` values as orjson parses them; bytes out are orjson bytes.
2. Instants are written in UTC with millisecond precision and an explicit offset:
   ``2026-11-22T05:11:12.345+00:00`` (the form HAPI and most clients use).
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson

__all__ = [
    "ID_RE",
    "Reference",
    "dumps",
    "format_instant",
    "http_date",
    "is_valid_id",
    "parse_instant",
    "parse_reference",
]

ID_RE = re.compile(r"[A-Za-z0-9\-.]{1,64}\Z")
_TYPE_RE = re.compile(r"[A-Z][A-Za-z]{1,63}\Z")
_REF_RE = re.compile(
    r"(?:(?P<base>https?://.+?)/)?(?P<type>[A-Z][A-Za-z]+)/(?P<id>[A-Za-z0-9\-.]{1,64})"
    r"(?:/_history/(?P<version>[A-Za-z0-9\-.]{1,64}))?\Z"
)
_INSTANT_RE = re.compile(
    r"(?P<date>\d{4}-\d{2}-\d{2})T(?P<time>\d{2}:\d{2}:\d{2})(?P<frac>\.\d+)?"
    r"(?P<tz>Z|[+-]\d{2}:\d{2})\Z"
)


def is_valid_id(value: object) -> bool:
    return isinstance(value, str) and ID_RE.match(value) is not None


def is_type_name(value: str) -> bool:
    return _TYPE_RE.match(value) is not None


def dumps(resource: Any, *, pretty: bool = False) -> bytes:
    """FHIR JSON bytes (UTF-8, no BOM); ``pretty`` indents by two spaces."""
    return orjson.dumps(resource, option=orjson.OPT_INDENT_2 if pretty else 0)


@functools.lru_cache(maxsize=256)
def format_instant(ms: int) -> str:
    """Milliseconds since the epoch as a FHIR instant in UTC (remembered: a transaction stamps
    every version it writes with one instant)."""
    dt = datetime.fromtimestamp(ms / 1000, tz=UTC)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ms % 1000:03d}+00:00"


def parse_instant(value: str) -> int | None:
    """A FHIR instant/dateTime with a time and zone to milliseconds since the epoch; None if not one."""
    m = _INSTANT_RE.match(value)
    if m is None:
        return None
    tz = m["tz"]
    try:
        dt = datetime.fromisoformat(
            f"{m['date']}T{m['time']}{(m['frac'] or '')[:7]}{'+00:00' if tz == 'Z' else tz}"
        )
    except ValueError:
        return None
    return int(dt.timestamp() * 1000)


def http_date(ms: int) -> str:
    """An RFC 9110 IMF-fixdate for Last-Modified headers."""
    return datetime.fromtimestamp(ms / 1000, tz=UTC).strftime("%a, %d %b %Y %H:%M:%S GMT")


@dataclass(frozen=True, slots=True)
class Reference:
    """A parsed literal reference: ``[base/]Type/id[/_history/version]``."""

    type: str
    id: str
    version: str | None = None
    base: str | None = None


def parse_reference(value: str) -> Reference | None:
    """Parse a relative or absolute RESTful reference; None for ``#id``, urn:, or anything else."""
    m = _REF_RE.match(value)
    if m is None:
        return None
    return Reference(type=m["type"], id=m["id"], version=m["version"], base=m["base"])
