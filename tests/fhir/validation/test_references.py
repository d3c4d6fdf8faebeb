"""References: https://hl7.org/fhir/R4/references.html (shape, targets, type, ref-1)."""

from __future__ import annotations

from typing import Any

import pytest

from careweave.fhir.validation import Validator

from .samples import errors, located, observation

E = "error"
DIV = {"status": "generated", "div": '<div xmlns="http://www.w3.org/1999/xhtml">x</div>'}

VALID = [
    "Patient/p1",
    "Patient/p1/_history/2",
    "https://example.org/fhir/Patient/p1",
    "https://example.org/fhir/Patient/p1/_history/2",
    "https://example.org/some/other/thing",
    "urn:uuid:a76d9bbf-f293-4fb7-ad4c-2851cac77162",
    "urn:oid:1.2.3.4",
    "Group/g1",
]

INVALID = [
    ("Patient", "value"),
    ("Patient/a b", "value"),
    ("patient/p1", "value"),
    ("Foo/p1", "value"),
    ("Patient/p1/_history/", "value"),
    ("urn:uuid:not-a-uuid", "value"),
    ("urn:oid:9.9", "value"),
    ("Patient?identifier=x", "value"),
    ("#missing", "invariant"),
    ("#", "invalid"),
    ("Organization/o1", "invalid"),
    ("https://example.org/fhir/Organization/o1", "invalid"),
]


@pytest.mark.parametrize("reference", VALID)
def test_valid_reference(validator: Validator, reference: str) -> None:
    assert errors(validator.validate(observation(subject={"reference": reference}))) == []


@pytest.mark.parametrize(("reference", "code"), INVALID)
def test_invalid_reference(validator: Validator, reference: str, code: str) -> None:
    issues = errors(validator.validate(observation(subject={"reference": reference})))
    assert located(issues) == {(E, code, "Observation.subject.reference")}


def test_reference_type_must_agree(validator: Validator) -> None:
    agrees = observation(subject={"reference": "Patient/p1", "type": "Patient"})
    assert errors(validator.validate(agrees)) == []
    cases: list[tuple[dict[str, Any], str]] = [
        ({"reference": "Patient/p1", "type": "Group"}, "invalid"),
        ({"identifier": {"value": "x"}, "type": "Organization"}, "invalid"),
        ({"identifier": {"value": "x"}, "type": "Nonsense"}, "code-invalid"),
    ]
    for subject, code in cases:
        issues = errors(validator.validate(observation(subject=subject)))
        assert located(issues) == {(E, code, "Observation.subject.type")}, subject


def test_any_target_when_resource_is_allowed(validator: Validator) -> None:
    resource = observation(focus=[{"reference": "Organization/o1"}])
    assert errors(validator.validate(resource)) == []


def test_local_reference_to_contained(validator: Validator) -> None:
    contained = [{"resourceType": "Patient", "id": "p", "name": [{"family": "X"}]}]
    ok = observation(contained=contained, subject={"reference": "#p"})
    assert errors(validator.validate(ok)) == []
    wrong_type = observation(
        contained=[{"resourceType": "Organization", "id": "p"}], subject={"reference": "#p"}
    )
    assert located(errors(validator.validate(wrong_type))) == {
        (E, "invalid", "Observation.subject.reference")
    }


def test_conditional_reference_only_in_transactions(validator: Validator) -> None:
    entry = {
        "resource": observation(subject={"reference": "Patient?identifier=x|1"}),
        "request": {"method": "POST", "url": "Observation"},
    }
    transaction = {"resourceType": "Bundle", "type": "transaction", "entry": [entry]}
    assert errors(validator.validate(transaction)) == []
    collection = {"resourceType": "Bundle", "type": "collection", "entry": [{"resource": entry["resource"]}]}
    assert located(errors(validator.validate(collection))) == {
        (E, "value", "Bundle.entry[0].resource.subject.reference")
    }
