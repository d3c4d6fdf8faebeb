"""The parser's fast paths for values without escapes answer exactly as the general ones."""

from __future__ import annotations

import itertools

from careweave.search import typed, values

PIECES = ["", "a", "b", ",", "|", "$", "\\", "\\,", "\\|", "\\\\", "x y", "é"]


def test_split_and_unescape_fast_paths_match_the_general_ones() -> None:
    for n in range(4):
        for parts in itertools.product(PIECES, repeat=n):
            value = "".join(parts)
            for separator in (",", "|", "$"):
                assert typed.split_escaped(value, separator) == values.split_escaped(value, separator)
            assert typed.unescape(value) == values.unescape(value)
