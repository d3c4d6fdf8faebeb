"""EM estimation on an unlabelled generated population (careweave.mpi.estimate)."""

from __future__ import annotations

import pytest

from careweave.mpi import FIELDS, LEVELS, MatchModel, estimate
from careweave.mpi.estimate import estimate_u
from tests.mpi.builders import record


def test_agreement_is_evidence_for_and_disagreement_against(hard_model: MatchModel):
    for field in hard_model.fields:
        weights = field.weights
        assert weights[0] > (0.5 if field.name == "sex" else 3), field.name  # the strongest agreement
        assert weights[-1] < 0, field.name  # the plain disagreement level
        assert abs(sum(field.m) - 1) < 1e-9 and abs(sum(field.u) - 1) < 1e-9


def test_prior_is_plausible(hard, hard_model: MatchModel):
    n = len(hard.records)
    true_pairs = sum(c * (c - 1) // 2 for c in _counts(hard).values())
    expected = true_pairs / (n * (n - 1) / 2)
    assert expected / 3 < hard_model.prior < expected * 3


def _counts(hard):
    counts: dict[str, int] = {}
    for r in hard.records:
        counts[hard.person(r)] = counts.get(hard.person(r), 0) + 1
    return counts


def test_term_frequencies_make_common_names_common(hard_model: MatchModel):
    family = hard_model.term_frequencies["family_name"]
    assert family.of("smith") > family.of("no-such-name-anywhere")
    assert family.default == pytest.approx(1 / len_records(hard_model))


def len_records(model: MatchModel) -> int:
    return int(model.training["records"])


def test_deterministic(hard):
    sample = hard.records[:600]
    assert estimate(sample, seed=3, u_pairs=5000).version == estimate(sample, seed=3, u_pairs=5000).version


def test_u_of_exact_levels_is_counted_not_sampled():
    records = [record(f"p{i}", given=("John",) if i % 2 else ("Amy",), family=f"F{i}") for i in range(10)]
    u = estimate_u(records, pairs=0, rng=__import__("random").Random(0))
    # 5 Johns and 5 Amys: 2 * 5 * 4 ordered pairs agree out of 10 * 9
    assert u["given_name"][0] == pytest.approx(40 / 90)
    assert u["family_name"][0] == pytest.approx(1e-6)  # no two share a family name: the floor
    assert set(u) == set(FIELDS) and all(len(u[f]) == len(LEVELS[f]) for f in FIELDS)


def test_needs_two_records():
    with pytest.raises(ValueError):
        estimate([record("a")])
