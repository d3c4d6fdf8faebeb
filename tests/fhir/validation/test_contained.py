"""Contained and nested resources: https://hl7.org/fhir/R4/references.html#contained, dom-2..dom-5,
Bundle entries and Parameters resources validated as resources of their own type."""

from __future__ import annotations

from typing import Any

from careweave.fhir.validation import Validator

from .samples import errors, located, observation, patient

E = "error"


def _with_contained(*contained: dict[str, Any], **changes: Any) -> dict[str, Any]:
    return observation(contained=list(contained), **changes)


def test_contained_resource_is_validated_with_its_type(validator: Validator) -> None:
    resource = _with_contained(
        {"resourceType": "Patient", "id": "p", "gender": "x"}, subject={"reference": "#p"}
    )
    assert located(errors(validator.validate(resource))) == {
        (E, "code-invalid", "Observation.contained[0].gender")
    }


def test_dom_rules(validator: Validator) -> None:
    nested = {"resourceType": "Patient", "id": "p", "contained": [{"resourceType": "Patient", "id": "q"}]}
    meta = {"resourceType": "Patient", "id": "p", "meta": {"versionId": "1", "security": [{"code": "R"}]}}
    cases = [
        (_with_contained(nested, subject={"reference": "#p"}), {"dom-2"}),
        (_with_contained(meta, subject={"reference": "#p"}), {"dom-4", "dom-5"}),
        (_with_contained({"resourceType": "Patient", "id": "p"}), {"dom-3"}),
        (_with_contained({"resourceType": "Patient"}), {"dom-3"}),
    ]
    for resource, keys in cases:
        found = {i.details for i in errors(validator.validate(resource))}
        assert keys <= found, (keys, found)


def test_dom_3_satisfied_by_canonical_or_back_reference(validator: Validator) -> None:
    back = {
        "resourceType": "Provenance",
        "id": "prov",
        "target": [{"reference": "#"}],
        "recorded": "2024-01-01T00:00:00Z",
        "agent": [{"who": {"display": "x"}}],
    }
    assert errors(validator.validate(_with_contained(back))) == []
    referred_by_sibling = [
        {"resourceType": "Practitioner", "id": "a"},
        {"resourceType": "PractitionerRole", "id": "b", "practitioner": {"reference": "#a"}},
    ]
    resource = _with_contained(*referred_by_sibling, performer=[{"reference": "#b"}])
    assert errors(validator.validate(resource)) == []


def test_bundle_entries_are_validated_as_resources(validator: Validator) -> None:
    bundle = {
        "resourceType": "Bundle",
        "type": "collection",
        "entry": [
            {"fullUrl": "urn:uuid:a76d9bbf-f293-4fb7-ad4c-2851cac77162", "resource": patient()},
            {"resource": observation(status="done")},
            {"resource": {"resourceType": "Nope"}},
            {
                "resource": observation(
                    contained=[{"resourceType": "Patient", "id": "x"}], subject={"reference": "#x"}
                )
            },
        ],
    }
    assert located(errors(validator.validate(bundle))) == {
        (E, "code-invalid", "Bundle.entry[1].resource.status"),
        (E, "structure", "Bundle.entry[2].resource"),
    }


def test_bundle_entry_local_reference_is_scoped_to_the_entry(validator: Validator) -> None:
    bundle = {
        "resourceType": "Bundle",
        "type": "collection",
        "entry": [
            {
                "resource": observation(
                    contained=[{"resourceType": "Patient", "id": "x"}], subject={"reference": "#x"}
                )
            },
            {"resource": observation(subject={"reference": "#x"})},
        ],
    }
    assert located(errors(validator.validate(bundle))) == {
        (E, "invariant", "Bundle.entry[1].resource.subject.reference")
    }


def test_parameters_resource_is_validated(validator: Validator) -> None:
    parameters = {
        "resourceType": "Parameters",
        "parameter": [
            {"name": "a", "resource": patient(birthDate="1980-13-01")},
            {"name": "b", "valueString": "x"},
        ],
    }
    assert located(errors(validator.validate(parameters))) == {
        (E, "value", "Parameters.parameter[0].resource.birthDate")
    }
