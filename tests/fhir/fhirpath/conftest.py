"""Fixtures for the FHIRPath tests: the R4 element model and an engine, built once per session,
and small FHIR JSON inputs written for these tests."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from careweave.fhir import definitions
from careweave.fhir.elements import ElementModel
from careweave.fhir.fhirpath import FhirPathEngine

FIXED_NOW = dt.datetime(2024, 5, 17, 9, 30, 15, 250000, tzinfo=dt.timezone(dt.timedelta(hours=2)))


@pytest.fixture(scope="session")
def model() -> ElementModel:
    return ElementModel.from_structure_definitions(
        definitions.resources_of("profiles-types") + definitions.resources_of("profiles-resources")
    )


@pytest.fixture(scope="session")
def engine(model: ElementModel) -> FhirPathEngine:
    return FhirPathEngine(model, clock=lambda: FIXED_NOW)


@pytest.fixture
def patient() -> dict[str, Any]:
    return {
        "resourceType": "Patient",
        "id": "pat-7",
        "meta": {"profile": ["http://example.org/fhir/StructureDefinition/my-patient"]},
        "active": True,
        "gender": "female",
        "birthDate": "1980-06-02",
        "_birthDate": {
            "extension": [
                {
                    "url": "http://hl7.org/fhir/StructureDefinition/patient-birthTime",
                    "valueDateTime": "1980-06-02T07:15:00+01:00",
                }
            ]
        },
        "name": [
            {"use": "official", "family": "Okafor", "given": ["Ada", "Nneka"]},
            {"use": "nickname", "given": ["Addy"]},
            {"use": "maiden", "family": "Eze", "given": ["Ada", "Nneka"]},
        ],
        "telecom": [
            {"system": "phone", "value": "+44 20 7946 0000", "use": "home"},
            {"system": "email", "value": "ada@example.org"},
        ],
        "address": [{"line": ["1 High St", None], "_line": [None, {"extension": [
            {"url": "http://example.org/ext/line-note", "valueString": "rear door"}]}],
            "city": "Leeds", "postalCode": "LS1 1AA"}],
        "deceasedBoolean": False,
        "contained": [{"resourceType": "Practitioner", "id": "gp1", "name": [{"family": "Nwosu"}]}],
        "generalPractitioner": [{"reference": "#gp1"}, {"reference": "Practitioner/p-99"}],
        "managingOrganization": {
            "reference": "https://fhir.example.org/r4/Organization/org-1/_history/3"
        },
    }  # fmt: skip


@pytest.fixture
def observation() -> dict[str, Any]:
    return {
        "resourceType": "Observation",
        "id": "obs-1",
        "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": "29463-7"}], "text": "Weight"},
        "subject": {"reference": "Patient/pat-7"},
        "effectiveDateTime": "2024-03-05T10:20:00Z",
        "valueQuantity": {
            "value": 72.5,
            "unit": "kg",
            "system": "http://unitsofmeasure.org",
            "code": "kg",
        },
        "component": [
            {
                "code": {"coding": [{"system": "http://loinc.org", "code": "8480-6"}]},
                "valueQuantity": {"value": 120, "system": "http://unitsofmeasure.org",
                                  "code": "mm[Hg]"},
            },
            {
                "code": {"coding": [{"system": "http://loinc.org", "code": "8462-4"}]},
                "valueQuantity": {"value": 80, "system": "http://unitsofmeasure.org",
                                  "code": "mm[Hg]"},
            },
            {"code": {"text": "note"}, "valueString": "seated"},
        ],
    }  # fmt: skip
