"""The generator's parts: London offsets, places, name pools, typos, households, weighted picks."""

from __future__ import annotations

import random
import re
from collections import Counter
from datetime import date, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from careweave.generate import clock, names, places
from careweave.generate.discrepancy import fold_ascii, typo
from careweave.generate.people import HouseholdContext, make_household
from careweave.generate.randomness import Weighted, derive, new_id
from careweave.mpi import nhs_number


@pytest.mark.parametrize(
    ("local", "expected"),
    [
        (datetime(2024, 1, 15, 9, 30), "2024-01-15T09:30:00+00:00"),
        (datetime(2024, 7, 1, 14, 0), "2024-07-01T14:00:00+01:00"),
        # 2024-03-31: clocks go forward at 01:00 GMT; 01:30 does not exist
        (datetime(2024, 3, 31, 0, 30), "2024-03-31T00:30:00+00:00"),
        (datetime(2024, 3, 31, 1, 30), "2024-03-31T02:30:00+01:00"),
        (datetime(2024, 3, 31, 3, 0), "2024-03-31T03:00:00+01:00"),
        # 2024-10-27: clocks go back at 02:00 BST; the repeated hour takes GMT
        (datetime(2024, 10, 27, 0, 30), "2024-10-27T00:30:00+01:00"),
        (datetime(2024, 10, 27, 1, 30), "2024-10-27T01:30:00+00:00"),
        (datetime(2024, 10, 26, 23, 0), "2024-10-26T23:00:00+01:00"),
        (datetime(2019, 3, 31, 12, 0), "2019-03-31T12:00:00+01:00"),
    ],
)
def test_london_offsets(local, expected):
    assert clock.fhir_datetime(local) == expected


def test_hl7_timestamp_and_instant():
    when = datetime(2023, 8, 2, 7, 5, 9, 250_000)
    assert clock.hl7_timestamp(when) == "20230802070509+0100"
    assert clock.fhir_instant(when) == "2023-08-02T07:05:09.250+01:00"
    assert clock.hl7_date(date(1999, 12, 31)) == "19991231"


def test_emails_are_ascii_on_reserved_domains():
    rng = random.Random(1)
    for first, family in [("Zoë", "O'Brien"), ("Łukasz", "Wiśniewski"), ("Ka Wai", "Chan")]:
        email = places.email_for(rng, first, family)
        assert re.fullmatch(r"[a-z0-9.\-]+@example\.(com|org|net)", email), email


def test_common_names_are_common():
    rng = random.Random(5)
    surnames = Counter(names.pick_surname(rng, "A")[0] for _ in range(20_000))
    top, _ = surnames.most_common(1)[0]
    assert top == "Smith"
    assert surnames["Smith"] > 200  # strangers share names
    assert len(surnames) > 500  # and there is a long tail


def test_given_names_follow_the_cohort():
    rng = random.Random(6)
    old = Counter(names.pick_given(rng, "A", "female", 1935) for _ in range(3000))
    young = Counter(names.pick_given(rng, "A", "female", 2015) for _ in range(3000))
    assert old["Margaret"] > 50 and young["Margaret"] == 0
    assert young["Olivia"] > 50 and old["Olivia"] == 0


def test_gendered_surname_forms():
    forms = {names.pick_surname(random.Random(i), "C") for i in range(400)}
    assert ("Kowalski", "Kowalska") in forms
    assert ("Nowak", "Nowak") in forms


def test_every_ethnic_group_has_names():
    rng = random.Random(2)
    for code in names.ETHNIC_GROUPS:
        for sex in ("male", "female"):
            assert names.pick_given(rng, code, sex, 1980)
        assert all(names.pick_surname(rng, code))


def test_nicknames_are_real_alternatives():
    assert "Peggy" in names.NICKNAMES["Margaret"]
    assert "Bill" in names.NICKNAMES["William"]
    assert all(short and short != full for full, s in names.NICKNAMES.items() for short in s)


@pytest.mark.parametrize("word", ["Smith", "Margaret", "Okonkwo", "Lee", "Wiśniewska"])
def test_typo_is_one_slip_away(word):
    for seed in range(50):
        slipped = typo(random.Random(seed), word)
        assert slipped != word
        assert abs(len(slipped) - len(word)) <= 1
        assert slipped[0] == word[0]
        if len(slipped) == len(word):
            diffs = [i for i, (a, b) in enumerate(zip(word, slipped, strict=True)) if a != b]
            swapped = len(diffs) == 2 and word[diffs[0]] == slipped[diffs[1]]
            assert len(diffs) == 1 or swapped


@pytest.mark.parametrize(
    ("raw", "folded"),
    [("Zoë", "Zoe"), ("Łukasz", "Lukasz"), ("Wiśniewska", "Wisniewska"), ("Ayşe", "Ayse"),
     ("Smith", "Smith")],
)  # fmt: skip
def test_fold_ascii(raw, folded):
    assert fold_ascii(raw) == folded


def _households(count: int, seed: int = 1):
    ctx = HouseholdContext(
        as_of=date(2025, 3, 31),
        regions=Weighted.of([("leeds", 1.0), ("london", 1.0)]),
        nhs_numbers=nhs_number.iter_test_numbers(random.Random(seed)),
    )
    first = 0
    for index in range(count):
        people = make_household(derive(seed, "household", index), index, first, ctx, 10)
        first += len(people)
        yield people


def test_households_are_families():
    twins = married = children = 0
    numbers = set()
    for people in _households(3000):
        assert len({p.address for p in people}) == 1
        assert len({p.household_id for p in people}) == 1
        for p in people:
            assert nhs_number.is_valid(p.nhs_number) and nhs_number.is_fixture_number(p.nhs_number)
            assert p.nhs_number not in numbers
            numbers.add(p.nhs_number)
            married += p.birth_family is not None
        pairs = [p for p in people if p.multiple_birth is not None]
        if pairs:
            twins += 1
            first, second = pairs
            assert (first.family, first.birth_date) == (second.family, second.birth_date)
            assert first.given[0] != second.given[0]
            assert {first.multiple_birth, second.multiple_birth} == {1, 2}
        adults = [p for p in people if (date(2025, 3, 31) - p.birth_date).days >= 18 * 365]
        kids = [p for p in people if p not in adults and p.multiple_birth is None]
        children += len(kids)
    assert twins > 10 and married > 300 and children > 500


def test_age_pyramid_is_plausible():
    ages = Counter()
    for people in _households(2000):
        for p in people:
            age = (date(2025, 3, 31) - p.birth_date).days // 365
            ages["child" if age < 18 else "working" if age < 65 else "older"] += 1
    total = sum(ages.values())
    assert 0.15 < ages["child"] / total < 0.32
    assert 0.14 < ages["older"] / total < 0.30


def test_weighted_picks_follow_the_weights():
    weighted = Weighted.of([("a", 1.0), ("b", 0.0), ("c", 3.0)])
    rng = random.Random(3)
    counts = Counter(weighted.pick(rng) for _ in range(20_000))
    assert counts["b"] == 0
    assert 0.23 < counts["a"] / 20_000 < 0.27
    assert weighted.share("c") == pytest.approx(0.75)
    with pytest.raises(ValueError):
        Weighted.of([("a", 0.0)])


def test_derived_streams_and_ids_are_reproducible():
    assert derive(1, "x", 2).random() == derive(1, "x", 2).random()
    assert derive(1, "x", 2).random() != derive(1, "x", 3).random()
    first = new_id(derive(0, "ids"))
    assert first == new_id(derive(0, "ids"))
    assert re.fullmatch(r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}", first)


def _london():
    zoneinfo = pytest.importorskip("zoneinfo")
    try:
        return zoneinfo.ZoneInfo("Europe/London")
    except zoneinfo.ZoneInfoNotFoundError:
        pytest.skip("no time-zone database on this machine")


@settings(max_examples=500)
@given(st.datetimes(min_value=datetime(1996, 1, 1), max_value=datetime(2037, 12, 31)))
def test_offsets_agree_with_the_time_zone_database(local):
    london = _london()
    wall, offset = clock.settle(local)
    if wall != local:  # moved out of the skipped spring hour: that wall time does not exist
        assert (local.month, local.hour, wall.hour) == (3, 1, 2)
        return
    expected = wall.replace(tzinfo=london, fold=1).utcoffset()
    assert expected is not None
    assert offset * 3600 == expected.total_seconds()
