"""How good a clustering is against the ground truth: pairs, people merged and split, subgroups.

Rules:
1. Pairwise: a *true pair* is two records of one person; a *predicted pair* two records in one
   cluster. Precision is correct predicted pairs over predicted pairs, recall correct predicted
   pairs over true pairs (1.0 when there is nothing to find or nothing predicted).
2. A cluster holding records of two or more people is *wrongly merged* (an overlay: the hazard);
   every person with a record in it counts as wrongly merged. A person whose records sit in more
   than one cluster is *split* (a missed link: a duplicate). A person is *resolved* when all their
   records are in one cluster that holds nobody else.
3. Subgroups (identity notes: error rates differ by age and sex, so report them): age on the
   generator's ``as_of`` date in the bands of :data:`AGE_BANDS`, and recorded sex.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date

from careweave.mpi.dataset import Truth

__all__ = ["AGE_BANDS", "ClusterQuality", "GroupAccuracy", "PairCounts", "age_band", "cluster_quality"]

AGE_BANDS: tuple[tuple[str, int], ...] = (
    ("under 1", 1),
    ("1-17", 18),
    ("18-44", 45),
    ("45-64", 65),
    ("65+", 999),
)


def _ratio(part: int, whole: int) -> float:
    return part / whole if whole else 1.0


@dataclass(frozen=True, slots=True)
class PairCounts:
    """Pairwise counts (rule 1)."""

    true_pairs: int
    predicted_pairs: int
    correct_pairs: int

    @property
    def precision(self) -> float:
        return _ratio(self.correct_pairs, self.predicted_pairs)

    @property
    def recall(self) -> float:
        return _ratio(self.correct_pairs, self.true_pairs)

    @property
    def f1(self) -> float:
        p, r = self.precision, self.recall
        return 2 * p * r / (p + r) if p + r else 0.0


@dataclass(frozen=True, slots=True)
class GroupAccuracy:
    """Accuracy for the people of one age band and sex (rule 3)."""

    age_band: str
    sex: str
    persons: int
    records: int
    true_pairs: int
    found_pairs: int
    resolved: int
    split: int
    merged: int

    @property
    def recall(self) -> float:
        return _ratio(self.found_pairs, self.true_pairs)

    @property
    def resolved_share(self) -> float:
        return _ratio(self.resolved, self.persons)


@dataclass(frozen=True, slots=True)
class ClusterQuality:
    """Everything rules 1-3 measure about one clustering."""

    pairs: PairCounts
    clusters: int
    persons: int
    wrongly_merged_clusters: int
    wrongly_merged_persons: int
    split_persons: int
    resolved_persons: int
    groups: tuple[GroupAccuracy, ...]


def age_band(born: date, as_of: date) -> str:
    """The :data:`AGE_BANDS` label of someone born on ``born``, on ``as_of``."""
    age = as_of.year - born.year - ((as_of.month, as_of.day) < (born.month, born.day))
    return next(label for label, below in AGE_BANDS if age < below)


def _pairs(n: int) -> int:
    return n * (n - 1) // 2


def cluster_quality(
    clusters: Sequence[Sequence[str]], truth: Mapping[str, Truth], as_of: date
) -> ClusterQuality:
    """Measure a clustering of record ids against the truth (rules 1-3). Every record id must be
    in ``truth``; records of the truth that are in no cluster count as missing (split)."""
    records_of: Counter[str] = Counter(t.person_id for t in truth.values())
    found: Counter[str] = Counter()
    clusters_of: Counter[str] = Counter()
    merged: set[str] = set()
    predicted = correct = 0
    for members in clusters:
        people = Counter(truth[m].person_id for m in members)
        predicted += _pairs(len(members))
        for person, count in people.items():
            found[person] += _pairs(count)
            clusters_of[person] += 1
        correct += sum(_pairs(c) for c in people.values())
        if len(people) > 1:
            merged.update(people)
    split = {p for p in records_of if clusters_of[p] != 1}
    resolved = {p for p in records_of if p not in split and p not in merged}
    true_pairs = sum(_pairs(n) for n in records_of.values())
    return ClusterQuality(
        pairs=PairCounts(true_pairs, predicted, correct),
        clusters=len(clusters),
        persons=len(records_of),
        wrongly_merged_clusters=sum(1 for m in clusters if len({truth[x].person_id for x in m}) > 1),
        wrongly_merged_persons=len(merged),
        split_persons=len(split),
        resolved_persons=len(resolved),
        groups=_groups(truth, as_of, records_of, found, split, merged, resolved),
    )


def _groups(
    truth: Mapping[str, Truth],
    as_of: date,
    records_of: Counter[str],
    found: Counter[str],
    split: set[str],
    merged: set[str],
    resolved: set[str],
) -> tuple[GroupAccuracy, ...]:
    group_of: dict[str, tuple[str, str]] = {}
    for t in truth.values():
        group_of.setdefault(t.person_id, (age_band(t.birth_date, as_of), t.sex))
    people: defaultdict[tuple[str, str], list[str]] = defaultdict(list)
    for person, group in group_of.items():
        people[group].append(person)
    order = {label: i for i, (label, _) in enumerate(AGE_BANDS)}
    rows = []
    for (band, sex), persons in sorted(people.items(), key=lambda kv: (order[kv[0][0]], kv[0][1])):
        rows.append(
            GroupAccuracy(
                age_band=band,
                sex=sex,
                persons=len(persons),
                records=sum(records_of[p] for p in persons),
                true_pairs=sum(_pairs(records_of[p]) for p in persons),
                found_pairs=sum(found[p] for p in persons),
                resolved=sum(p in resolved for p in persons),
                split=sum(p in split for p in persons),
                merged=sum(p in merged for p in persons),
            )
        )
    return tuple(rows)
