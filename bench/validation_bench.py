"""Validation speed: validations per second and microseconds per resource, by layer.

Layers: "structure" (JSON shape, cardinality, primitives, references, narrative, native
invariants), "+ bindings" (required value sets), "+ invariants" (FHIRPath constraints, when
careweave.fhir.fhirpath exports FhirPathEngine). Run: .venv/bin/python bench/validation_bench.py
"""

from __future__ import annotations

import copy
import statistics
import time
from collections.abc import Callable
from typing import Any

from careweave.fhir import definitions
from careweave.fhir.elements import ElementModel
from careweave.fhir.validation import Terminology, Validator

PATIENT: dict[str, Any] = {
    "resourceType": "Patient",
    "id": "p1",
    "meta": {"versionId": "1", "lastUpdated": "2024-01-02T03:04:05.678+00:00"},
    "text": {"status": "generated", "div": '<div xmlns="http://www.w3.org/1999/xhtml">Ann Smith</div>'},
    "identifier": [
        {"system": "https://fhir.nhs.uk/Id/nhs-number", "value": "9000000009"},
        {
            "use": "usual",
            "type": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0203", "code": "MR"}]},
            "system": "urn:oid:1.2.3",
            "value": "123",
        },
    ],
    "active": True,
    "name": [{"use": "official", "family": "Smith", "given": ["Ann", "Marie"], "prefix": ["Ms"]}],
    "telecom": [
        {"system": "phone", "value": "0113 496 0000", "use": "home"},
        {"system": "email", "value": "ann@example.org"},
    ],
    "gender": "female",
    "birthDate": "1980-02-29",
    "address": [
        {
            "use": "home",
            "line": ["1 High Street"],
            "city": "Leeds",
            "postalCode": "LS1 1AA",
            "country": "GB",
            "period": {"start": "2010-01-01"},
        }
    ],
    "maritalStatus": {
        "coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-MaritalStatus", "code": "M"}]
    },
    "contact": [
        {
            "relationship": [
                {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0131", "code": "N"}]}
            ],
            "name": {"family": "Smith", "given": ["Bob"]},
            "telecom": [{"system": "phone", "value": "0113 496 0001"}],
        }
    ],
    "communication": [
        {"language": {"coding": [{"system": "urn:ietf:bcp:47", "code": "en-GB"}]}, "preferred": True}
    ],
    "generalPractitioner": [{"reference": "Practitioner/g1"}],
    "managingOrganization": {"reference": "Organization/o1", "display": "Leeds GP"},
}

OBSERVATION: dict[str, Any] = {
    "resourceType": "Observation",
    "id": "o1",
    "meta": {"profile": ["http://hl7.org/fhir/StructureDefinition/vitalsigns"]},
    "text": {"status": "generated", "div": '<div xmlns="http://www.w3.org/1999/xhtml">BP 120/80</div>'},
    "status": "final",
    "category": [
        {
            "coding": [
                {
                    "system": "http://terminology.hl7.org/CodeSystem/observation-category",
                    "code": "vital-signs",
                    "display": "Vital Signs",
                }
            ]
        }
    ],
    "code": {"coding": [{"system": "http://loinc.org", "code": "85354-9"}], "text": "Blood pressure"},
    "subject": {"reference": "Patient/p1"},
    "encounter": {"reference": "Encounter/e1"},
    "effectiveDateTime": "2024-01-02T03:04:05+01:00",
    "issued": "2024-01-02T03:10:00.000+01:00",
    "performer": [{"reference": "Practitioner/g1"}],
    "interpretation": [
        {
            "coding": [
                {"system": "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation", "code": "N"}
            ]
        }
    ],
    "component": [
        {
            "code": {"coding": [{"system": "http://loinc.org", "code": "8480-6"}]},
            "valueQuantity": {
                "value": 120,
                "unit": "mmHg",
                "system": "http://unitsofmeasure.org",
                "code": "mm[Hg]",
            },
        },
        {
            "code": {"coding": [{"system": "http://loinc.org", "code": "8462-4"}]},
            "valueQuantity": {
                "value": 80,
                "unit": "mmHg",
                "system": "http://unitsofmeasure.org",
                "code": "mm[Hg]",
            },
        },
    ],
}

ENCOUNTER: dict[str, Any] = {
    "resourceType": "Encounter",
    "id": "e1",
    "text": {"status": "generated", "div": '<div xmlns="http://www.w3.org/1999/xhtml">Visit</div>'},
    "identifier": [{"system": "https://example.org/enc", "value": "E1"}],
    "status": "finished",
    "statusHistory": [
        {"status": "arrived", "period": {"start": "2024-01-02T09:00:00Z", "end": "2024-01-02T09:10:00Z"}}
    ],
    "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "AMB"},
    "type": [{"coding": [{"system": "http://snomed.info/sct", "code": "185349003"}]}],
    "subject": {"reference": "Patient/p1"},
    "participant": [
        {
            "type": [
                {
                    "coding": [
                        {
                            "system": "http://terminology.hl7.org/CodeSystem/v3-ParticipationType",
                            "code": "PPRF",
                        }
                    ]
                }
            ],
            "individual": {"reference": "Practitioner/g1"},
        }
    ],
    "period": {"start": "2024-01-02T09:00:00Z", "end": "2024-01-02T09:30:00Z"},
    "reasonCode": [
        {"coding": [{"system": "http://snomed.info/sct", "code": "38341003"}], "text": "Hypertension"}
    ],
    "hospitalization": {
        "admitSource": {
            "coding": [{"system": "http://terminology.hl7.org/CodeSystem/admit-source", "code": "gp"}]
        }
    },
    "location": [{"location": {"reference": "Location/l1"}, "status": "completed"}],
    "serviceProvider": {"reference": "Organization/o1"},
}


def _bundle() -> dict[str, Any]:
    entries = []
    for i in range(100):
        resource = copy.deepcopy((PATIENT, OBSERVATION, ENCOUNTER)[i % 3])
        resource["id"] = f"r{i}"
        entries.append(
            {"fullUrl": f"https://example.org/fhir/{resource['resourceType']}/r{i}", "resource": resource}
        )
    return {"resourceType": "Bundle", "id": "b1", "type": "collection", "entry": entries}


def _time(fn: Callable[[], object], budget: float = 0.6) -> float:
    """Best-of-five median seconds per call."""
    fn()
    runs = []
    for _ in range(5):
        n, start = 0, time.perf_counter()
        while (elapsed := time.perf_counter() - start) < budget / 5:
            fn()
            n += 1
        runs.append(elapsed / n)
    return statistics.median(runs)


def main() -> None:
    model = ElementModel.from_structure_definitions(
        definitions.resources_of("profiles-types") + definitions.resources_of("profiles-resources")
    )
    start = time.perf_counter()
    terminology = Terminology.from_definitions(model)
    built_terminology = time.perf_counter() - start
    engine = _engine(model)
    layers = {
        "structure": Validator(model, terminology, bindings=False, invariants=False),
        "+ bindings": Validator(model, terminology, invariants=False),
    }
    start = time.perf_counter()
    layers["+ invariants"] = Validator(model, terminology, fhirpath=engine)
    built_validator = time.perf_counter() - start
    sd = next(r for r in definitions.resources_of("profiles-resources") if r.get("id") == "Observation")
    samples = {
        "Patient": PATIENT,
        "Observation": OBSERVATION,
        "Encounter": ENCOUNTER,
        "StructureDefinition (Observation)": sd,
        "Bundle (100 entries)": _bundle(),
    }
    print(
        f"terminology built in {built_terminology * 1000:.0f} ms; validator (all layers) in "
        f"{built_validator * 1000:.0f} ms; FHIRPath engine: {'yes' if engine else 'none'}"
    )
    header = f"{'resource':36} {'layer':14} {'validations/s':>14} {'us/resource':>12}"
    print(header)
    print("-" * len(header))
    for name, resource in samples.items():
        for layer, validator in layers.items():
            per_call = _time(lambda v=validator, r=resource: v.validate(r))
            print(f"{name:36} {layer:14} {1 / per_call:14,.0f} {per_call * 1e6:12,.1f}")


def _engine(model: ElementModel) -> Any:
    try:
        from careweave.fhir.fhirpath import FhirPathEngine  # type: ignore[attr-defined]
    except ImportError:
        return None
    return FhirPathEngine(model)


if __name__ == "__main__":
    main()
