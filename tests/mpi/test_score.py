"""Scores, explanations and bands (careweave.mpi.score)."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings

from careweave.mpi import FIELDS, Band, Thresholds, band_of, compare, decide, score, weigh
from careweave.mpi import rules as r
from tests.mpi.builders import NHS_A, NHS_B, record
from tests.mpi.test_compare import VARIANTS
from tests.mpi.test_model import make_model

MODEL = make_model()


def test_score_carries_everything_a_reviewer_needs():
    s = score(record("a", nhs=NHS_A), record("b", nhs=NHS_A, given=("Jon",)), MODEL)
    assert (s.left, s.right, s.model_version) == ("a", "b", MODEL.version)
    assert [c.field for c in s.contributions] == ["prior", *FIELDS]
    assert s.weight == pytest.approx(math.fsum(c.weight for c in s.contributions))
    assert 0.0 <= s.probability <= 1.0
    by_field = {c.field: c for c in s.contributions}
    assert by_field["nhs_number"].level == "exact, both verified"
    assert by_field["phone"].level is None and by_field["phone"].weight == 0.0
    assert "smith" in by_field["family_name"].note  # term frequency shown
    text = s.explain()
    assert "nhs_number" in text and MODEL.version in text


def test_term_frequency_makes_common_names_weaker():
    common = score(record("a", family="Smith"), record("b", family="Smith"), MODEL)
    rare = score(record("a", family="Oyelaran"), record("b", family="Oyelaran"), MODEL)
    assert rare.weight > common.weight


def test_weigh_is_the_score_weight():
    a, b = record("a", nhs=NHS_A, maiden="Brown"), record("b", family="Brown", phones=("07700 900001",))
    assert weigh(compare(a, b), MODEL) == score(a, b, MODEL).weight


@settings(max_examples=150, deadline=None)
@given(VARIANTS, VARIANTS)
def test_score_is_symmetric(left, right):
    a, b = record("a", **left), record("b", **right)
    ab, ba = score(a, b, MODEL), score(b, a, MODEL)
    assert ab.weight == pytest.approx(ba.weight)
    assert [(c.field, c.level) for c in ab.contributions] == [(c.field, c.level) for c in ba.contributions]
    assert ab.rules == ba.rules


TH = Thresholds(certain=10.0, possible=0.0)


@pytest.mark.parametrize(
    ("weight", "rules", "band"),
    [
        (25.0, (), Band.CERTAIN),
        (10.0, (), Band.CERTAIN),
        (9.9, (), Band.POSSIBLE),
        (0.0, (), Band.POSSIBLE),
        (-0.1, (), Band.NO_MATCH),
        (25.0, (r.PLACEHOLDER_NAME,), Band.POSSIBLE),  # review-only caps certain
        (5.0, (r.PLACEHOLDER_NAME,), Band.POSSIBLE),
        (-5.0, (r.PLACEHOLDER_NAME,), Band.NO_MATCH),
        (40.0, (r.DIFFERENT_VERIFIED_NHS_NUMBERS,), Band.NO_MATCH),  # cannot-link wins
        (40.0, (r.PLACEHOLDER_NAME, r.TWINS), Band.NO_MATCH),
    ],
)
def test_bands(weight, rules, band):
    assert band_of(weight, rules, TH) is band


def test_decide_uses_the_score():
    s = score(record("a", nhs=NHS_A), record("b", nhs=NHS_B), MODEL)
    assert r.DIFFERENT_VERIFIED_NHS_NUMBERS in s.rules
    assert decide(s, TH) is Band.NO_MATCH
    same = score(record("a", nhs=NHS_A), record("b", nhs=NHS_A), MODEL)
    assert decide(same, TH) is Band.CERTAIN


def test_a_margin_rule_needs_a_weight_above_certain_by_the_margin():
    from careweave.mpi import Band, Thresholds, band_of
    from careweave.mpi.rules import MARGIN_BITS, WEAKLY_CORROBORATED

    t = Thresholds(certain=10.0, possible=0.0)
    rules = (WEAKLY_CORROBORATED,)
    assert band_of(10.0 + MARGIN_BITS - 0.01, rules, t) is Band.POSSIBLE
    assert band_of(10.0 + MARGIN_BITS, rules, t) is Band.CERTAIN
    assert band_of(10.0, (), t) is Band.CERTAIN
    assert band_of(-1.0, rules, t) is Band.NO_MATCH
