"""UK postcodes: normal form, unit/sector/district, NHS pseudo-postcodes (identity notes 4.2)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from careweave.mpi.postcode import Postcode, is_pseudo, normalise_postcode, parse_postcode


@pytest.mark.parametrize(
    ("raw", "normal"),
    [
        ("ls6 4qt", "LS6 4QT"),
        ("LS64QT", "LS6 4QT"),
        (" SW1A  1AA ", "SW1A 1AA"),
        ("M1 1AE", "M1 1AE"),
        ("EC1A1BB", "EC1A 1BB"),
        ("W1T 1JY", "W1T 1JY"),
        ("GIR0AA", "GIR 0AA"),
        ("ZZ99 3VZ", "ZZ99 3VZ"),
        ("zz993wz", "ZZ99 3WZ"),
        ("QA1 1AA", None),  # Q never first
        ("LS6 4CI", None),  # C and I never in the inward code
        ("12345", None),
        ("", None),
        ("N/A", None),
    ],
)
def test_normalise(raw, normal):
    assert normalise_postcode(raw) == normal


@given(st.text(alphabet="ABCDEFGHLMNRSTWZ0123456789 ", max_size=9))
def test_normalise_is_idempotent(raw):
    once = normalise_postcode(raw)
    if once is not None:
        assert normalise_postcode(once) == once


@pytest.mark.parametrize("code", ["ZZ99 3VZ", "ZZ99 3WZ", "ZZ99 3CZ", "ZZ99 1WZ", "ZZ99 2WZ", "ZZ99 3GZ"])
def test_pseudo_postcodes_are_no_evidence(code):
    assert is_pseudo(code)
    assert parse_postcode(code) is None


def test_levels():
    assert parse_postcode("ls6 4qt") == Postcode(unit="LS6 4QT", sector="LS6 4", district="LS6")
    assert parse_postcode("SW1A 1AA") == Postcode(unit="SW1A 1AA", sector="SW1A 1", district="SW1A")
    assert parse_postcode("nonsense") is None
