"""Search value semantics shared by indexing and querying (pure).

Rules (FHIR R4 search.html):
1. Strings compare case- and accent-insensitively: :func:`normalise` folds case, strips combining
   marks (NFKD) and collapses white space.
2. Dates, dateTimes and instants are ranges at their precision: ``2020`` is the whole year,
   ``2020-03-04T10:00`` one minute. Ranges are half-open ``[lo, hi)`` in milliseconds since the epoch,
   UTC; a value without a time zone is taken as UTC. Open ends are :data:`NEG_INF` / :data:`POS_INF`.
3. A number in a search has an implied precision: ``100`` means ``[99.5, 100.5)``, ``100.00``
   means ``[99.995, 100.005)``, ``1e2`` means ``[50, 150)``. Stored numbers are points.
4. :func:`date_range` counts days and milliseconds from the digits for years 2 to 9998 and builds
   ``datetime`` values only at the calendar's ends (years 1 and 9999, where a range may overflow):
   the same range or None either way. :func:`reference_of`, :func:`memo_date_range` and
   :func:`memo_normalise` remember their last few thousand answers (indexing meets the same
   references, dates and display texts again and again).
"""

from __future__ import annotations

import calendar
import re
import unicodedata
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal, InvalidOperation

from careweave.fhir.model import Reference, parse_reference

__all__ = [
    "NEG_INF",
    "POS_INF",
    "PREFIXES",
    "date_range",
    "memo_date_range",
    "memo_normalise",
    "normalise",
    "number_range",
    "reference_of",
    "soundex",
    "split_escaped",
    "split_prefix",
    "unescape",
]

PREFIXES = frozenset({"eq", "ne", "gt", "lt", "ge", "le", "sa", "eb", "ap"})

NEG_INF = -(2**62)
POS_INF = 2**62

_DATE_RE = re.compile(
    r"(?P<y>\d{4})(?:-(?P<m>\d{2})(?:-(?P<d>\d{2})"
    r"(?:T(?P<H>\d{2}):(?P<M>\d{2})(?::(?P<S>\d{2})(?:\.(?P<f>\d+))?)?"
    r"(?P<tz>Z|[+-]\d{2}:\d{2})?)?)?)?\Z"
)
_SPACE = re.compile(r"\s+")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def normalise(text: str) -> str:
    """Case-, accent- and white-space-folded form of a string, for string search."""
    if text.isascii():
        return " ".join(text.lower().split())
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    stripped = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    return _SPACE.sub(" ", stripped).strip()


def _ms(dt: datetime) -> int:
    delta = dt - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1000 + delta.microseconds // 1000


_EPOCH_DAY = date(1970, 1, 1).toordinal()
_DAY_MS = 86_400_000


def date_range(value: str) -> tuple[int, int] | None:
    """The ``[lo, hi)`` milliseconds a FHIR date, dateTime or instant covers; None if not one."""
    m = _DATE_RE.match(value.strip())
    if m is None:
        return None
    try:
        if 1 < int(m["y"]) < 9999:  # rule 4
            return _counted(*m.groups())
        return _range(m)
    except (ValueError, OverflowError):
        return None


def _counted(
    y: str,
    mo: str | None,
    d: str | None,
    hh: str | None,
    mi: str | None,
    ss: str | None,
    frac: str | None,
    tz: str | None,
) -> tuple[int, int]:
    """:func:`_range` by arithmetic, for a year between 2 and 9998; ValueError where a datetime
    could not be built."""
    year = int(y)
    if mo is None:
        lo = (date(year, 1, 1).toordinal() - _EPOCH_DAY) * _DAY_MS
        return lo, (date(year + 1, 1, 1).toordinal() - _EPOCH_DAY) * _DAY_MS
    month = int(mo)
    if d is None:
        first = date(year, month, 1).toordinal()
        days = calendar.monthrange(year, month)[1]
        return (first - _EPOCH_DAY) * _DAY_MS, (first + days - _EPOCH_DAY) * _DAY_MS
    day = date(year, month, int(d)).toordinal() - _EPOCH_DAY
    if hh is None:
        return day * _DAY_MS, (day + 1) * _DAY_MS
    hour, minute = int(hh), int(mi)  # type: ignore[arg-type]  # the pattern has minutes with hours
    if hour > 23 or minute > 59:
        raise ValueError("not a time of day")
    offset = 0  # minutes east of UTC
    if tz is not None and tz != "Z":
        offset = int(tz[1:3]) * 60 + int(tz[4:6])
        if offset >= 1440:
            raise ValueError("not a time zone")  # as datetime.timezone says
        if tz[0] == "-":
            offset = -offset
    lo = (day * 1440 + hour * 60 + minute - offset) * 60_000
    if ss is not None:
        lo += min(int(ss), 59) * 1000
    if frac is not None:
        lo += int((frac + "000")[:3])
        return lo, lo + (1 if len(frac) >= 3 else 10 ** (3 - len(frac)))
    return lo, lo + (1000 if ss is not None else 60_000)


_MEMO_SIZE = 8192
_dates: dict[str, tuple[int, int] | None] = {}
_references: dict[str, Reference | None] = {}
_normalised: dict[str, str] = {}
_MEMO_TEXT = 100  # longer texts are rarely seen twice


def memo_normalise(text: str) -> str:
    """:func:`normalise`, remembered for short texts (rule 4)."""
    try:
        return _normalised[text]
    except KeyError:
        pass
    found = normalise(text)
    if len(text) <= _MEMO_TEXT:
        if len(_normalised) >= _MEMO_SIZE:
            _normalised.clear()
        _normalised[text] = found
    return found


def memo_date_range(value: str) -> tuple[int, int] | None:
    """:func:`date_range`, remembered (rule 4)."""
    try:
        return _dates[value]
    except KeyError:
        pass
    if len(_dates) >= _MEMO_SIZE:
        _dates.clear()
    found = _dates[value] = date_range(value)
    return found


def reference_of(value: str) -> Reference | None:
    """:func:`careweave.fhir.model.parse_reference`, remembered (rule 4)."""
    try:
        return _references[value]
    except KeyError:
        pass
    if len(_references) >= _MEMO_SIZE:
        _references.clear()
    found = _references[value] = parse_reference(value)
    return found


def _range(m: re.Match[str]) -> tuple[int, int]:
    year = int(m["y"])
    tz = UTC
    if m["tz"] and m["tz"] != "Z":
        sign = 1 if m["tz"][0] == "+" else -1
        hours, minutes = int(m["tz"][1:3]), int(m["tz"][4:6])
        tz = timezone(sign * timedelta(hours=hours, minutes=minutes))
    if m["m"] is None:
        start = datetime(year, 1, 1, tzinfo=tz)
        end = datetime(year + 1, 1, 1, tzinfo=tz) if year < 9999 else None
    elif m["d"] is None:
        month = int(m["m"])
        start = datetime(year, month, 1, tzinfo=tz)
        days = calendar.monthrange(year, month)[1]
        end = start + timedelta(days=days)
    elif m["H"] is None:
        start = datetime(year, int(m["m"]), int(m["d"]), tzinfo=tz)
        end = start + timedelta(days=1)
    else:
        second = int(m["S"]) if m["S"] is not None else 0
        start = datetime(year, int(m["m"]), int(m["d"]), int(m["H"]), int(m["M"]), min(second, 59), tzinfo=tz)
        if m["f"] is not None:
            digits = m["f"]
            millis = int((digits + "000")[:3])
            start += timedelta(milliseconds=millis)
            step = (
                timedelta(milliseconds=1)
                if len(digits) >= 3
                else timedelta(milliseconds=10 ** (3 - len(digits)))
            )
        elif m["S"] is not None:
            step = timedelta(seconds=1)
        else:
            step = timedelta(minutes=1)
        end = start + step
    lo = _ms(start)
    return lo, (_ms(end) if end is not None else POS_INF)


def number_range(text: str) -> tuple[Decimal, Decimal, Decimal] | None:
    """(value, lo, hi) of a search number at its implied precision; None if not a number."""
    try:
        value = Decimal(text.strip())
    except InvalidOperation:
        return None
    if not value.is_finite():
        return None
    exponent = value.as_tuple().exponent
    assert isinstance(exponent, int)
    half = Decimal(5).scaleb(exponent - 1)
    return value, value - half, value + half


_SOUNDEX = {
    c: d
    for d, letters in (("1", "bfpv"), ("2", "cgjkqsxz"), ("3", "dt"), ("4", "l"), ("5", "mn"), ("6", "r"))
    for c in letters
}


def soundex(word: str) -> str:
    """American Soundex of one word (``Smith``, ``Smyth`` -> ``S530``); "" for no letters. Used by
    the ``phonetic`` parameters (search.html leaves the algorithm to the server)."""
    letters = [c for c in normalise(word) if "a" <= c <= "z"]
    if not letters:
        return ""
    out, last = letters[0].upper(), _SOUNDEX.get(letters[0], "")
    for c in letters[1:]:
        code = _SOUNDEX.get(c, "")
        if code and code != last:
            out += code
        if c not in "hw":
            last = code
    return (out + "000")[:4]


def split_escaped(value: str, separator: str) -> list[str]:
    """Split at ``separator`` unless it is escaped with a backslash; escapes are kept."""
    if "\\" not in value:  # nothing escaped (most values): a plain split
        return value.split(separator)
    out: list[str] = []
    current: list[str] = []
    escaped = False
    for ch in value:
        if escaped:
            current.append(ch)
            escaped = False
        elif ch == "\\":
            current.append(ch)
            escaped = True
        elif ch == separator:
            out.append("".join(current))
            current = []
        else:
            current.append(ch)
    out.append("".join(current))
    return out


def unescape(value: str) -> str:
    """Remove search escapes: ``\\,`` ``\\|`` ``\\$`` ``\\\\``."""
    if "\\" not in value:
        return value
    out: list[str] = []
    escaped = False
    for ch in value:
        if escaped:
            out.append(ch)
            escaped = False
        elif ch == "\\":
            escaped = True
        else:
            out.append(ch)
    return "".join(out)


def split_prefix(value: str) -> tuple[str, str]:
    """``ge2020`` -> (``ge``, ``2020``); no prefix -> (``eq``, value)."""
    if len(value) > 2 and value[:2] in PREFIXES and (value[2].isdigit() or value[2] in "-+."):
        return value[:2], value[2:]
    return "eq", value
