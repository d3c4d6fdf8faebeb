"""Scores a reviewer can read, and the three bands.

Rules:
1. :func:`score` compares two records and weighs the comparison with a model: the result carries
   the match weight (log2 posterior odds), the probability, one :class:`Contribution` per field
   (its level and bits, term frequency included), the rules that fired and the model version.
2. :func:`weigh` is the same number without the explanation, for bulk scoring.
3. :func:`decide`: a cannot-link rule means ``no-match`` whatever the weight; otherwise the weight
   against the thresholds, and a review-only rule turns ``certain`` into ``possible``, as does a
   margin rule when the weight is less than ``MARGIN_BITS`` above ``certain``.
4. Scores are symmetric: score(a, b) and score(b, a) have the same weight and contributions.
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass

from careweave.mpi.compare import FIELDS, LEVELS, NULL, Comparison, compare
from careweave.mpi.model import MatchModel, Thresholds
from careweave.mpi.record import PatientRecord
from careweave.mpi.rules import MARGIN_BITS, cannot_link, needs_margin, review_only

__all__ = ["Band", "Contribution", "Score", "band_of", "decide", "score", "weigh"]


class Band(enum.Enum):
    CERTAIN = "certain"  # auto-link
    POSSIBLE = "possible"  # human review
    NO_MATCH = "no-match"  # a new person


@dataclass(frozen=True, slots=True)
class Contribution:
    """One field's evidence: its level (None when there was none) and its weight in bits."""

    field: str
    level: str | None
    weight: float
    note: str = ""


@dataclass(frozen=True, slots=True)
class Score:
    """A scored pair (rule 1)."""

    left: str
    right: str
    weight: float
    probability: float
    contributions: tuple[Contribution, ...]
    rules: tuple[str, ...]
    swapped_names: bool
    model_version: str

    def explain(self) -> str:
        """A plain-text waterfall of the contributions, for logs and review screens."""
        lines = [f"{self.left} ~ {self.right}: {self.weight:+.1f} bits, p={self.probability:.6f}"]
        for c in self.contributions:
            level = c.level or "no evidence"
            note = f" ({c.note})" if c.note else ""
            lines.append(f"  {c.field:<12} {c.weight:+6.1f}  {level}{note}")
        lines.extend(f"  rule: {code}" for code in self.rules)
        lines.append(f"  model {self.model_version}")
        return "\n".join(lines)


def _share(model: MatchModel, field: str, value: str, swapped: bool) -> float:
    """The term frequency of a name; for swapped names the larger of the given and family
    frequencies, since either record may hold the name in the wrong field."""
    tfs = model.term_frequencies
    if swapped and len(tfs) == 2:
        return max(tf.of(value) for tf in tfs.values())
    return tfs[field].of(value)


def _tf_weight(model: MatchModel, field: str, value: str, level: int, swapped: bool) -> tuple[float, str]:
    """The weight of agreeing on ``value`` at ``level``, term-frequency adjusted, and a note."""
    k = FIELDS.index(field)
    if field not in model.term_frequencies or not value:
        return model.weights[k][level], ""
    share = _share(model, field, value, swapped)
    return math.log2(model.fields[k].m[level] / share), f"{value}: {share:.3%} of records"


def weigh(comparison: Comparison, model: MatchModel) -> float:
    """The match weight of a comparison (rule 2): prior plus every field's bits."""
    total = model.prior_weight
    levels, swapped = comparison.levels, comparison.swapped
    for level, weights in zip(levels, model.weights, strict=True):
        if level != NULL:
            total += weights[level]
    for k, field, value in (
        (1, "given_name", comparison.given_value),
        (2, "family_name", comparison.family_value),
    ):
        if value:
            total += _tf_weight(model, field, value, levels[k], swapped)[0] - model.weights[k][levels[k]]
    return total


def _probability(weight: float) -> float:
    if weight > 60:
        return 1.0
    odds = math.pow(2.0, weight)
    return odds / (1 + odds)


def _contributions(comparison: Comparison, model: MatchModel) -> tuple[Contribution, ...]:
    out = [Contribution("prior", None, model.prior_weight, f"P(match) = {model.prior:.3g}")]
    values = {"given_name": comparison.given_value, "family_name": comparison.family_value}
    for name, level, weights in zip(FIELDS, comparison.levels, model.weights, strict=True):
        if level == NULL:
            out.append(Contribution(name, None, 0.0))
            continue
        weight, note = weights[level], ""
        if values.get(name):
            weight, note = _tf_weight(model, name, values[name], level, comparison.swapped)
        if comparison.swapped and name in values:
            note = f"{note}; names swapped" if note else "given and family names swapped"
        out.append(Contribution(name, LEVELS[name][level], weight, note))
    return tuple(out)


def score(a: PatientRecord, b: PatientRecord, model: MatchModel) -> Score:
    """Compare and weigh two records, with the explanation (rule 1)."""
    comparison = compare(a, b)
    weight = weigh(comparison, model)
    return Score(
        left=a.id,
        right=b.id,
        weight=weight,
        probability=_probability(weight),
        contributions=_contributions(comparison, model),
        rules=comparison.rules,
        swapped_names=comparison.swapped,
        model_version=model.version,
    )


def band_of(weight: float, rules: tuple[str, ...], thresholds: Thresholds) -> Band:
    """The band of a weight and the rules that fired (rule 3)."""
    if cannot_link(rules):
        return Band.NO_MATCH
    if weight >= thresholds.certain:
        if review_only(rules) or (needs_margin(rules) and weight < thresholds.certain + MARGIN_BITS):
            return Band.POSSIBLE
        return Band.CERTAIN
    if weight >= thresholds.possible:
        return Band.POSSIBLE
    return Band.NO_MATCH


def decide(score: Score, thresholds: Thresholds) -> Band:
    """The band of a score (rule 3)."""
    return band_of(score.weight, score.rules, thresholds)
