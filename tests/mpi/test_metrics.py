"""Pairwise precision/recall, wrongly merged and split people, subgroups (careweave.mpi.metrics)."""

from __future__ import annotations

from datetime import date

import pytest

from careweave.mpi.dataset import Truth
from careweave.mpi.metrics import PairCounts, age_band, cluster_quality

AS_OF = date(2025, 3, 31)


def truth(rows):
    return {
        pid: Truth(pid, person, sex, date.fromisoformat(born), None, ()) for pid, person, sex, born in rows
    }


TRUTH = truth(
    [
        ("a1", "A", "female", "1980-01-02"),
        ("a2", "A", "female", "1980-01-02"),
        ("a3", "A", "female", "1980-01-02"),
        ("b1", "B", "male", "2025-01-01"),
        ("b2", "B", "male", "2025-01-01"),
        ("c1", "C", "male", "1950-06-01"),
    ]
)


def test_perfect_clustering():
    q = cluster_quality([("a1", "a2", "a3"), ("b1", "b2"), ("c1",)], TRUTH, AS_OF)
    assert q.pairs == PairCounts(true_pairs=4, predicted_pairs=4, correct_pairs=4)
    assert (q.wrongly_merged_persons, q.split_persons, q.resolved_persons) == (0, 0, 3)


def test_split_and_merged_people():
    q = cluster_quality([("a1", "a2"), ("a3",), ("b1", "c1"), ("b2",)], TRUTH, AS_OF)
    assert q.pairs == PairCounts(true_pairs=4, predicted_pairs=2, correct_pairs=1)
    assert q.pairs.precision == 0.5 and q.pairs.recall == 0.25
    assert q.pairs.f1 == pytest.approx(2 * 0.5 * 0.25 / 0.75)
    assert q.wrongly_merged_clusters == 1
    assert q.wrongly_merged_persons == 2  # B and C
    assert q.split_persons == 2  # A and B
    assert q.resolved_persons == 0


def test_groups_by_age_and_sex():
    q = cluster_quality([("a1", "a2"), ("a3",), ("b1", "b2"), ("c1",)], TRUTH, AS_OF)
    groups = {(g.age_band, g.sex): g for g in q.groups}
    assert set(groups) == {("45-64", "female"), ("under 1", "male"), ("65+", "male")}
    a = groups["45-64", "female"]
    assert (a.persons, a.records, a.true_pairs, a.found_pairs, a.split) == (1, 3, 3, 1, 1)
    assert a.recall == pytest.approx(1 / 3)
    assert groups["under 1", "male"].resolved_share == 1.0


@pytest.mark.parametrize(
    ("born", "band"),
    [("2025-03-31", "under 1"), ("2024-04-01", "under 1"), ("2024-03-31", "1-17"), ("2007-04-01", "1-17"),
     ("2007-03-31", "18-44"), ("1960-03-31", "65+"), ("1960-04-01", "45-64")],
)  # fmt: skip
def test_age_bands(born, band):
    assert age_band(date.fromisoformat(born), AS_OF) == band


def test_empty_counts_are_perfect():
    assert PairCounts(0, 0, 0).precision == 1.0 and PairCounts(0, 0, 0).recall == 1.0
