"""Blocking keys and candidate pairs (careweave.mpi.blocking)."""

from __future__ import annotations

from careweave.mpi import blocking_keys, build_index, candidate_pairs
from tests.mpi.builders import NHS_A, record


def test_keys_cover_each_error_with_another_rule():
    base = blocking_keys(record("a", nhs=NHS_A))
    assert f"nhs:{NHS_A}" in base
    assert any(k.startswith("dob+name:1980-05-17|") for k in base)
    assert any(k.startswith("names+year:1980|") for k in base)
    assert any(k.startswith("postcode+name:LS6 4QT|") for k in base)
    # without any NHS number, each single error still leaves a shared key
    plain = blocking_keys(record("a", birth="1980-05-07"))
    for change in (
        {"birth": "1980-01-01"},  # 1 January placeholder
        {"birth": "1980-07-05"},  # day and month swapped
        {"given": ("Smith",), "family": "John"},  # swapped names
        {"family": "Jones"},  # changed surname
        {"postcode": "M1 1AE"},  # moved
        {"given": ("Jack",)},  # nickname
        {"given": ("Jack",), "birth": "1980-07-05"},  # nickname and a swapped birth date
        {"family": "Jones", "birth": "1980-01-01"},  # new surname and a placeholder date
    ):
        assert plain & blocking_keys(record("b", **{"birth": "1980-05-07", **change})), change


def test_swapped_names_share_keys_without_the_nhs_number():
    assert blocking_keys(record("a", given=("Adam",), family="Thomas", postcode=None)) & blocking_keys(
        record("b", given=("Thomas",), family="Adam", postcode=None)
    )


def test_candidate_pairs_are_unique_and_ordered():
    records = [
        record("a", nhs=NHS_A),
        record("b", nhs=NHS_A),
        record("c"),
        record("d", given=("Zed",), family="Q"),
    ]
    pairs = list(candidate_pairs(build_index(records)))
    assert pairs == sorted(set(pairs))
    assert all(i < j for i, j in pairs)
    assert (0, 1) in pairs and (0, 2) in pairs
    assert not any(3 in p for p in pairs)  # nothing in common with anyone


def test_oversized_blocks_are_skipped_and_counted():
    records = [record(f"p{i}", given=(f"N{i}",), family=f"F{i}", nhs=None) for i in range(5)]
    index = build_index(records, max_block=3)  # all share the postcode and the birth date
    assert index.oversized > 0
    assert index.largest <= 3
