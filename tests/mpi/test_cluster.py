"""Clustering: links become people, and no chain glues together records that cannot be one."""

from __future__ import annotations

import pytest

from careweave.mpi import Link, cluster, conflicts
from careweave.mpi import rules as r
from tests.mpi.builders import NHS_A, NHS_B, record


def records(*items):
    return {x.id: x for x in items}


def test_links_join_and_unlinked_records_stay_alone():
    people = records(record("a"), record("b"), record("c", given=("Peter",)), record("d"))
    result = cluster(people, [Link("a", "b", 20.0), Link("b", "d", 15.0)])
    assert result.clusters == (("a", "b", "d"), ("c",))
    assert result.refused == ()
    assert result.membership() == {"a": 0, "b": 0, "d": 0, "c": 1}


def test_a_chain_cannot_glue_two_verified_numbers_together():
    # A and C carry different verified NHS numbers; B (no number) looks like both
    a, b, c = record("a", nhs=NHS_A), record("b"), record("c", nhs=NHS_B)
    assert r.DIFFERENT_VERIFIED_NHS_NUMBERS in conflicts(a, c)
    result = cluster(records(a, b, c), [Link("a", "b", 30.0), Link("b", "c", 25.0)])
    assert result.clusters == (("a", "b"), ("c",))
    (refusal,) = result.refused
    assert (refusal.link.left, refusal.link.right) == ("b", "c")
    assert (refusal.left_member, refusal.right_member) == ("a", "c")
    assert refusal.rules == (r.DIFFERENT_VERIFIED_NHS_NUMBERS,)


def test_strongest_link_wins_the_contested_record():
    a, b, c = record("a", nhs=NHS_A), record("b"), record("c", nhs=NHS_B)
    result = cluster(records(a, b, c), [Link("a", "b", 18.0), Link("b", "c", 25.0)])
    assert result.clusters == (("a",), ("b", "c"))


def test_twins_are_never_glued_by_a_third_record():
    twin = {"family": "Begum", "birth": "2016-04-03", "gender": "male"}
    hassan = record("h", given=("Hassan",), **twin)
    yusuf = record("y", given=("Yusuf",), **twin)
    hassan_typo = record("t", given=("Hasan",), **twin)
    result = cluster(records(hassan, yusuf, hassan_typo), [Link("h", "t", 30.0), Link("t", "y", 29.0)])
    assert ("h", "t") in result.clusters and ("y",) in result.clusters
    assert result.refused[0].rules == (r.TWINS,)


def test_order_of_links_does_not_matter():
    people = records(record("a", nhs=NHS_A), record("b"), record("c", nhs=NHS_B), record("d"))
    links = [Link("a", "b", 30.0), Link("b", "c", 25.0), Link("c", "d", 20.0), Link("a", "d", 10.0)]
    assert cluster(people, links) == cluster(people, list(reversed(links)))


def test_unknown_record_in_a_link():
    with pytest.raises(KeyError):
        cluster(records(record("a")), [Link("a", "zz", 1.0)])
