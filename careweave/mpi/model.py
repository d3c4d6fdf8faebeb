"""The Fellegi-Sunter model: m and u per comparison level, term frequencies, prior, thresholds.

Rules:
1. For each field and level, ``m`` is P(level | same person) and ``u`` P(level | different
   people); the level's evidence is ``log2(m / u)`` bits (its *weight*). A NULL level weighs 0.
2. Term-frequency adjustment (Splink, Winkler): an exact agreement on a given or family name
   weighs ``log2(m / max(tf(value), tf_floor))`` instead, where ``tf(value)`` is the share of
   records holding that name, so agreeing on Smith counts for less than agreeing on Oyelaran.
   Names not in the table use ``default`` (a name seen once); ``tf_floor`` bounds the evidence
   one rare name can give.
3. The match weight of a pair is ``log2(prior / (1 - prior))`` plus every field's weight: the
   log2 posterior odds, so thresholds read the same for any population size.
4. :class:`Thresholds`: a pair at or above ``certain`` auto-links, at or above ``possible`` goes
   to review, below is no match. They belong to the model, so the model's :attr:`version` (a
   digest of everything that decides a score) names both.
5. A model is a frozen value, serialised with :meth:`MatchModel.to_json` / :meth:`from_json`
   (``format`` is ``careweave-mpi-model/1``); :meth:`with_thresholds` gives a new version.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from types import MappingProxyType
from typing import Any

import orjson

from careweave.mpi.compare import FIELDS, LEVELS

__all__ = ["FORMAT", "FieldModel", "MatchModel", "TermFrequencies", "Thresholds"]

FORMAT = "careweave-mpi-model/1"
_TF_FIELDS = ("given_name", "family_name")


@dataclass(frozen=True, slots=True)
class Thresholds:
    """Match-weight bounds of the three bands (rule 4)."""

    certain: float
    possible: float

    def __post_init__(self) -> None:
        if not self.possible <= self.certain:
            raise ValueError("the possible threshold must not exceed the certain one")


@dataclass(frozen=True, slots=True)
class FieldModel:
    """m and u for each level of one field (rule 1)."""

    name: str
    m: tuple[float, ...]
    u: tuple[float, ...]

    def __post_init__(self) -> None:
        levels = LEVELS[self.name]
        if len(self.m) != len(levels) or len(self.u) != len(levels):
            raise ValueError(f"{self.name}: m and u need one value per level ({len(levels)})")
        if any(not 0.0 < p <= 1.0 for p in (*self.m, *self.u)):
            raise ValueError(f"{self.name}: m and u must be probabilities above 0")

    @property
    def weights(self) -> tuple[float, ...]:
        return tuple(math.log2(m / u) for m, u in zip(self.m, self.u, strict=True))


@dataclass(frozen=True, slots=True)
class TermFrequencies:
    """Name -> share of records holding it, for one field (rule 2)."""

    values: Mapping[str, float]
    default: float
    floor: float

    def of(self, value: str) -> float:
        return max(self.values.get(value, self.default), self.floor)


@dataclass(frozen=True, slots=True)
class MatchModel:
    """Everything that turns a comparison into a score and a band (rules 1-5)."""

    prior: float
    fields: tuple[FieldModel, ...]
    term_frequencies: Mapping[str, TermFrequencies]
    thresholds: Thresholds
    name: str = "careweave-fs"
    training: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))
    version: str = field(init=False)
    weights: tuple[tuple[float, ...], ...] = field(init=False, repr=False)
    prior_weight: float = field(init=False, repr=False)

    def __post_init__(self) -> None:
        if tuple(f.name for f in self.fields) != FIELDS:
            raise ValueError(f"a model has one FieldModel per field, in order: {FIELDS}")
        if not 0.0 < self.prior < 1.0:
            raise ValueError("the prior must be between 0 and 1")
        if set(self.term_frequencies) - set(_TF_FIELDS):
            raise ValueError(f"term frequencies are kept only for {_TF_FIELDS}")
        object.__setattr__(self, "weights", tuple(f.weights for f in self.fields))
        object.__setattr__(self, "prior_weight", math.log2(self.prior / (1 - self.prior)))
        digest = hashlib.sha256(orjson.dumps(self._parameters(), option=orjson.OPT_SORT_KEYS))
        object.__setattr__(self, "version", f"{self.name}/{digest.hexdigest()[:12]}")

    def field_model(self, name: str) -> FieldModel:
        return self.fields[FIELDS.index(name)]

    def with_thresholds(self, thresholds: Thresholds) -> MatchModel:
        """The same parameters with other thresholds: a new version (rule 5)."""
        return replace(self, thresholds=thresholds)

    def _parameters(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "prior": self.prior,
            "fields": {
                f.name: {"levels": list(LEVELS[f.name]), "m": list(f.m), "u": list(f.u)} for f in self.fields
            },
            "term_frequencies": {
                name: {"default": tf.default, "floor": tf.floor, "values": dict(sorted(tf.values.items()))}
                for name, tf in sorted(self.term_frequencies.items())
            },
            "thresholds": {"certain": self.thresholds.certain, "possible": self.thresholds.possible},
        }

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict: format, version, parameters and training notes (rule 5)."""
        return {
            "format": FORMAT,
            "version": self.version,
            **self._parameters(),
            "training": dict(self.training),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> MatchModel:
        """The model :meth:`to_json` wrote. Raises ValueError for another format, a level table
        that is not this code's, or a version that does not match the parameters."""
        if data.get("format") != FORMAT:
            raise ValueError(f"not a {FORMAT} document")
        fields = []
        for name in FIELDS:
            spec = data["fields"][name]
            if tuple(spec["levels"]) != LEVELS[name]:
                raise ValueError(f"{name}: the levels differ from this version's comparisons")
            fields.append(FieldModel(name, tuple(spec["m"]), tuple(spec["u"])))
        tfs = {
            name: TermFrequencies(MappingProxyType(dict(spec["values"])), spec["default"], spec["floor"])
            for name, spec in data["term_frequencies"].items()
        }
        model = cls(
            prior=data["prior"],
            fields=tuple(fields),
            term_frequencies=MappingProxyType(tfs),
            thresholds=Thresholds(**data["thresholds"]),
            name=data.get("name", "careweave-fs"),
            training=MappingProxyType(dict(data.get("training", {}))),
        )
        if "version" in data and data["version"] != model.version:
            raise ValueError(f"version {data['version']} does not match the parameters ({model.version})")
        return model
