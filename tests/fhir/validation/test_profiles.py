"""Profiles (StructureDefinition, derivation=constraint, differential only):
https://hl7.org/fhir/R4/profiling.html and https://hl7.org/fhir/R4/profiling.html#slicing."""

from __future__ import annotations

from typing import Any

import pytest

from careweave.fhir.validation import PROFILE_DETAILS, Validator

from .samples import located, patient

E = "error"
NHS = "https://fhir.nhs.uk/Id/nhs-number"
EXT_URL = "http://example.org/StructureDefinition/ethnic"
GENDERS = "http://example.org/ValueSet/genders"


def _sd(url: str, kind: str, elements: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "resourceType": "StructureDefinition",
        "url": url,
        "name": "T",
        "status": "active",
        "kind": "complex-type" if kind == "Extension" else "resource",
        "abstract": False,
        "type": kind,
        "derivation": "constraint",
        "baseDefinition": f"http://hl7.org/fhir/StructureDefinition/{kind}",
        "differential": {"element": elements},
    }


EXTENSION = _sd(
    EXT_URL,
    "Extension",
    [
        {"id": "Extension", "path": "Extension", "max": "1"},
        {"id": "Extension.extension", "path": "Extension.extension", "max": "0"},
        {"id": "Extension.url", "path": "Extension.url", "fixedUri": EXT_URL},
        {
            "id": "Extension.value[x]",
            "path": "Extension.value[x]",
            "min": 1,
            "type": [{"code": "CodeableConcept"}],
        },
    ],
)

PROFILE = _sd(
    "http://example.org/StructureDefinition/MyPatient",
    "Patient",
    [
        {"id": "Patient", "path": "Patient"},
        {
            "id": "Patient.extension:ethnic",
            "path": "Patient.extension",
            "sliceName": "ethnic",
            "max": "1",
            "type": [{"code": "Extension", "profile": [EXT_URL]}],
        },
        {
            "id": "Patient.identifier",
            "path": "Patient.identifier",
            "min": 1,
            "slicing": {"discriminator": [{"type": "value", "path": "system"}], "rules": "open"},
        },
        {
            "id": "Patient.identifier:nhsNumber",
            "path": "Patient.identifier",
            "sliceName": "nhsNumber",
            "min": 1,
            "max": "1",
        },
        {"id": "Patient.identifier:nhsNumber.system", "path": "Patient.identifier.system", "fixedUri": NHS},
        {"id": "Patient.identifier:nhsNumber.value", "path": "Patient.identifier.value", "min": 1},
        {
            "id": "Patient.gender",
            "path": "Patient.gender",
            "min": 1,
            "binding": {"strength": "required", "valueSet": GENDERS},
        },
        {
            "id": "Patient.maritalStatus",
            "path": "Patient.maritalStatus",
            "patternCodeableConcept": {"coding": [{"system": "http://x.org/ms", "code": "M"}]},
        },
        {"id": "Patient.deceased[x]", "path": "Patient.deceased[x]", "type": [{"code": "boolean"}]},
        {
            "id": "Patient.managingOrganization",
            "path": "Patient.managingOrganization",
            "type": [
                {
                    "code": "Reference",
                    "targetProfile": ["http://hl7.org/fhir/StructureDefinition/Organization"],
                }
            ],
        },
        {
            "id": "Patient.generalPractitioner",
            "path": "Patient.generalPractitioner",
            "max": "1",
            "type": [
                {
                    "code": "Reference",
                    "targetProfile": ["http://example.org/StructureDefinition/MyPractitioner"],
                }
            ],
        },
    ],
)

PACKAGE = [
    EXTENSION,
    PROFILE,
    _sd("http://example.org/StructureDefinition/MyPractitioner", "Practitioner", []),
    {
        "resourceType": "ValueSet",
        "url": GENDERS,
        "status": "active",
        "compose": {
            "include": [
                {
                    "system": "http://hl7.org/fhir/administrative-gender",
                    "concept": [{"code": "female"}, {"code": "male"}],
                }
            ]
        },
    },
]

ETHNIC = {"url": EXT_URL, "valueCodeableConcept": {"text": "A"}}
VALID = patient(
    extension=[ETHNIC],
    maritalStatus={"coding": [{"system": "http://x.org/ms", "code": "M", "display": "x"}]},
    identifier=[{"system": "urn:oid:1.2", "value": "1"}, {"system": NHS, "value": "9"}],
    generalPractitioner=[{"reference": "Practitioner/g"}],
)


@pytest.fixture(scope="module")
def profile(validator: Validator) -> Any:
    return validator.profile_library(PACKAGE).profile(PROFILE["url"])


def _profile_issues(validator: Validator, resource: dict[str, Any], profile: Any) -> set[Any]:
    issues = [i for i in validator.validate(resource, profiles=[profile]) if i.severity == "error"]
    assert all(i.details == PROFILE_DETAILS for i in issues)
    return located(issues)


def test_valid_resource_meets_the_profile(validator: Validator, profile: Any) -> None:
    assert validator.validate(VALID, profiles=[profile]) == []


CASES = [
    ("min on element", {"gender": None}, {(E, "required", "Patient.gender")}),
    ("required binding from the package", {"gender": "other"}, {(E, "code-invalid", "Patient.gender")}),
    (
        "slice min",
        {"identifier": [{"system": "urn:oid:1.2", "value": "1"}]},
        {(E, "required", "Patient.identifier:nhsNumber")},
    ),
    (
        "slice max",
        {"identifier": [{"system": NHS, "value": "1"}, {"system": NHS, "value": "2"}]},
        {(E, "structure", "Patient.identifier:nhsNumber")},
    ),
    (
        "child min inside slice",
        {"identifier": [{"system": NHS}]},
        {(E, "required", "Patient.identifier[0].value")},
    ),
    (
        "element min over all values",
        {"identifier": None},
        {(E, "required", "Patient.identifier"), (E, "required", "Patient.identifier:nhsNumber")},
    ),
    (
        "pattern",
        {"maritalStatus": {"coding": [{"system": "http://x.org/ms", "code": "S"}]}},
        {(E, "value", "Patient.maritalStatus")},
    ),
    (
        "choice type restriction",
        {"deceasedDateTime": "2020-01-01"},
        {(E, "structure", "Patient.deceasedDateTime")},
    ),
    (
        "target narrowing to a package profile",
        {"generalPractitioner": [{"reference": "Organization/o"}]},
        {(E, "invalid", "Patient.generalPractitioner[0].reference")},
    ),
    (
        "max",
        {"generalPractitioner": [{"reference": "Practitioner/a"}, {"reference": "Practitioner/b"}]},
        {(E, "structure", "Patient.generalPractitioner")},
    ),
    ("extension slice max", {"extension": [ETHNIC, ETHNIC]}, {(E, "structure", "Patient.extension:ethnic")}),
    (
        "extension value type from its definition",
        {"extension": [{"url": EXT_URL, "valueString": "A"}]},
        {(E, "structure", "Patient.extension[0].valueString")},
    ),
    (
        "extension url fixed by its definition",
        {"extension": [{"url": EXT_URL + "x", "valueString": "A"}]},
        set(),
    ),
]


@pytest.mark.parametrize(("label", "changes", "expected"), CASES, ids=[c[0] for c in CASES])
def test_profile_rule(
    validator: Validator, profile: Any, label: str, changes: dict[str, Any], expected: set[Any]
) -> None:
    resource = dict(VALID)
    for key, value in changes.items():
        if value is None:
            resource.pop(key)
        else:
            resource[key] = value
    assert _profile_issues(validator, resource, profile) == expected


def test_closed_slicing(validator: Validator) -> None:
    closed = _sd(
        "http://x.org/closed",
        "Patient",
        [
            {
                "id": "Patient.identifier",
                "path": "Patient.identifier",
                "slicing": {"discriminator": [{"type": "value", "path": "system"}], "rules": "closed"},
            },
            {"id": "Patient.identifier:nhs", "path": "Patient.identifier", "sliceName": "nhs"},
            {"id": "Patient.identifier:nhs.system", "path": "Patient.identifier.system", "fixedUri": NHS},
        ],
    )
    resource = patient(identifier=[{"system": NHS, "value": "1"}, {"system": "urn:x", "value": "2"}])
    assert _profile_issues(validator, resource, closed) == {(E, "structure", "Patient.identifier[1]")}


def test_profile_for_another_type(validator: Validator, profile: Any) -> None:
    resource = {"resourceType": "Basic", "code": {"text": "x"}}
    issues = [i for i in validator.validate(resource, profiles=[profile]) if i.details == PROFILE_DETAILS]
    assert located(issues) == {(E, "invalid", "Basic")}


def test_raw_structure_definition_is_compiled_for_the_call(validator: Validator) -> None:
    sd = _sd(
        "http://x.org/p", "Patient", [{"id": "Patient.birthDate", "path": "Patient.birthDate", "min": 1}]
    )
    assert _profile_issues(validator, patient(birthDate=None), sd) == {(E, "required", "Patient.birthDate")}


def test_profile_invariants_go_through_the_engine(model: Any, terminology: Any) -> None:
    from .fhirpathpy_engine import FhirpathpyEngine

    validator = Validator(model, terminology, fhirpath=FhirpathpyEngine())
    sd = _sd(
        "http://x.org/inv",
        "Patient",
        [
            {
                "id": "Patient",
                "path": "Patient",
                "constraint": [
                    {
                        "key": "x-1",
                        "severity": "error",
                        "human": "needs a birth date",
                        "expression": "birthDate.exists()",
                    }
                ],
            }
        ],
    )
    issues = validator.validate(patient(birthDate=None), profiles=[sd])
    assert located(issues) == {(E, "invariant", "Patient")}
    assert issues[0].details == PROFILE_DETAILS and "x-1" in issues[0].diagnostics
