"""Generator configuration: sizes, seed, difficulty (discrepancy rates) and output formats.

Rules:
1. ``patients`` counts real people (persons). Each person has one or more registrations, and each
   registration is one FHIR Patient resource, so the output holds more Patients than persons.
2. ``resources_per_patient`` is the target mean number of resources per person, every resource
   type counted (Patients included, Organizations and Practitioners not). The default, 50, gives
   about 1,000,000 resources for 20,000 persons. At least 20: about 15 per person come whatever
   the visit rates (Patients, problem lists, repeat prescriptions, immunisations).
3. A discrepancy rate is the probability that one registration carries that discrepancy, given
   the discrepancy can apply to it (a maiden name needs a marriage, a day/month swap a day of 12 or
   less, a "Baby of" placeholder a newborn). Rates come from the difficulty unless ``rates`` is set.
4. ``as_of`` is the generator's "today": nothing depends on the real clock.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from types import MappingProxyType
from typing import Literal

__all__ = [
    "DEMO",
    "EASY",
    "FORMATS",
    "HARD",
    "PRESETS",
    "DiscrepancyRates",
    "GeneratorConfig",
]

Difficulty = Literal["easy", "hard"]
FORMATS = frozenset({"ndjson", "bundles", "hl7v2"})
MAX_PATIENTS = 800_000  # the 999 block holds about 909,000 valid NHS numbers


@dataclass(frozen=True, slots=True)
class DiscrepancyRates:
    """Per-registration probabilities of each discrepancy (rule 3)."""

    name_typo: float
    nickname: float
    name_swap: float
    maiden_name: float
    old_address: float
    no_fixed_abode: float
    nhs_missing: float
    nhs_transposed: float
    nhs_other: float
    dob_swapped: float
    dob_placeholder: float
    baby_placeholder: float
    name_punctuation: float
    duplicate: float  # a second record at the same trust
    merged: float  # of those duplicates, the share the trust has already merged
    verified_wrong: float  # of wrong NHS numbers, the share still marked verified (01)

    def __post_init__(self) -> None:
        for name in self.__dataclass_fields__:
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"rate {name} must be between 0 and 1, not {value}")


EASY = DiscrepancyRates(
    name_typo=0.03,
    nickname=0.03,
    name_swap=0.005,
    maiden_name=0.25,
    old_address=0.25,
    no_fixed_abode=0.003,
    nhs_missing=0.04,
    nhs_transposed=0.004,
    nhs_other=0.002,
    dob_swapped=0.005,
    dob_placeholder=0.003,
    baby_placeholder=0.5,
    name_punctuation=0.2,
    duplicate=0.01,
    merged=0.5,
    verified_wrong=0.0,
)

HARD = DiscrepancyRates(
    name_typo=0.12,
    nickname=0.10,
    name_swap=0.03,
    maiden_name=0.6,
    old_address=0.6,
    no_fixed_abode=0.02,
    nhs_missing=0.2,
    nhs_transposed=0.03,
    nhs_other=0.015,
    dob_swapped=0.03,
    dob_placeholder=0.02,
    baby_placeholder=0.9,
    name_punctuation=0.5,
    duplicate=0.05,
    merged=0.3,
    verified_wrong=0.1,
)

_BY_DIFFICULTY = {"easy": EASY, "hard": HARD}


@dataclass(frozen=True, slots=True)
class GeneratorConfig:
    """What to generate. Invalid values raise ValueError when the config is built."""

    patients: int = 1000
    organisations: int = 8
    seed: int = 0
    difficulty: Difficulty = "easy"
    formats: frozenset[str] = FORMATS
    resources_per_patient: float = 50.0
    bundle_size: int = 1000  # entries per transaction Bundle (a person is never split)
    as_of: date = date(2025, 3, 31)
    rates: DiscrepancyRates | None = field(default=None)

    def __post_init__(self) -> None:
        if not 1 <= self.patients <= MAX_PATIENTS:
            raise ValueError(f"patients must be between 1 and {MAX_PATIENTS}")
        if self.organisations < 2:
            raise ValueError("organisations must be at least 2 (a trust and a GP practice)")
        if self.difficulty not in _BY_DIFFICULTY:
            raise ValueError(f"difficulty must be 'easy' or 'hard', not {self.difficulty!r}")
        unknown = set(self.formats) - FORMATS
        if unknown:
            raise ValueError(f"unknown formats: {sorted(unknown)}; known: {sorted(FORMATS)}")
        if not 20.0 <= self.resources_per_patient <= 1000.0:
            raise ValueError("resources_per_patient must be between 20 and 1000")
        if self.bundle_size < 1:
            raise ValueError("bundle_size must be at least 1")

    @property
    def discrepancy_rates(self) -> DiscrepancyRates:
        return self.rates if self.rates is not None else _BY_DIFFICULTY[self.difficulty]


DEMO = GeneratorConfig(patients=50, organisations=4, seed=1, difficulty="easy")

PRESETS: Mapping[str, GeneratorConfig] = MappingProxyType(
    {
        "demo": DEMO,
        "small": GeneratorConfig(patients=1000, organisations=8, seed=1),
        "hard": GeneratorConfig(patients=5000, organisations=12, seed=1, difficulty="hard"),
        "million": GeneratorConfig(patients=20_000, organisations=24, seed=1, resources_per_patient=52),
    }
)
