"""Plausible measurement values: a person's stable body, and vital signs and lab results around it.

Rules:
1. A person's body (adult height, BMI, usual blood pressure and pulse) is drawn once from a
   stream seeded by their NHS number, so every organisation measures the same person, give or
   take the usual visit-to-visit variation.
2. Children follow a rough UK growth curve; BMI and blood pressure rise a little with age.
3. Chronic conditions and acute illness shift results in the expected direction (a diabetic's
   HbA1c, a kidney patient's eGFR, an infection's CRP and white cell count).
"""

from __future__ import annotations

import itertools
import random
from dataclasses import dataclass
from datetime import date

from careweave.generate.codes import LABS
from careweave.generate.model import Person

__all__ = ["Body", "body_of", "lab_value", "vitals"]

# age (years) -> (boys' height cm, girls' height cm), a rough growth curve (rule 2)
_GROWTH = (
    (0, 50, 49),
    (1, 76, 74),
    (2, 88, 86),
    (5, 110, 109),
    (10, 139, 138),
    (14, 164, 160),
    (18, 177, 164),
)

_SHIFTS = {
    # condition or "infection": {lab key: (new mean, new sd)}
    "diabetes": {"hba1c": (58.0, 12.0)},
    "ckd": {"egfr": (42.0, 12.0), "creat": (145.0, 35.0), "urea": (9.0, 2.5)},
    "heart_failure": {"egfr": (55.0, 15.0), "na": (135.0, 3.0)},
    "hyperlipidaemia": {"chol": (6.3, 1.0)},
    "hypothyroidism": {"tsh": (5.8, 2.0)},
    "infection": {"crp": (65.0, 40.0), "wbc": (13.5, 3.0)},
}


@dataclass(frozen=True, slots=True)
class Body:
    height: float  # adult height, cm
    bmi: float
    systolic: float
    diastolic: float
    pulse: float


def body_of(person: Person) -> Body:
    """The person's stable measurements (rule 1)."""
    rng = random.Random(f"body:{person.nhs_number}")
    male = person.sex == "male"
    hypertensive = any(c.key == "hypertension" for c in person.conditions)
    return Body(
        height=rng.gauss(176.0 if male else 163.0, 7.0),
        bmi=min(48.0, max(17.0, rng.gauss(27.5, 5.0))),
        systolic=rng.gauss(148.0 if hypertensive else 122.0, 12.0),
        diastolic=rng.gauss(90.0 if hypertensive else 77.0, 8.0),
        pulse=rng.gauss(72.0, 9.0),
    )


def _age(person: Person, on: date) -> float:
    return max(0.0, (on - person.birth_date).days / 365.2425)


def _height(person: Person, body: Body, age: float) -> float:
    if age >= 18:
        return body.height
    female = person.sex == "female"
    for (a0, b0, g0), (a1, b1, g1) in itertools.pairwise(_GROWTH):
        if a0 <= age < a1:
            start, end = (g0, g1) if female else (b0, b1)
            adult_ratio = body.height / (164.0 if female else 177.0)
            return (start + (end - start) * (age - a0) / (a1 - a0)) * adult_ratio
    return body.height


def vitals(rng: random.Random, person: Person, body: Body, on: date, unwell: bool) -> dict[str, float]:
    """One set of vital signs on a day: keys of codes.VITALS (except the BP panel)."""
    age = _age(person, on)
    height = _height(person, body, age)
    bmi = body.bmi if age >= 18 else rng.gauss(16.5, 1.5)
    weight = bmi * (height / 100) ** 2
    age_bp = max(0.0, age - 40) * 0.4 if age >= 18 else -(18 - age) * 1.5
    values = {
        "systolic": body.systolic + age_bp + rng.gauss(0, 8),
        "diastolic": body.diastolic + age_bp / 3 + rng.gauss(0, 5),
        "hr": body.pulse + (18 if unwell else 0) + (40 - age * 2 if age < 12 else 0) + rng.gauss(0, 6),
        "rr": rng.gauss(20 if unwell else 15, 2),
        "temp": rng.gauss(38.2 if unwell else 36.8, 0.4),
        "spo2": min(100.0, rng.gauss(94 if unwell else 97.5, 1.5)),
        "weight": weight + rng.gauss(0, 0.8 if age >= 18 else 0.2),
        "height": height + rng.gauss(0, 0.5),
        "bmi": bmi,
    }
    decimals = {"temp": 1, "weight": 1, "height": 1, "bmi": 1}
    return {
        k: round(v, decimals.get(k, 0)) if decimals.get(k) else float(round(v)) for k, v in values.items()
    }


def lab_value(rng: random.Random, key: str, person: Person, infection: bool) -> float:
    """A lab result for test ``key`` (rule 3), rounded to the test's usual precision."""
    lab = LABS[key]
    mean, sd = lab.mean, lab.sd
    if key == "hb" and person.sex == "female":
        mean -= 12.0
    for condition in person.conditions:
        mean, sd = _SHIFTS.get(condition.key, {}).get(key, (mean, sd))
    if infection:
        mean, sd = _SHIFTS["infection"].get(key, (mean, sd))
    smallest = 10.0**-lab.decimals  # the smallest value the lab reports above zero
    value = max(smallest, rng.gauss(mean, sd))
    return max(smallest, round(value, lab.decimals) if lab.decimals else float(round(value)))
