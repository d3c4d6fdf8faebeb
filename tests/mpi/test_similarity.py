"""String comparators: Jaro-Winkler, edit distance, the one-edit test and Soundex.

Vectors: Winkler's published Jaro-Winkler examples (MARTHA/MARHTA 0.961, DWAYNE/DUANE 0.84,
DIXON/DICKSONX 0.813) and the standard American Soundex examples (Robert R163, Rupert R163,
Ashcraft A261, Tymczak T522, Pfister P236, Honeyman H555).
"""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from careweave.mpi.similarity import edit_distance, jaro_winkler, soundex, within_one_edit

NAMES = st.text(alphabet="abcdehjlmnorst", max_size=9)


@pytest.mark.parametrize(
    ("a", "b", "expected"),
    [
        ("martha", "marhta", 0.961),
        ("dwayne", "duane", 0.840),
        ("dixon", "dicksonx", 0.813),
        ("smith", "smith", 1.0),
        ("smith", "", 0.0),
        ("", "", 0.0),
        ("abc", "xyz", 0.0),
    ],
)
def test_jaro_winkler_vectors(a, b, expected):
    assert jaro_winkler(a, b) == pytest.approx(expected, abs=1e-3)


@given(NAMES, NAMES)
def test_jaro_winkler_is_symmetric_and_bounded(a, b):
    assert jaro_winkler(a, b) == pytest.approx(jaro_winkler(b, a))
    assert 0.0 <= jaro_winkler(a, b) <= 1.0


@pytest.mark.parametrize(
    ("a", "b", "distance"),
    [
        ("smith", "smith", 0),
        ("smith", "smyth", 1),  # substitution
        ("jones", "jnoes", 1),  # adjacent transposition
        ("thomas", "tomas", 1),  # dropped letter
        ("ann", "anne", 1),  # added letter
        ("ca", "abc", 3),  # optimal string alignment, not unrestricted Damerau-Levenshtein (2)
        ("", "abc", 3),
        ("kitten", "sitting", 3),
    ],
)
def test_edit_distance_vectors(a, b, distance):
    assert edit_distance(a, b) == distance
    assert edit_distance(b, a) == distance


@given(NAMES, NAMES)
def test_within_one_edit_agrees_with_edit_distance(a, b):
    assert within_one_edit(a, b) == (edit_distance(a, b) <= 1)


@pytest.mark.parametrize(
    ("name", "code"),
    [
        ("robert", "R163"),
        ("rupert", "R163"),
        ("ashcraft", "A261"),
        ("ashcroft", "A261"),
        ("tymczak", "T522"),
        ("pfister", "P236"),
        ("honeyman", "H555"),
        ("lee", "L000"),
        ("kowalski", "K420"),
        ("kowalska", "K420"),
        ("", ""),
        ("123", ""),
    ],
)
def test_soundex_vectors(name, code):
    assert soundex(name) == code
