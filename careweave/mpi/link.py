"""Linking a whole population at once: block, score, band, cluster (a bulk load, a re-run).

Rules:
1. :func:`link_records` runs the pipeline on records already normalised, with a model the caller
   chose (estimated or stored): candidate pairs from blocking, each scored and banded, the
   ``certain`` ones clustered (:mod:`careweave.mpi.cluster`, every link checked against the whole
   of both clusters).
2. The review queue is every ``possible`` pair whose records ended in different clusters, and every
   ``certain`` link clustering refused (two people it would have merged conflict), strongest first.
3. Deterministic: the same records (in the same order) and model give the same result.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from careweave.mpi.blocking import build_index, candidate_pairs
from careweave.mpi.cluster import Clustering, Link, cluster
from careweave.mpi.compare import compare
from careweave.mpi.model import MatchModel
from careweave.mpi.record import PatientRecord
from careweave.mpi.score import Band, band_of, weigh

__all__ = ["Linkage", "ScoredPair", "link_records"]


@dataclass(frozen=True, slots=True)
class ScoredPair:
    """A pair for the review queue: ids, match weight, band and the rules that fired."""

    left: str
    right: str
    weight: float
    band: Band
    rules: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Linkage:
    """The people found (rule 1) and the pairs a human should look at (rule 2)."""

    clustering: Clustering
    review: tuple[ScoredPair, ...]
    candidate_pairs: int
    model_version: str


def link_records(records: Sequence[PatientRecord], model: MatchModel) -> Linkage:
    """Cluster a population of records with a model (rules 1-3). Record ids must be unique."""
    by_id = {r.id: r for r in records}
    if len(by_id) != len(records):
        raise ValueError("record ids must be unique")
    links: list[Link] = []
    possible: list[ScoredPair] = []
    count = 0
    for i, j in candidate_pairs(build_index(records)):
        a, b = records[i], records[j]
        comparison = compare(a, b)
        weight = weigh(comparison, model)
        band = band_of(weight, comparison.rules, model.thresholds)
        count += 1
        if band is Band.CERTAIN:
            links.append(Link(a.id, b.id, weight))
        elif band is Band.POSSIBLE:
            possible.append(ScoredPair(a.id, b.id, weight, band, comparison.rules))
    clustering = cluster(by_id, links)
    membership = clustering.membership()
    review = [p for p in possible if membership[p.left] != membership[p.right]]
    for refusal in clustering.refused:
        link = refusal.link
        rules = compare(by_id[link.left], by_id[link.right]).rules
        review.append(ScoredPair(link.left, link.right, link.weight, Band.CERTAIN, rules))
    review.sort(key=lambda p: (-p.weight, p.left, p.right))
    return Linkage(clustering, tuple(review), count, model.version)
