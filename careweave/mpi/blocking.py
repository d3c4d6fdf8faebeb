"""Blocking: which pairs of records are worth comparing, so that cost grows linearly.

Rules:
1. A record's blocking keys are strings; two records are compared when they share at least one
   key. Each :class:`BlockingRule` contributes keys prefixed with its name, so keys of different
   rules never collide. The rules are a union: a true pair missed by one is caught by another.
2. The default rules (:data:`BLOCKING`), each written against the errors the others miss:
   ``nhs``: the NHS number (current and superseded); ``dob+name``: the birth date with the
   Soundex of any name (first given, family, former family), which survives swapped names, typos
   that keep the Soundex, nicknames and changed surnames; ``names+year``: Soundex of first given
   and family name (as an unordered pair, and with the nickname group for the given name) with
   the birth year, which survives day/month swaps and 1 January placeholders; ``postcode+name``:
   any postcode the record holds with the Soundex of its first given or family name, which
   survives a wrong birth date and a missing NHS number at once.
3. A block larger than ``max_block`` records is skipped and counted (it would cost quadratically
   and mostly pair strangers); the other rules still pair its members.
4. :func:`candidate_pairs` yields each pair once, as (i, j) indexes with i < j, in a fixed order;
   memory is the key index, never the set of pairs.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass

from careweave.mpi.record import PatientRecord
from careweave.mpi.similarity import soundex

__all__ = [
    "BLOCKING",
    "BlockIndex",
    "BlockingRule",
    "blocking_keys",
    "build_index",
    "candidate_pairs",
]

MAX_BLOCK = 400


@dataclass(frozen=True, slots=True)
class BlockingRule:
    """A named function from a record to its keys for this rule (rule 1)."""

    name: str
    keys: Callable[[PatientRecord], Iterable[str]]


def _nhs_keys(r: PatientRecord) -> Iterable[str]:
    numbers = set(r.nhs_history)
    if r.nhs_number is not None:
        numbers.add(r.nhs_number)
    return numbers


def _name_codes(r: PatientRecord) -> set[str]:
    codes = {r.given_soundex, r.family_soundex}
    codes.update(soundex(f) for f in r.family_history)
    codes.discard("")
    return codes


def _dob_name_keys(r: PatientRecord) -> Iterable[str]:
    if r.birth_date is None:
        return ()
    born = r.birth_date.isoformat()
    return (f"{born}|{code}" for code in _name_codes(r))


def _names_year_keys(r: PatientRecord) -> Iterable[str]:
    if r.birth_date is None or not r.given_soundex or not r.family_soundex:
        return ()
    year = r.birth_date.year
    given = {r.given_soundex, *(f"n{g}" for g in r.given_groups)}
    return (f"{year}|{min(g, r.family_soundex)}|{max(g, r.family_soundex)}" for g in given)


def _postcode_name_keys(r: PatientRecord) -> Iterable[str]:
    codes = {r.given_soundex, r.family_soundex} - {""}
    return (f"{unit}|{code}" for unit in r.postcodes for code in codes)


BLOCKING: tuple[BlockingRule, ...] = (
    BlockingRule("nhs", _nhs_keys),
    BlockingRule("dob+name", _dob_name_keys),
    BlockingRule("names+year", _names_year_keys),
    BlockingRule("postcode+name", _postcode_name_keys),
)


def blocking_keys(record: PatientRecord, rules: Sequence[BlockingRule] = BLOCKING) -> frozenset[str]:
    """Every key of a record under the rules, each prefixed with its rule's name (rule 1)."""
    return frozenset(f"{rule.name}:{key}" for rule in rules for key in rule.keys(record))


@dataclass(frozen=True, slots=True)
class BlockIndex:
    """Key -> indexes of the records holding it, oversized blocks removed (rule 3)."""

    blocks: dict[str, list[int]]
    keys_of: list[tuple[str, ...]]
    oversized: int
    largest: int


def build_index(
    records: Sequence[PatientRecord], rules: Sequence[BlockingRule] = BLOCKING, max_block: int = MAX_BLOCK
) -> BlockIndex:
    """The block index of a population (rules 1-3)."""
    blocks: dict[str, list[int]] = {}
    keys_of: list[tuple[str, ...]] = []
    for index, record in enumerate(records):
        keys = tuple(sorted(blocking_keys(record, rules)))
        keys_of.append(keys)
        for key in keys:
            blocks.setdefault(key, []).append(index)
    oversized = [k for k, members in blocks.items() if len(members) > max_block]
    for key in oversized:
        del blocks[key]
    largest = max((len(m) for m in blocks.values()), default=0)
    return BlockIndex(blocks, keys_of, len(oversized), largest)


def candidate_pairs(index: BlockIndex) -> Iterator[tuple[int, int]]:
    """Each candidate pair once, (i, j) with i < j, ordered by i then j (rule 4)."""
    blocks = index.blocks
    for i, keys in enumerate(index.keys_of):
        partners: set[int] = set()
        for key in keys:
            members = blocks.get(key)
            if members is not None and len(members) > 1:
                partners.update(j for j in members if j > i)
        yield from ((i, j) for j in sorted(partners))
