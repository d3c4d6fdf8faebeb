"""NHS numbers: the Modulus 11 check, display format, number ranges and test-range generation.

Rules:
1. An NHS number is ten ASCII digits. Digits 1-9 are the identifier and digit 10 the check digit:
   multiply digits 1-9 by the weights 10, 9, ..., 2, sum, take ``11 - (sum mod 11)``; 11 means a
   check digit of 0, and 10 means the nine-digit stem is never issued (:func:`check_digit` returns
   None for it).
2. Functions here take the canonical ten-digit form. :func:`normalise` turns the display forms
   (``943 476 5919``, ``943-476-5919``) into it; nothing else is accepted.
3. Ranges (inclusive, from the ``nhs-number`` package's constants): 010 100 0000 - 311 299 9999
   Scotland CHI (the first six digits are a DDMMYY birth date), 320 000 0000 - 399 999 9999
   Northern Ireland H&C (some 3xx numbers are also issued in England), 400 000 0000 -
   499 999 9999 and 600 000 0000 - 799 999 9999 England, Wales and the Isle of Man,
   500 000 0000 - 599 999 9999 reserved, 800 000 0000 - 859 999 9999 Republic of Ireland IHI,
   900 000 0000 - 999 999 9999 never issued: synthetic and test patients. Anything else is
   unallocated.
4. The 999-prefixed block (999 000 0000 - 999 999 9999) is the one fixtures, demos and generators
   use. Production code must refuse or flag any 9-prefixed number unless the environment is a test
   environment (:func:`is_acceptable`).
5. Pure: randomness comes from a ``random.Random`` the caller passes in.
"""

from __future__ import annotations

import enum
import random
import re
from collections.abc import Iterator
from datetime import date

__all__ = [
    "FIXTURE_RANGE",
    "SYSTEM",
    "TEST_RANGE",
    "Region",
    "check_digit",
    "format",
    "is_acceptable",
    "is_fixture_number",
    "is_test_number",
    "is_valid",
    "iter_test_numbers",
    "normalise",
    "random_test_number",
    "region",
]

SYSTEM = "https://fhir.nhs.uk/Id/nhs-number"
WEIGHTS = (10, 9, 8, 7, 6, 5, 4, 3, 2)
TEST_RANGE = (9_000_000_000, 9_999_999_999)  # never issued: synthetic and test patients (PDS)
FIXTURE_RANGE = (9_990_000_000, 9_999_999_999)  # the block fixtures and generators use

_TEN_DIGITS = re.compile(r"[0-9]{10}\Z")
_DISPLAY = re.compile(r"([0-9]{3})[ -]?([0-9]{3})[ -]?([0-9]{4})\Z")
_FIXTURE_STEMS = 1_000_000  # stems 999 000 000 .. 999 999 999
_HALF = 1000  # the Feistel permutation works on (high 3 digits, low 3 digits)
_ROUNDS = 4


class Region(enum.Enum):
    """Which authority a number's range belongs to (rule 3)."""

    SCOTLAND_CHI = "scotland-chi"
    NORTHERN_IRELAND = "northern-ireland"
    ENGLAND_WALES_IOM = "england-wales-iom"
    RESERVED = "reserved"
    REPUBLIC_OF_IRELAND = "republic-of-ireland"
    TEST = "test"
    UNALLOCATED = "unallocated"


_RANGES: tuple[tuple[int, int, Region], ...] = (
    (101_000_000, 3_112_999_999, Region.SCOTLAND_CHI),
    (3_200_000_000, 3_999_999_999, Region.NORTHERN_IRELAND),
    (4_000_000_000, 4_999_999_999, Region.ENGLAND_WALES_IOM),
    (5_000_000_000, 5_999_999_999, Region.RESERVED),
    (6_000_000_000, 7_999_999_999, Region.ENGLAND_WALES_IOM),
    (8_000_000_000, 8_599_999_999, Region.REPUBLIC_OF_IRELAND),
    (TEST_RANGE[0], TEST_RANGE[1], Region.TEST),
)


def check_digit(stem: str) -> int | None:
    """The check digit of a nine-digit stem, or None when the stem can never be issued (rule 1)."""
    if len(stem) != 9 or not stem.isascii() or not stem.isdigit():
        raise ValueError(f"an NHS number stem is nine digits, not {stem!r}")
    total = sum(int(d) * w for d, w in zip(stem, WEIGHTS, strict=True))
    check = 11 - total % 11
    if check == 11:
        return 0
    if check == 10:
        return None
    return check


def is_valid(value: str) -> bool:
    """True when ``value`` is ten digits whose tenth is the Modulus 11 check digit of the rest."""
    if _TEN_DIGITS.match(value) is None:
        return False
    return check_digit(value[:9]) == int(value[9])


def normalise(value: str) -> str | None:
    """The ten-digit form of ``1234567890``, ``123 456 7890`` or ``123-456-7890``; None otherwise.

    Surrounding whitespace is ignored. The check digit is not tested: use :func:`is_valid`.
    """
    m = _DISPLAY.match(value.strip())
    return None if m is None else "".join(m.groups())


def format(value: str) -> str:
    """The 3-3-4 display form (``943 476 5919``) of a ten-digit number."""
    if _TEN_DIGITS.match(value) is None:
        raise ValueError(f"an NHS number is ten digits, not {value!r}")
    return f"{value[:3]} {value[3:6]} {value[6:]}"


def region(value: str) -> Region:
    """The range ``value`` falls in (rule 3). A CHI-range number that is not a DDMMYY date is
    :attr:`Region.UNALLOCATED`. The check digit is not tested."""
    if _TEN_DIGITS.match(value) is None:
        raise ValueError(f"an NHS number is ten digits, not {value!r}")
    n = int(value)
    for low, high, found in _RANGES:
        if low <= n <= high:
            if found is Region.SCOTLAND_CHI and not _is_ddmmyy(value[:6]):
                return Region.UNALLOCATED
            return found
    return Region.UNALLOCATED


def _is_ddmmyy(six: str) -> bool:
    # Any century: 2000 + yy is a leap year exactly when yy % 4 == 0, the permissive reading.
    try:
        date(2000 + int(six[4:6]), int(six[2:4]), int(six[0:2]))
    except ValueError:
        return False
    return True


def is_test_number(value: str) -> bool:
    """True for any 9-prefixed number (never issued; synthetic and test patients, rule 3)."""
    return _TEN_DIGITS.match(value) is not None and value[0] == "9"


def is_fixture_number(value: str) -> bool:
    """True for the 999-prefixed block that fixtures and generators use (rule 4)."""
    return _TEN_DIGITS.match(value) is not None and value.startswith("999")


def is_acceptable(value: str, *, test_environment: bool) -> bool:
    """The guard of rule 4: a valid number, and a test number only in a test environment."""
    return is_valid(value) and (test_environment or not is_test_number(value))


def random_test_number(rng: random.Random) -> str:
    """A uniformly chosen valid number in the 999 block (repeats are possible)."""
    while True:
        stem = f"999{rng.randrange(_FIXTURE_STEMS):06d}"
        check = check_digit(stem)
        if check is not None:
            return f"{stem}{check}"


def iter_test_numbers(rng: random.Random) -> Iterator[str]:
    """Every valid number of the 999 block exactly once, in an order chosen by ``rng``.

    The order is a keyed permutation (a four-round Feistel network over the stems' two three-digit
    halves), so memory stays constant and no number repeats. About 909,000 numbers are valid; the
    iterator ends after the last.
    """
    keys = [[rng.randrange(_HALF) for _ in range(_HALF)] for _ in range(_ROUNDS)]
    for index in range(_FIXTURE_STEMS):
        high, low = divmod(index, _HALF)
        for key in keys:
            high, low = low, (high + key[low]) % _HALF
        stem = f"999{high:03d}{low:03d}"
        check = check_digit(stem)
        if check is not None:
            yield f"{stem}{check}"
