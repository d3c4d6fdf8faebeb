"""Index rows: the searchable values extracted from one resource, per search parameter type.

Rules:
1. Rows name their parameter by a stable key (``"Patient.identifier"``: base type, dot, code);
   a backend maps keys to its own storage ids. Nothing here knows about a database.
2. Strings are stored normalised (case- and accent-folded) beside the exact text; dates, numbers and
   quantities as ranges ``[lo, hi)`` so that the spec's range semantics are comparisons.
3. ``flags`` marks, per parameter, the row holding the resource's smallest sort key (bit 1) and the
   row holding its largest (bit 2): sorting reads one row per resource from a partial index. It
   is each row's last element.
4. Derived keys: ``"<key>:identifier"`` (tokens of Reference.identifier, for ``:identifier``) and
   ``"<key>:of-type"`` (Identifier type + value, for ``:of-type``).
"""

from __future__ import annotations

import operator
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
        if self.tokens:
            self.tokens = _flag(self.tokens, _codes, _codes, _flagged4)
        if self.strings:
            self.strings = _flag(self.strings, _second, _second, _flagged4)
        if self.references:
            self.references = _flag(self.references, _targets, _targets, _flagged5)
        if self.dates:
            self.dates = _flag(self.dates, _second, _third, _flagged4)
        if self.numbers:
            self.numbers = _flag(self.numbers, _second, _third, _flagged4)
        if self.quantities:
            self.quantities = _flag(self.quantities, _fourth, _fifth, _flagged6)
        if self.uris:
            self.uris = _flag(self.uris, _second, _second, _flagged3)
        if len(self.token_texts) > 1:
            self.token_texts = list(dict.fromkeys(self.token_texts))
        if len(self.composites) > 1:
            self.composites = list(dict.fromkeys(self.composites))
        return self


# the sort keys of a list of rows, in one call per list (not one per row)
Keys = Callable[[list[Any]], list[Any]]
_param = operator.itemgetter(0)


def _codes(rows: list[Any]) -> list[str]:
    return [r[2] or "" for r in rows]


def _targets(rows: list[Any]) -> list[str]:
    return [r[2] or r[3] or "" for r in rows]


def _second(rows: list[Any]) -> list[Any]:
    return list(map(operator.itemgetter(1), rows))


def _third(rows: list[Any]) -> list[Any]:
    return list(map(operator.itemgetter(2), rows))


def _fourth(rows: list[Any]) -> list[Any]:
    return list(map(operator.itemgetter(3), rows))


def _fifth(rows: list[Any]) -> list[Any]:
    return list(map(operator.itemgetter(4), rows))


# rows of one length with their flags (the last element) set: every row's to FIRST | LAST (flags
# None), else each row's to its own flag where that is not 0
Flagged = Callable[[list[Any], list[int] | None], list[Any]]


def _flagged3(rows: list[Any], flags: list[int] | None) -> list[Any]:
    if flags is None:
        return [(a, b, 3) for a, b, _ in rows]
    return [(r[0], r[1], f) if f else r for r, f in zip(rows, flags, strict=True)]


def _flagged4(rows: list[Any], flags: list[int] | None) -> list[Any]:
    if flags is None:
        return [(a, b, c, 3) for a, b, c, _ in rows]
    return [(r[0], r[1], r[2], f) if f else r for r, f in zip(rows, flags, strict=True)]


def _flagged5(rows: list[Any], flags: list[int] | None) -> list[Any]:
    if flags is None:
        return [(a, b, c, d, 3) for a, b, c, d, _ in rows]
    return [(*r[:4], f) if f else r for r, f in zip(rows, flags, strict=True)]


def _flagged6(rows: list[Any], flags: list[int] | None) -> list[Any]:
    if flags is None:
        return [(a, b, c, d, e, 3) for a, b, c, d, e, _ in rows]
    return [(*r[:5], f) if f else r for r, f in zip(rows, flags, strict=True)]


def _flag(rows: list[Any], low: Keys, high: Keys, flagged: Flagged) -> list[Any]:
    """Deduplicate rows and set FIRST/LAST (each row's last element) on the rows with the smallest
    and largest sort key of each parameter. Producers append rows with 0 there."""
    if len(rows) == 1:  # the smallest and the largest of its parameter
        return flagged(rows, None)
    unique = list(dict.fromkeys(rows))  # producers append flags 0, so equal rows are equal tuples
    params = list(map(_param, unique))
    if len(set(params)) == len(unique):  # a row per parameter: its smallest and its largest
        return flagged(unique, None)
    lows, highs = low(unique), high(unique)
    first: dict[str, int] = {}
    last: dict[str, int] = {}
    for i, param in enumerate(params):
        j = first.get(param)
        if j is None:
            first[param] = last[param] = i
            continue
        if lows[i] < lows[j]:
            first[param] = i
        if highs[i] > highs[last[param]]:
            last[param] = i
    flags = [0] * len(unique)
    for i in first.values():
        flags[i] = FIRST
    for i in last.values():
        flags[i] |= LAST
    return flagged(unique, flags)
