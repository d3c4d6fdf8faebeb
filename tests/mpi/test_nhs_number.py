"""NHS number: Modulus 11, display form, ranges, the test-number guard and generators.

Vectors: the worked example and the PDS sandbox numbers from the NHS identity notes
(/work/shared/identity-notes.md section 3.1).
"""

from __future__ import annotations

import itertools
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from careweave.mpi import nhs_number
from careweave.mpi.nhs_number import Region

VALID = ["9434765919", "9000000009", "9000000025", "9000000033", "9111231130"]
INVALID = [
    "9000000000",
    "9434765918",
    "943476591",
    "94347659190",
    "943476591a",
    "",
    "\u0669\u0664\u0663\u0664\u0667\u0666\u0665\u0669\u0661\u0669",
]


def test_worked_example_check_digit():
    # 943476591: 90+36+24+28+42+30+20+27+2 = 299; 299 mod 11 = 2; 11 - 2 = 9
    assert nhs_number.check_digit("943476591") == 9


@pytest.mark.parametrize("value", VALID)
def test_documented_valid_numbers(value):
    assert nhs_number.is_valid(value)


@pytest.mark.parametrize("value", INVALID)
def test_documented_invalid_numbers(value):
    assert not nhs_number.is_valid(value)


def test_check_eleven_means_zero():
    # a stem whose weighted sum is a multiple of 11 gets check digit 0
    stem = next(
        "".join(map(str, digits))
        for digits in itertools.product(range(10), repeat=9)
        if sum(d * w for d, w in zip(digits, nhs_number.WEIGHTS, strict=True)) % 11 == 0 and any(digits)
    )
    assert nhs_number.check_digit(stem) == 0
    assert nhs_number.is_valid(stem + "0")


def test_check_ten_stem_has_no_number():
    stem = next(f"{i:09d}" for i in range(1000) if nhs_number.check_digit(f"{i:09d}") is None)
    assert all(not nhs_number.is_valid(stem + str(d)) for d in range(10))


@pytest.mark.parametrize(
    "stem",
    [
        "12345678",
        "1234567890",
        "12345678x",
        "\uff11\uff12\uff13\uff14\uff15\uff16\uff17\uff18\uff19",
    ],
)
def test_check_digit_rejects_bad_stems(stem):
    with pytest.raises(ValueError):
        nhs_number.check_digit(stem)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("9434765919", "9434765919"),
        ("943 476 5919", "9434765919"),
        ("943-476-5919", "9434765919"),
        ("  943 476 5919 ", "9434765919"),
        ("943 4765 919", None),
        ("94347659", None),
        ("943.476.5919", None),
    ],
)
def test_normalise(raw, expected):
    assert nhs_number.normalise(raw) == expected


def test_format_is_3_3_4():
    assert nhs_number.format("9434765919") == "943 476 5919"
    with pytest.raises(ValueError):
        nhs_number.format("943 476 5919")


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("0101000000", Region.SCOTLAND_CHI),  # 01/01/00
        ("3112999999", Region.SCOTLAND_CHI),  # 31/12/99, the top of the range
        ("2902240000", Region.SCOTLAND_CHI),  # 29/02/24 is a date
        ("2902230000", Region.UNALLOCATED),  # 29/02/23 is not
        ("3113000000", Region.UNALLOCATED),  # between CHI and H&C
        ("0100999999", Region.UNALLOCATED),  # below CHI
        ("3200000000", Region.NORTHERN_IRELAND),
        ("3999999999", Region.NORTHERN_IRELAND),
        ("4000000000", Region.ENGLAND_WALES_IOM),
        ("4999999999", Region.ENGLAND_WALES_IOM),
        ("5000000000", Region.RESERVED),
        ("5999999999", Region.RESERVED),
        ("6000000000", Region.ENGLAND_WALES_IOM),
        ("7999999999", Region.ENGLAND_WALES_IOM),
        ("8000000000", Region.REPUBLIC_OF_IRELAND),
        ("8599999999", Region.REPUBLIC_OF_IRELAND),
        ("8600000000", Region.UNALLOCATED),
        ("9000000009", Region.TEST),
        ("9999999999", Region.TEST),
    ],
)
def test_region(value, expected):
    assert nhs_number.region(value) is expected


def test_test_number_guard():
    # Policy: no live-range numbers in the repository. The reserved 5xx block is never issued,
    # so it stands in for "a checksum-valid number outside the test range".
    live = "5000000005"
    assert nhs_number.region(live) is Region.RESERVED
    assert nhs_number.is_valid(live)
    assert not nhs_number.is_test_number(live)
    assert nhs_number.is_test_number("9000000009")
    assert not nhs_number.is_fixture_number("9000000009")
    assert nhs_number.is_fixture_number("9990000018") == nhs_number.is_test_number("9990000018")
    assert nhs_number.is_acceptable(live, test_environment=False)
    assert not nhs_number.is_acceptable("9000000009", test_environment=False)
    assert nhs_number.is_acceptable("9000000009", test_environment=True)
    assert not nhs_number.is_acceptable("9000000000", test_environment=True)


@settings(max_examples=300)
@given(st.integers(min_value=0, max_value=2**32))
def test_random_test_numbers_are_valid_fixture_numbers(seed):
    value = nhs_number.random_test_number(random.Random(seed))
    assert nhs_number.is_valid(value)
    assert nhs_number.is_fixture_number(value)
    assert nhs_number.region(value) is Region.TEST


@settings(max_examples=100)
@given(
    st.integers(min_value=0, max_value=2**32),
    st.integers(min_value=0, max_value=9),
    st.integers(min_value=1, max_value=9),
)
def test_changing_one_digit_invalidates(seed, position, delta):
    value = nhs_number.random_test_number(random.Random(seed))
    changed = value[:position] + str((int(value[position]) + delta) % 10) + value[position + 1 :]
    assert changed != value
    assert not nhs_number.is_valid(changed)


@settings(max_examples=200)
@given(st.integers(min_value=0, max_value=999_999_999))
def test_check_ten_stems_never_produce_a_number(stem_int):
    stem = f"{stem_int:09d}"
    check = nhs_number.check_digit(stem)
    valid_last_digits = [d for d in range(10) if nhs_number.is_valid(stem + str(d))]
    if check is None:
        assert valid_last_digits == []
    else:
        assert valid_last_digits == [check]


def test_iter_test_numbers_enumerates_every_valid_fixture_number_once():
    numbers = list(nhs_number.iter_test_numbers(random.Random(7)))
    expected = {
        f"999{i:06d}{c}" for i in range(1_000_000) if (c := nhs_number.check_digit(f"999{i:06d}")) is not None
    }
    assert len(numbers) == len(set(numbers)) == len(expected)
    assert set(numbers) == expected


def test_iter_test_numbers_order_depends_on_the_seed():
    first = list(itertools.islice(nhs_number.iter_test_numbers(random.Random(1)), 50))
    again = list(itertools.islice(nhs_number.iter_test_numbers(random.Random(1)), 50))
    other = list(itertools.islice(nhs_number.iter_test_numbers(random.Random(2)), 50))
    assert first == again
    assert first != other
    assert first != sorted(first)  # not simply counting up
