"""Measure the matcher on a population with ground truth: :func:`evaluate`.

Rules:
1. The pipeline is the one a deployment runs: normalise every Patient, estimate the model from
   the records themselves (EM, no labels) unless one is given, block, compare and weigh every
   candidate pair, band it, cluster the certain links, then measure against the truth.
2. Pairwise metrics count pairs of records (:mod:`careweave.mpi.metrics`); "recall at zero false
   merges" is the share of true pairs whose weight is above every wrong pair's, counting pairs a
   safety rule holds back (cannot-link, review-only) as never linked; the weight it needs is
   reported, to set the ``certain`` threshold from.
3. "Recall with review" counts a true pair as found when it is auto-linked or put in front of a
   reviewer (``possible``), the share a review queue could recover.
3a. Every true pair the clustering leaves apart is put down to one reason (:data:`MISSED_REASONS`,
   the first that applies): a rule that held the pair back (grouped: placeholder, different verified
   NHS numbers, uncorroborated, first name or twins, birth dates), a weight below ``certain``, or
   no candidate pair at all (blocking). ``placeholder_pairs`` counts the true pairs with a
   placeholder record on either side: the policy never links them, so ``1 - placeholder_pairs /
   true pairs`` is the recall ceiling that rule imposes.
4. The clock is injected (``clock``) and used only for the timings; everything else is
   deterministic for given inputs and seed.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

from careweave.mpi import rules as r
from careweave.mpi.blocking import BlockIndex, build_index, candidate_pairs
from careweave.mpi.cluster import Link, cluster
from careweave.mpi.compare import compare
from careweave.mpi.dataset import Truth, read_as_of, read_patients, read_truth
from careweave.mpi.estimate import estimate
from careweave.mpi.metrics import ClusterQuality, cluster_quality
from careweave.mpi.model import MatchModel, Thresholds
from careweave.mpi.names import NicknameIndex
from careweave.mpi.record import PatientRecord, normalise
from careweave.mpi.rules import MARGIN_BITS, cannot_link, needs_margin, review_only
from careweave.mpi.score import Band, band_of, weigh

__all__ = [
    "MISSED_REASONS",
    "PairStats",
    "Progress",
    "Report",
    "Timings",
    "evaluate",
    "evaluate_records",
    "missed_reason",
]

Progress = Callable[[str, int, int], None]  # (stage, done, total)
_STEP = 50_000
_FIRST_NAME_RULES = frozenset(
    {
        r.FIRST_NAME_DIFFERS,
        r.POSSIBLE_TWINS,
        r.TWINS,
        r.SEX_DIFFERS,
        r.SEX_AND_FIRST_NAME_DIFFER,
        r.MULTIPLE_BIRTH_NAME_NOT_EXACT,
        r.MULTIPLE_BIRTH_ORDER_DIFFERS,
        r.NHS_NUMBER_DEMOGRAPHICS_CONFLICT,
    }
)
MISSED_REASONS: tuple[str, ...] = (
    "placeholder",
    "different verified NHS numbers",
    "birth dates",
    "uncorroborated",
    "first name or twins",
    "below threshold",
    "not a candidate",
)
"""Why a true pair was not linked (rule 3a), in the order they are tried."""


def missed_reason(rules: tuple[str, ...]) -> str:
    """The reason (rule 3a) a true candidate pair with these fired rules was not linked directly."""
    fired = set(rules)
    if r.PLACEHOLDER_NAME in fired:
        return "placeholder"
    if r.DIFFERENT_VERIFIED_NHS_NUMBERS in fired:
        return "different verified NHS numbers"
    if r.BIRTH_DATES_INCOMPATIBLE in fired:
        return "birth dates"
    if r.UNCORROBORATED in fired or r.WEAKLY_CORROBORATED in fired:
        return "uncorroborated"
    if fired & _FIRST_NAME_RULES:
        return "first name or twins"
    return "below threshold"


@dataclass(frozen=True, slots=True)
class Timings:
    """Seconds per stage."""

    normalise: float
    estimate: float
    block: float
    score: float
    cluster: float

    @property
    def total(self) -> float:
        return self.normalise + self.estimate + self.block + self.score + self.cluster


@dataclass(frozen=True, slots=True)
class PairStats:
    """What happened to the candidate pairs (rules 2-3)."""

    candidate_pairs: int
    true_candidate_pairs: int
    certain_pairs: int
    possible_pairs: int
    false_certain: int
    false_possible: int
    zero_false_merge_weight: float
    recall_at_zero_false_merges: float
    recall_with_review: float
    held_true_pairs: int  # true candidate pairs a safety rule holds back (never auto-linked)
    oversized_blocks: int
    largest_block: int
    rules: Mapping[str, tuple[int, int]]  # rule code -> (true pairs, wrong pairs) it fired on
    missed: Mapping[str, int] = field(default_factory=dict)  # reason -> true pairs left apart (3a)
    placeholder_pairs: int = 0  # true pairs with a placeholder record on either side (3a)
    worst_margin_wrong: float = float("-inf")  # strongest wrong pair held only by a margin rule


@dataclass(frozen=True, slots=True)
class Report:
    """The evaluation of one population (see :func:`evaluate`)."""

    source: str
    records: int
    persons: int
    model_version: str
    thresholds: Thresholds
    quality: ClusterQuality
    pairs: PairStats
    refused_links: int
    timings: Timings
    model: MatchModel = field(repr=False)

    @property
    def recall_unheld(self) -> float:
        """Pairwise recall over the true pairs no safety rule holds back: what the policy allows."""
        q = self.quality.pairs
        allowed = q.true_pairs - self.pairs.held_true_pairs
        return min(1.0, q.correct_pairs / allowed) if allowed > 0 else 1.0

    @property
    def pairs_per_second(self) -> float:
        return self.pairs.candidate_pairs / self.timings.score if self.timings.score else 0.0

    def as_json(self) -> dict[str, Any]:
        """A JSON-ready summary (the model itself is left out: ``model.to_json()``)."""
        q, p = self.quality, self.pairs
        return {
            "source": self.source,
            "records": self.records,
            "persons": self.persons,
            "model_version": self.model_version,
            "thresholds": {"certain": self.thresholds.certain, "possible": self.thresholds.possible},
            "pairwise": {
                "precision": q.pairs.precision,
                "recall": q.pairs.recall,
                "f1": q.pairs.f1,
                "true_pairs": q.pairs.true_pairs,
                "predicted_pairs": q.pairs.predicted_pairs,
                "correct_pairs": q.pairs.correct_pairs,
                "recall_at_zero_false_merges": p.recall_at_zero_false_merges,
                "zero_false_merge_weight": p.zero_false_merge_weight,
                "recall_with_review": p.recall_with_review,
                "recall_excluding_held_pairs": self.recall_unheld,
                "held_true_pairs": p.held_true_pairs,
            },
            "people": {
                "clusters": q.clusters,
                "wrongly_merged_clusters": q.wrongly_merged_clusters,
                "wrongly_merged_persons": q.wrongly_merged_persons,
                "split_persons": q.split_persons,
                "resolved_persons": q.resolved_persons,
            },
            "candidates": {
                "pairs": p.candidate_pairs,
                "blocking_recall": p.true_candidate_pairs / q.pairs.true_pairs if q.pairs.true_pairs else 1.0,
                "certain": p.certain_pairs,
                "possible": p.possible_pairs,
                "false_certain": p.false_certain,
                "false_possible": p.false_possible,
                "oversized_blocks": p.oversized_blocks,
                "largest_block": p.largest_block,
                "refused_links": self.refused_links,
                "rules": {code: {"true": t, "wrong": w} for code, (t, w) in sorted(p.rules.items())},
            },
            "missed": {
                "true_pairs": q.pairs.true_pairs,
                "by_reason": {reason: p.missed.get(reason, 0) for reason in MISSED_REASONS},
                "placeholder_pairs": p.placeholder_pairs,
                "worst_weakly_corroborated_wrong_pair": p.worst_margin_wrong,
                "placeholder_ceiling": 1 - p.placeholder_pairs / q.pairs.true_pairs
                if q.pairs.true_pairs
                else 1.0,
            },
            "groups": [
                {
                    "age_band": g.age_band,
                    "sex": g.sex,
                    "persons": g.persons,
                    "records": g.records,
                    "recall": g.recall,
                    "resolved": g.resolved_share,
                    "split": g.split,
                    "merged": g.merged,
                }
                for g in q.groups
            ],
            "seconds": {
                "normalise": self.timings.normalise,
                "estimate": self.timings.estimate,
                "block": self.timings.block,
                "score": self.timings.score,
                "cluster": self.timings.cluster,
                "total": self.timings.total,
            },
            "pairs_per_second": self.pairs_per_second,
        }


def evaluate(
    generated: Path,
    *,
    model: MatchModel | None = None,
    thresholds: Thresholds | None = None,
    seed: int = 0,
    progress: Progress | None = None,
    clock: Callable[[], float] = time.perf_counter,
) -> Report:
    """Evaluate on a directory written by :func:`careweave.generate.generate` (needs the
    ``ndjson`` format). ``model``: use it as is (else estimate one from the records);
    ``thresholds``: override the model's. Raises OSError when the files are missing."""
    generated = Path(generated)
    return evaluate_records(
        read_patients(generated),
        read_truth(generated),
        as_of=read_as_of(generated),
        model=model,
        thresholds=thresholds,
        seed=seed,
        progress=progress,
        clock=clock,
        source=str(generated),
    )


@dataclass(slots=True)
class _Tally:
    """Counters filled while the candidate pairs are scored."""

    candidates: int = 0
    true_candidates: int = 0
    certain: int = 0
    possible: int = 0
    false_certain: int = 0
    false_possible: int = 0
    max_false: float = float("-inf")
    max_margin_false: float = float("-inf")
    held_true: int = 0
    true_effective: list[float] = field(default_factory=list)
    true_possible: list[tuple[str, str]] = field(default_factory=list)
    true_pairs: list[tuple[str, str, str]] = field(default_factory=list)  # (a, b, reason if missed)
    links: list[Link] = field(default_factory=list)
    rules: Counter[tuple[str, bool]] = field(default_factory=Counter)


def _score_pairs(
    records: list[PatientRecord],
    person: list[str],
    index: BlockIndex,
    model: MatchModel,
    progress: Progress | None,
) -> _Tally:
    thresholds = model.thresholds
    tally = _Tally()
    total = len(records)
    for i, j in candidate_pairs(index):
        a, b = records[i], records[j]
        comparison = compare(a, b)
        weight = weigh(comparison, model)
        band = band_of(weight, comparison.rules, thresholds)
        same = person[i] == person[j]
        held = (
            cannot_link(comparison.rules)
            or review_only(comparison.rules)
            or (needs_margin(comparison.rules) and weight < thresholds.certain + MARGIN_BITS)
        )
        effective = float("-inf") if held else weight
        tally.candidates += 1
        for code in comparison.rules:
            tally.rules[code, same] += 1
        if same:
            tally.true_candidates += 1
            tally.held_true += held
            tally.true_effective.append(effective)
            tally.true_pairs.append((a.id, b.id, missed_reason(comparison.rules)))
        else:
            tally.max_false = max(tally.max_false, effective)
            if needs_margin(comparison.rules) and not (
                cannot_link(comparison.rules) or review_only(comparison.rules)
            ):
                tally.max_margin_false = max(tally.max_margin_false, weight)
        if band is Band.CERTAIN:
            tally.certain += 1
            tally.false_certain += not same
            tally.links.append(Link(a.id, b.id, weight))
        elif band is Band.POSSIBLE:
            tally.possible += 1
            tally.false_possible += not same
            if same:
                tally.true_possible.append((a.id, b.id))
        if progress is not None and tally.candidates % _STEP == 0:
            progress("score", i, total)
    return tally


def _normalise_all(
    patients: Iterable[Mapping[str, Any]], truth: Mapping[str, Truth], progress: Progress | None
) -> list[PatientRecord]:
    nicknames = NicknameIndex.from_table()
    records = []
    for count, patient in enumerate(patients, 1):
        record = normalise(patient, nicknames)
        if record.id in truth:
            records.append(record)
        if progress is not None and count % _STEP == 0:
            progress("normalise", count, len(truth))
    return records


def evaluate_records(
    patients: Iterable[Mapping[str, Any]],
    truth: Mapping[str, Truth],
    *,
    as_of: date,
    model: MatchModel | None = None,
    thresholds: Thresholds | None = None,
    seed: int = 0,
    progress: Progress | None = None,
    clock: Callable[[], float] = time.perf_counter,
    source: str = "records",
) -> Report:
    """Evaluate on Patient resources and their truth (module rules 1-4). Patients without a
    truth row are ignored; truth rows without a Patient count as missed."""
    started = clock()
    records = _normalise_all(patients, truth, progress)
    normalised = clock()
    if model is None:
        model = estimate(records, seed=seed)
    if thresholds is not None:
        model = model.with_thresholds(thresholds)
    estimated = clock()
    person = [truth[r.id].person_id for r in records]
    index = build_index(records)
    blocked = clock()
    tally = _score_pairs(records, person, index, model, progress)
    scored = clock()
    clustering = cluster({r.id: r for r in records}, tally.links)
    quality = cluster_quality(clustering.clusters, truth, as_of)
    clustered = clock()
    true_pairs = quality.pairs.true_pairs
    above = sum(1 for w in tally.true_effective if w > tally.max_false)
    membership = clustering.membership()
    queued = sum(1 for x, y in tally.true_possible if membership[x] != membership[y])
    rule_codes = sorted({code for code, _ in tally.rules})
    missed = _missed(records, person, tally.true_pairs, membership)
    stats = PairStats(
        candidate_pairs=tally.candidates,
        true_candidate_pairs=tally.true_candidates,
        certain_pairs=tally.certain,
        possible_pairs=tally.possible,
        false_certain=tally.false_certain,
        false_possible=tally.false_possible,
        zero_false_merge_weight=tally.max_false,
        recall_at_zero_false_merges=above / true_pairs if true_pairs else 1.0,
        recall_with_review=(quality.pairs.correct_pairs + queued) / true_pairs if true_pairs else 1.0,
        held_true_pairs=tally.held_true,
        oversized_blocks=index.oversized,
        largest_block=index.largest,
        rules={c: (tally.rules[c, True], tally.rules[c, False]) for c in rule_codes},
        missed=missed,
        placeholder_pairs=_placeholder_pairs(records, person),
        worst_margin_wrong=tally.max_margin_false,
    )
    return Report(
        source=source,
        records=len(records),
        persons=quality.persons,
        model_version=model.version,
        thresholds=model.thresholds,
        quality=quality,
        pairs=stats,
        refused_links=len(clustering.refused),
        timings=Timings(
            normalise=normalised - started,
            estimate=estimated - normalised,
            block=blocked - estimated,
            score=scored - blocked,
            cluster=clustered - scored,
        ),
        model=model,
    )


def _missed(
    records: list[PatientRecord],
    person: list[str],
    candidates: list[tuple[str, str, str]],
    membership: Mapping[str, int],
) -> dict[str, int]:
    """True pairs left in different clusters, by reason (rule 3a)."""
    out: Counter[str] = Counter()
    seen = 0
    for a, b, reason in candidates:
        if membership[a] != membership[b]:
            out[reason] += 1
            seen += 1
    split: Counter[str] = Counter()  # true pairs apart, candidates or not
    by_person: dict[str, Counter[int]] = {}
    for rec, who in zip(records, person, strict=True):
        by_person.setdefault(who, Counter())[membership[rec.id]] += 1
    for clusters in by_person.values():
        total = sum(clusters.values())
        together = sum(n * (n - 1) // 2 for n in clusters.values())
        split["all"] += total * (total - 1) // 2 - together
    out["not a candidate"] = split["all"] - seen
    return dict(out)


def _placeholder_pairs(records: list[PatientRecord], person: list[str]) -> int:
    """True pairs with a placeholder record on either side (rule 3a)."""
    counts: dict[str, list[int]] = {}
    for rec, who in zip(records, person, strict=True):
        held = counts.setdefault(who, [0, 0])
        held[0] += 1
        held[1] += rec.placeholder
    return sum(k * (k - 1) // 2 - (k - p) * (k - p - 1) // 2 for k, p in counts.values())
