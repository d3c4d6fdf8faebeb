"""The parser's fast paths for values without escapes answer exactly as the general character
walk (kept here as the reference)."""

from __future__ import annotations

import itertools

from careweave.search import values

PIECES = ["", "a", "b", ",", "|", "$", "\\", "\\,", "\\|", "\\\\", "x y", "é"]


def _reference_split(value: str, separator: str) -> list[str]:
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


def _reference_unescape(value: str) -> str:
    out: list[str] = []
    escaped = False
    for ch in value:
        if escaped:
            out.append(ch)
            escaped = False
        elif ch != "\\":
            out.append(ch)
        else:
            escaped = True
    return "".join(out)


def test_split_and_unescape_fast_paths_match_the_general_ones() -> None:
    for n in range(4):
        for parts in itertools.product(PIECES, repeat=n):
            value = "".join(parts)
            for separator in (",", "|", "$"):
                assert values.split_escaped(value, separator) == _reference_split(value, separator)
            assert values.unescape(value) == _reference_unescape(value)
