"""The master patient index: the pure matching core (see docs/mpi-matching.md).

Public API (everything pure; build the nickname index and the model once and pass them in)::

    from careweave import mpi

    nicknames = mpi.NicknameIndex.from_table()
    records = [mpi.normalise(patient, nicknames) for patient in patients]   # FHIR R4 Patient dicts
    model = mpi.estimate(records)                       # EM, no labels; model.to_json() to store
    model = mpi.MatchModel.from_json(stored)            # ... or load a stored model version

    keys = mpi.blocking_keys(record)                    # index these; compare records sharing one
    s = mpi.score(a, b, model)                          # Score: weight, contributions, rules, version
    band = mpi.decide(s, model.thresholds)              # Band.CERTAIN / POSSIBLE / NO_MATCH
    mpi.conflicts(a, b)                                 # cannot-link rules between two records
    people = mpi.cluster(records_by_id, links)          # Clustering: clusters and refused links
    linkage = mpi.link_records(records, model)          # bulk: block, score, band, cluster, review

    report = mpi.evaluate(Path("generated"))            # measured against the ground truth
    mpi.print_report(report)

``careweave.mpi.nhs_number`` holds the NHS number rules (Modulus 11, ranges, test numbers).
"""

from careweave.mpi.blocking import (
    BLOCKING,
    BlockIndex,
    BlockingRule,
    blocking_keys,
    build_index,
    candidate_pairs,
)
from careweave.mpi.cluster import Clustering, Link, Refusal, cluster, conflicts
from careweave.mpi.compare import FIELDS, LEVELS, NULL, Comparison, compare
from careweave.mpi.estimate import DEFAULT_THRESHOLDS, estimate
from careweave.mpi.evaluate import PairStats, Report, Timings, evaluate, evaluate_records
from careweave.mpi.link import Linkage, ScoredPair, link_records
from careweave.mpi.model import FieldModel, MatchModel, TermFrequencies, Thresholds
from careweave.mpi.names import NicknameIndex
from careweave.mpi.record import PatientRecord, normalise
from careweave.mpi.report import print_report, report_tables
from careweave.mpi.rules import RULES, Rule, RuleKind
from careweave.mpi.score import Band, Contribution, Score, band_of, decide, score, weigh

__all__ = [
    "BLOCKING",
    "DEFAULT_THRESHOLDS",
    "FIELDS",
    "LEVELS",
    "NULL",
    "RULES",
    "Band",
    "BlockIndex",
    "BlockingRule",
    "Clustering",
    "Comparison",
    "Contribution",
    "FieldModel",
    "Link",
    "Linkage",
    "MatchModel",
    "NicknameIndex",
    "PairStats",
    "PatientRecord",
    "Refusal",
    "Report",
    "Rule",
    "RuleKind",
    "Score",
    "ScoredPair",
    "TermFrequencies",
    "Thresholds",
    "Timings",
    "band_of",
    "blocking_keys",
    "build_index",
    "candidate_pairs",
    "cluster",
    "compare",
    "conflicts",
    "decide",
    "estimate",
    "evaluate",
    "evaluate_records",
    "link_records",
    "normalise",
    "print_report",
    "report_tables",
    "score",
    "weigh",
]
