"""Invariant shortcuts (careweave/fhir/validation/shortcuts.py) never change an outcome: the
validator gives exactly the issues it gives with every invariant evaluated by the FHIRPath engine,
for a generated population, the UK Core examples, the same resources damaged at random, and
Periods of every awkward shape (per-1 compares start and end).
"""

from __future__ import annotations

import copy
import random
from typing import Any

import orjson
import pytest

from careweave.fhir import ukcore
from careweave.fhir.validation import Validator, invariants
from careweave.system import load_definitions
from tests.fhir.validation.samples import OBSERVATION, PATIENT, observation
from tests.support import generated_resources

_DEFS = load_definitions()
FAST = _DEFS.validator


def _without_shortcuts() -> Validator:
    original = invariants.shortcut
    invariants.shortcut = lambda engine, compiled: None  # type: ignore[assignment]
    try:
        return Validator(_DEFS.model, _DEFS.terminology, fhirpath=_DEFS.engine)
    finally:
        invariants.shortcut = original


SLOW = _without_shortcuts()




CORPUS = [
    *generated_resources(patients=20, organisations=3, seed=5), *ukcore.load_examples(), PATIENT, OBSERVATION
]


def _issues(validator: Validator, resource: Any) -> list[tuple[Any, ...]]:
    return [(i.severity, i.code, i.diagnostics, i.expression, i.details)
            for i in validator.validate(resource)]


def _same(resources: list[Any]) -> None:
    for resource in resources:
        assert _issues(FAST, resource) == _issues(SLOW, resource), orjson.dumps(resource)[:300]


def test_the_common_invariants_have_shortcuts() -> None:
    keys = set()
    for plan in FAST.plans.contexts.values():
        for invariant in plan.invariants + tuple(i for s in plan.slots.values() for i in s.invariants):
            if invariant.shortcut is not None:
                keys.add(invariant.key)
    assert {"qty-3", "obs-3", "obs-6", "obs-7", "per-1", "con-3", "con-4", "cpt-2", "ait-1"} <= keys
    assert all(i.shortcut is None for plan in SLOW.plans.contexts.values() for i in plan.invariants)


def test_corpus_issues_are_the_engines() -> None:
    assert len(CORPUS) > 1000
    _same(CORPUS)


_ODD: list[Any] = [
    None, "", "x", 0, 1.5, True, [], {}, [None], ["a", "b"],
    {"extension": [{"url": "u", "valueString": "s"}]},
    {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/condition-ver-status",
                 "code": "entered-in-error"}]},
    {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/condition-clinical", "code": "active"}]},
    {"value": 1, "code": "mg"}, {"value": 1, "system": "http://unitsofmeasure.org", "code": "mg"},
    {"start": "2020-01-02T03:04:05Z", "end": "2020-01-01T03:04:05Z"},
    "2020-01-02T03:04:05+01:00", "2019-12-31T23:59:59-05:00",
]
_ELEMENTS = ["code", "system", "value", "valueQuantity", "valueString", "dataAbsentReason", "component",
             "low", "high", "text", "start", "end", "_start", "_end", "clinicalStatus", "abatementDateTime",
             "verificationStatus", "period", "effectivePeriod", "onsetPeriod"]


def _damaged(resource: dict[str, Any], rnd: random.Random) -> dict[str, Any]:
    damaged = copy.deepcopy(resource)
    objects: list[dict[str, Any]] = []
    stack: list[Any] = [damaged]
    while stack:
        value = stack.pop()
        if isinstance(value, dict):
            objects.append(value)
            stack.extend(value.values())
        elif isinstance(value, list):
            stack.extend(value)
    for _ in range(rnd.randint(1, 3)):
        target = rnd.choice(objects)
        key = rnd.choice([*target, *_ELEMENTS]) if target else rnd.choice(_ELEMENTS)
        if key == "resourceType":
            continue
        if rnd.random() < 0.2:
            target.pop(key, None)
        else:
            target[key] = copy.deepcopy(rnd.choice(_ODD))
    return damaged


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_damaged_resources_have_the_engines_issues(seed: int) -> None:
    rnd = random.Random(seed)
    invariant_types = {"Observation", "Encounter", "Condition", "AllergyIntolerance", "Patient",
                       "Immunization", "MedicationRequest", "DiagnosticReport"}
    sample = [r for r in CORPUS if r.get("resourceType") in invariant_types]
    _same([_damaged(r, rnd) for r in rnd.sample(sample, min(600, len(sample)))])


_TIMES = [
    "2020-01-01T10:00:00Z", "2020-01-01T10:00:00+00:00", "2020-01-01T11:00:00+01:00",
    "2020-01-01T09:59:59+01:00", "2020-01-01T10:00:00.5Z", "2020-01-01T10:00:00.500Z", "2020-01-01",
    "2020-01", "2020", "2020-01-01T10:00Z", "2020-01-01T10:00:00", "2020-02-30T10:00:00Z",
    "2020-01-01T23:59:60Z", "2020-01-01T24:00:00Z", "0001-01-01T00:30:00+01:00",
    "9999-12-31T23:30:00-01:00", "0999-01-01T00:00:00+01:00", "2020-01-01T10:00:00+14:00",
    "2020-01-01T10:00:00-99:99", "٢٠٢٠-01-01T10:00:00Z", "٢٠١٩-01-01T10:00:00Z",
    "2020-01-01T10:00:00z", 20200101, None,
]


def test_periods_of_every_shape_have_the_engines_issues() -> None:
    periods = [{"start": a, "end": b} for a in _TIMES for b in _TIMES]
    periods += [{"start": a} for a in _TIMES] + [{"end": b} for b in _TIMES]
    periods += [{"start": "2020-01-01T10:00:00Z", "_end": {"extension": [{"url": "u", "valueCode": "x"}]}},
                {"_start": {"id": "s"}, "end": "2020-01-01T10:00:00Z"},
                {"start": ["2020", "2021"], "end": "2020"}]
    resources = []
    for period in periods:
        period = {k: v for k, v in period.items() if v is not None}
        resources.append(observation(effectivePeriod=period))
        resources.append(observation(valueQuantity={"value": 1, "code": "mg"}, effectivePeriod=period))
    _same(resources)
    # the shortcut answered where it could, and per-1 still fails where start is after end
    failing = FAST.validate(observation(effectivePeriod={"start": "2020-01-02T00:00:00Z",
                                                         "end": "2020-01-01T00:00:00Z"}))
    assert [i.details for i in failing if i.details == "per-1"] == ["per-1"]
