"""Valid sample resources and small helpers for the validator tests."""

from __future__ import annotations

import copy
from typing import Any

from careweave.errors import Issue

PATIENT: dict[str, Any] = {
    "resourceType": "Patient",
    "id": "p1",
    "meta": {"versionId": "1", "lastUpdated": "2024-01-02T03:04:05.678+00:00"},
    "text": {"status": "generated", "div": '<div xmlns="http://www.w3.org/1999/xhtml">Ann</div>'},
    "identifier": [{"system": "https://fhir.nhs.uk/Id/nhs-number", "value": "9000000009"}],
    "active": True,
    "name": [{"use": "official", "family": "Smith", "given": ["Ann", "Marie"]}],
    "telecom": [{"system": "phone", "value": "0123", "use": "home"}],
    "gender": "female",
    "birthDate": "1980-02-29",
    "address": [{"line": ["1 High St"], "city": "Leeds", "postalCode": "LS1 1AA"}],
    "managingOrganization": {"reference": "Organization/o1"},
}

OBSERVATION: dict[str, Any] = {
    "resourceType": "Observation",
    "id": "o1",
    "text": {"status": "generated", "div": '<div xmlns="http://www.w3.org/1999/xhtml">HR</div>'},
    "status": "final",
    "category": [
        {
            "coding": [
                {
                    "system": "http://terminology.hl7.org/CodeSystem/observation-category",
                    "code": "vital-signs",
                }
            ]
        }
    ],
    "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4"}], "text": "Heart rate"},
    "subject": {"reference": "Patient/p1"},
    "effectiveDateTime": "2024-01-02T03:04:05+01:00",
    "valueQuantity": {
        "value": 72,
        "unit": "beats/minute",
        "system": "http://unitsofmeasure.org",
        "code": "/min",
    },
}


def patient(**changes: Any) -> dict[str, Any]:
    """A copy of the valid Patient with top-level keys replaced (None removes a key)."""
    return _changed(PATIENT, changes)


def observation(**changes: Any) -> dict[str, Any]:
    return _changed(OBSERVATION, changes)


def _changed(base: dict[str, Any], changes: dict[str, Any]) -> dict[str, Any]:
    resource = copy.deepcopy(base)
    for key, value in changes.items():
        if value is None:
            resource.pop(key, None)
        else:
            resource[key] = value
    return resource


def errors(issues: list[Issue]) -> list[Issue]:
    return [i for i in issues if i.severity == "error"]


def located(issues: list[Issue]) -> set[tuple[str, str, str]]:
    """(severity, code, expression) of each issue, for exact comparisons."""
    return {(i.severity, i.code, i.expression[0] if i.expression else "") for i in issues}
