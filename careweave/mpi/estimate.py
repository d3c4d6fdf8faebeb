"""Estimating the model from unlabelled records: u by counting and sampling, m by EM.

Rules:
1. No labels are used: everything comes from the records, so a deployment trains on its own data.
   Randomness comes from ``random.Random(seed)``; the same records and settings give the same
   model (and version).
2. u (agreement among different people): exact-agreement levels of NHS number, first given name,
   family name, birth date, sex and e-mail are computed exactly from value counts (the chance that
   two distinct random records share a value); the other levels from ``u_pairs`` random pairs,
   with half a pair of smoothing per level, scaled into what the exact levels leave.
3. m (agreement within one person): expectation-maximisation with u fixed, once per *training
   rule* (pairs blocked on some fields), each run estimating only the fields its blocking does not
   force to agree (Splink's approach); a field's m is the mean over the runs that estimated it.
   Each run uses at most ``max_pairs`` pairs, whole blocks taken in a seeded order.
4. The prior P(two random records match) is the expected number of matching pairs over the
   number of pairs. Matching pairs are counted in the NHS-number run (the sum of EM posteriors)
   and divided by the share of matching pairs that rule can see: the m of an exact NHS agreement
   times the squared share of records holding a valid number.
5. Term frequencies (for :mod:`careweave.mpi.model` rule 2) are each name's share of the records
   holding a name; names seen once are left out and get ``default`` = 1 / records.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Callable, Hashable, Iterable, Sequence
from dataclasses import dataclass
from types import MappingProxyType

from careweave.mpi.compare import FIELDS, LEVELS, NULL, compare
from careweave.mpi.model import FieldModel, MatchModel, TermFrequencies, Thresholds
from careweave.mpi.record import PatientRecord

__all__ = ["DEFAULT_THRESHOLDS", "TRAINING", "TrainingRule", "estimate", "starting_m"]

DEFAULT_THRESHOLDS = Thresholds(certain=10.0, possible=0.0)
TF_FLOOR = 1e-6
_MAX_TF_VALUES = 50_000
_MIN_P = 1e-6
_STARTING_M = {
    "nhs_number": (0.6, 0.25, 0.03, 0.12),
    "given_name": (0.8, 0.03, 0.06, 0.02, 0.04, 0.05),
    "family_name": (0.75, 0.1, 0.06, 0.02, 0.07),
    "birth_date": (0.9, 0.01, 0.03, 0.02, 0.01, 0.03),
    "sex": (0.98, 0.02),
    "address": (0.45, 0.1, 0.15, 0.05, 0.05, 0.2),
    "phone": (0.5, 0.2, 0.3),
    "email": (0.7, 0.3),
}


@dataclass(frozen=True, slots=True)
class TrainingRule:
    """Pairs sharing a key of ``keys`` train every field except ``fixed`` (rule 3)."""

    name: str
    keys: Callable[[PatientRecord], Iterable[str]]
    fixed: tuple[str, ...]


def _nhs_key(r: PatientRecord) -> Iterable[str]:
    return (r.nhs_number,) if r.nhs_number is not None and r.nhs_valid else ()


def _dob_family_key(r: PatientRecord) -> Iterable[str]:
    return (f"{r.birth_date}|{r.family_soundex}",) if r.birth_date and r.family_soundex else ()


def _names_year_key(r: PatientRecord) -> Iterable[str]:
    if r.birth_date is None or not r.given_soundex or not r.family_soundex:
        return ()
    return (f"{r.birth_date.year}|{r.given_soundex}|{r.family_soundex}",)


TRAINING: tuple[TrainingRule, ...] = (
    TrainingRule("nhs", _nhs_key, ("nhs_number",)),
    TrainingRule("dob+family", _dob_family_key, ("birth_date", "family_name")),
    TrainingRule("names+year", _names_year_key, ("given_name", "family_name")),
)


def starting_m() -> dict[str, tuple[float, ...]]:
    """The m values EM starts from (a rough UK error model)."""
    return dict(_STARTING_M)


def _exact_share(values: Iterable[Hashable]) -> tuple[float, Counter[Hashable]]:
    counts = Counter(v for v in values if v)
    n = sum(counts.values())
    if n < 2:
        return 0.0, counts
    return sum(c * (c - 1) for c in counts.values()) / (n * (n - 1)), counts


def _exact_u(records: Sequence[PatientRecord]) -> dict[str, dict[int, float]]:
    """Exact-agreement u per field and level (rule 2)."""
    numbered = [r for r in records if r.nhs_number is not None]
    all_nhs, _ = _exact_share(r.nhs_number for r in numbered)
    verified_nhs, _ = _exact_share(r.nhs_number for r in numbered if r.nhs_verified)
    share_verified = sum(r.nhs_verified for r in numbered) / max(1, len(numbered))
    both_verified = verified_nhs * share_verified**2
    dated = [r.birth_date for r in records if r.birth_date is not None]
    all_dob, _ = _exact_share(dated)
    jan, _ = _exact_share(d for d in dated if (d.month, d.day) == (1, 1))
    share_jan = sum((d.month, d.day) == (1, 1) for d in dated) / max(1, len(dated))
    jan_u = jan * share_jan**2
    named = [r for r in records if not r.placeholder]
    return {
        "nhs_number": {0: both_verified, 1: max(all_nhs - both_verified, 0.0)},
        "given_name": {0: _exact_share(r.first_given for r in named)[0]},
        "family_name": {0: _exact_share(r.family for r in records)[0]},
        "birth_date": {0: max(all_dob - jan_u, 0.0), 1: jan_u},
        "sex": {0: _exact_share(r.sex for r in records)[0]},
        "email": {0: _exact_share(e for r in records for e in sorted(r.emails)[:1])[0]},
    }


def _sampled_levels(records: Sequence[PatientRecord], pairs: int, rng: random.Random) -> list[Counter[int]]:
    counts: list[Counter[int]] = [Counter() for _ in FIELDS]
    n = len(records)
    for _ in range(pairs if n > 1 else 0):
        i = rng.randrange(n)
        j = rng.randrange(n - 1)
        j += j >= i
        for k, level in enumerate(compare(records[i], records[j]).levels):
            if level != NULL:
                counts[k][level] += 1
    return counts


def estimate_u(
    records: Sequence[PatientRecord], pairs: int, rng: random.Random
) -> dict[str, tuple[float, ...]]:
    """u per field and level (rule 2)."""
    exact = _exact_u(records)
    sampled = _sampled_levels(records, pairs, rng)
    out: dict[str, tuple[float, ...]] = {}
    for k, name in enumerate(FIELDS):
        levels = len(LEVELS[name])
        fixed = {lvl: max(p, _MIN_P) for lvl, p in exact.get(name, {}).items()}
        rest = [lvl for lvl in range(levels) if lvl not in fixed]
        smoothed = {lvl: sampled[k][lvl] + 0.5 for lvl in rest}
        total = sum(smoothed.values())
        left = max(1.0 - sum(fixed.values()), _MIN_P)
        u = [fixed[lvl] if lvl in fixed else left * smoothed[lvl] / total for lvl in range(levels)]
        out[name] = tuple(max(p, _MIN_P) for p in u)
    return out


def _training_pairs(
    records: Sequence[PatientRecord], rule: TrainingRule, max_pairs: int, rng: random.Random
) -> tuple[list[tuple[int, int]], float]:
    """Pairs of whole blocks in a seeded order, and the share of the rule's pairs they are."""
    blocks: dict[str, list[int]] = {}
    for index, record in enumerate(records):
        for key in rule.keys(record):
            blocks.setdefault(key, []).append(index)
    groups = sorted((members for members in blocks.values() if len(members) > 1), key=lambda m: m[0])
    rng.shuffle(groups)
    total = sum(len(m) * (len(m) - 1) // 2 for m in groups)
    pairs: list[tuple[int, int]] = []
    for members in groups:
        if len(pairs) >= max_pairs:
            break
        pairs.extend((a, b) for x, a in enumerate(members) for b in members[x + 1 :])
    return pairs, (len(pairs) / total if total else 1.0)


def _em(
    patterns: Counter[tuple[int, ...]],
    trained: Sequence[int],
    m: list[list[float]],
    u: list[tuple[float, ...]],
    iterations: int,
) -> tuple[list[list[float]], float, float]:
    """EM over pattern counts for the ``trained`` fields, u fixed; returns m, lambda, matches."""
    lam, matches = 0.5, 0.0
    for _ in range(iterations):
        sums = [[0.0] * len(m[k]) for k in range(len(m))]
        matches, total = 0.0, 0.0
        for pattern, count in patterns.items():
            pm, pu = lam, 1.0 - lam
            for k in trained:
                level = pattern[k]
                if level != NULL:
                    pm *= m[k][level]
                    pu *= u[k][level]
            posterior = pm / (pm + pu) if pm + pu > 0 else 0.0
            matches += posterior * count
            total += count
            for k in trained:
                if pattern[k] != NULL:
                    sums[k][pattern[k]] += posterior * count
        new_lam = min(max(matches / total, _MIN_P), 1 - _MIN_P) if total else lam
        change = abs(new_lam - lam)
        for k in trained:
            mass = sum(sums[k])
            if mass > 0:
                fresh = [max(s / mass, _MIN_P) for s in sums[k]]
                norm = sum(fresh)
                fresh = [p / norm for p in fresh]
                change = max(change, *(abs(a - b) for a, b in zip(fresh, m[k], strict=True)))
                m[k] = fresh
        lam = new_lam
        if change < 1e-6:
            break
    return m, lam, matches


def _term_frequencies(values: Iterable[str]) -> TermFrequencies:
    counts = Counter(v for v in values if v)
    n = max(1, sum(counts.values()))
    kept = dict(sorted(((v, c / n) for v, c in counts.items() if c > 1), key=lambda kv: -kv[1]))
    kept = dict(list(kept.items())[:_MAX_TF_VALUES])
    return TermFrequencies(MappingProxyType(kept), default=1.0 / n, floor=TF_FLOOR)


def estimate(
    records: Sequence[PatientRecord],
    *,
    thresholds: Thresholds = DEFAULT_THRESHOLDS,
    seed: int = 0,
    u_pairs: int = 100_000,
    max_pairs: int = 300_000,
    iterations: int = 40,
    training: Sequence[TrainingRule] = TRAINING,
) -> MatchModel:
    """A model estimated from unlabelled records (module rules 1-5). Needs at least two records."""
    if len(records) < 2:
        raise ValueError("estimating a model needs at least two records")
    rng = random.Random(seed)
    u_by_field = estimate_u(records, u_pairs, rng)
    u = [u_by_field[name] for name in FIELDS]
    runs: dict[str, list[list[float]]] = {name: [] for name in FIELDS}
    notes: dict[str, object] = {"records": len(records), "u_pairs": u_pairs, "seed": seed}
    nhs_matches = 0.0
    for rule in training:
        pairs, share = _training_pairs(records, rule, max_pairs, rng)
        patterns = Counter(compare(records[i], records[j]).levels for i, j in pairs)
        trained = [k for k, name in enumerate(FIELDS) if name not in rule.fixed]
        start = [list(_STARTING_M[name]) for name in FIELDS]
        m, lam, matches = _em(patterns, trained, start, u, iterations)
        for k in trained:
            runs[FIELDS[k]].append(m[k])
        notes[f"pairs:{rule.name}"] = len(pairs)
        notes[f"lambda:{rule.name}"] = round(lam, 6)
        if rule.name == "nhs":
            nhs_matches = matches / share if share else 0.0
    fields = []
    for name in FIELDS:
        estimates = runs[name] or [list(_STARTING_M[name])]
        mean = [sum(col) / len(estimates) for col in zip(*estimates, strict=True)]
        fields.append(FieldModel(name, tuple(mean), u_by_field[name]))
    prior = _prior(records, nhs_matches, fields[0].m)
    return MatchModel(
        prior=prior,
        fields=tuple(fields),
        term_frequencies=MappingProxyType(
            {
                "given_name": _term_frequencies(r.first_given for r in records if not r.placeholder),
                "family_name": _term_frequencies(r.family for r in records),
            }
        ),
        thresholds=thresholds,
        training=MappingProxyType(notes),
    )


def _prior(records: Sequence[PatientRecord], nhs_matches: float, nhs_m: tuple[float, ...]) -> float:
    """Rule 4: matching pairs seen through NHS numbers, scaled to all matching pairs."""
    n = len(records)
    valid = sum(r.nhs_number is not None and r.nhs_valid for r in records) / n
    seen = (nhs_m[0] + nhs_m[1]) * valid**2
    matches = nhs_matches / seen if seen > 0 else n / 2
    pairs = n * (n - 1) / 2
    return min(max(matches / pairs, 1e-12), 0.5)
