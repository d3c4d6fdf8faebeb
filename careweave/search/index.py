"""Index rows: the searchable values extracted from one resource, per search parameter type.

Rules:
1. Rows name their parameter by a stable key (``"Patient.identifier"``: base type, dot, code);
   a backend maps keys to its own storage ids. Nothing here knows about a database.
2. Strings are stored normalised (case- and accent-folded) beside the exact text; dates, numbers and
   quantities as ranges ``[lo, hi)`` so that the spec's range semantics are comparisons.
3. ``flags`` marks, per parameter, the row holding the resource's smallest sort key (bit 1) and the
   row holding its largest (bit 2): sorting reads one row per resource from a partial index.
4. Derived keys: ``"<key>:identifier"`` (tokens of Reference.identifier, for ``:identifier``) and
   ``"<key>:of-type"`` (Identifier type + value, for ``:of-type``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

__all__ = ["FIRST", "LAST", "IndexRows"]

FIRST = 1
LAST = 2

Token = tuple[str, str | None, str | None, int]  # param, system, code, flags
TokenText = tuple[str, str]  # param, normalised text
String = tuple[str, str, str, int]  # param, normalised, exact, flags
Ref = tuple[str, str | None, str | None, str | None, int]  # param, type, id, url, flags
Date = tuple[str, int, int, int]  # param, lo ms, hi ms, flags
Number = tuple[str, float, float, int]  # param, lo, hi, flags
Quantity = tuple[str, str | None, str | None, float, float, int]  # param, system, code, lo, hi
Uri = tuple[str, str, int]  # param, uri, flags
Composite = tuple[
    str,
    str | None,
    str | None,
    str | None,
    str | None,
    float | None,
    float | None,
    float | None,
    float | None,
]  # param, s1, v1, s2, v2, lo2, hi2, lo3, hi3
Geo = tuple[str, float, float]  # param, latitude, longitude


@dataclass(slots=True)
class IndexRows:
    """Everything one resource version contributes to the search indexes."""

    tokens: list[Token] = field(default_factory=list)
    token_texts: list[TokenText] = field(default_factory=list)
    strings: list[String] = field(default_factory=list)
    references: list[Ref] = field(default_factory=list)
    dates: list[Date] = field(default_factory=list)
    numbers: list[Number] = field(default_factory=list)
    quantities: list[Quantity] = field(default_factory=list)
    uris: list[Uri] = field(default_factory=list)
    composites: list[Composite] = field(default_factory=list)
    geo: list[Geo] = field(default_factory=list)
    narrative: str = ""  # _text
    content: str = ""  # _content

    def count(self) -> int:
        return sum(
            len(rows)
            for rows in (
                self.tokens,
                self.token_texts,
                self.strings,
                self.references,
                self.dates,
                self.numbers,
                self.quantities,
                self.uris,
                self.composites,
                self.geo,
            )
        )

    def finish(self) -> IndexRows:
        """Set the sort flags (rule 3) and drop duplicate rows; returns self."""
        self.tokens = _flag(self.tokens, lambda r: r[2] or "", lambda r: r[2] or "", 3)
        self.strings = _flag(self.strings, lambda r: r[1], lambda r: r[1], 3)
        self.references = _flag(
            self.references, lambda r: r[2] or r[3] or "", lambda r: r[2] or r[3] or "", 4
        )
        self.dates = _flag(self.dates, lambda r: r[1], lambda r: r[2], 3)
        self.numbers = _flag(self.numbers, lambda r: r[1], lambda r: r[2], 3)
        self.quantities = _flag(self.quantities, lambda r: r[3], lambda r: r[4], 5)
        self.uris = _flag(self.uris, lambda r: r[1], lambda r: r[1], 2)
        self.token_texts = list(dict.fromkeys(self.token_texts))
        self.composites = list(dict.fromkeys(self.composites))
        return self


def _flag(rows: list[Any], low: Callable[[Any], Any], high: Callable[[Any], Any], at: int) -> list[Any]:
    """Deduplicate rows and set FIRST/LAST (the element at ``at``) on the rows with the smallest and
    largest sort key of each parameter. Producers append rows with 0 there."""
    if not rows:
        return rows
    if len(rows) == 1:  # the smallest and the largest of its parameter
        r = rows[0]
        return [(*r[:at], FIRST | LAST, *r[at + 1 :])]
    unique = list(dict.fromkeys(rows))  # producers append flags 0, so equal rows are equal tuples
    first: dict[str, int] = {}
    last: dict[str, int] = {}
    for i, r in enumerate(unique):
        param = r[0]
        j = first.get(param)
        if j is None:
            first[param] = last[param] = i
            continue
        if low(r) < low(unique[j]):
            first[param] = i
        if high(r) > high(unique[last[param]]):
            last[param] = i
    flags = [0] * len(unique)
    for i in first.values():
        flags[i] |= FIRST
    for i in last.values():
        flags[i] |= LAST
    return [(*r[:at], flags[i], *r[at + 1 :]) if flags[i] else r for i, r in enumerate(unique)]
