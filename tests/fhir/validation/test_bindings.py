"""Required bindings: https://hl7.org/fhir/R4/terminologies.html#required."""

from __future__ import annotations

from careweave.fhir.validation import Validator

from .samples import errors, located, observation, patient

E = "error"
CATEGORY = "http://terminology.hl7.org/CodeSystem/observation-category"


def test_code_outside_required_value_set(validator: Validator) -> None:
    issues = validator.validate(patient(gender="woman"))
    assert located(issues) == {(E, "code-invalid", "Patient.gender")}
    assert "administrative-gender" in issues[0].diagnostics


def test_codes_in_nested_data_types(validator: Validator) -> None:
    bad = patient(name=[{"use": "nick"}], telecom=[{"system": "telex", "value": "1"}])
    assert located(errors(validator.validate(bad))) == {
        (E, "code-invalid", "Patient.name[0].use"),
        (E, "code-invalid", "Patient.telecom[0].system"),
    }


def test_mime_type_binding_uses_syntax(validator: Validator) -> None:
    ok = patient(photo=[{"contentType": "image/png", "data": "aGVsbG8="}])
    bad = patient(photo=[{"contentType": "png", "data": "aGVsbG8="}])
    assert errors(validator.validate(ok)) == []
    assert located(errors(validator.validate(bad))) == {(E, "code-invalid", "Patient.photo[0].contentType")}


def test_codeable_concept_needs_one_coding_from_the_value_set(validator: Validator) -> None:
    # AllergyIntolerance.clinicalStatus is a CodeableConcept with a required binding.
    base = {
        "resourceType": "AllergyIntolerance",
        "patient": {"reference": "Patient/p1"},
        "text": {"status": "generated", "div": '<div xmlns="http://www.w3.org/1999/xhtml">x</div>'},
    }
    system = "http://terminology.hl7.org/CodeSystem/allergyintolerance-clinical"
    good = base | {
        "clinicalStatus": {
            "coding": [{"system": "http://other.org", "code": "x"}, {"system": system, "code": "active"}]
        }
    }
    wrong_code = base | {"clinicalStatus": {"coding": [{"system": system, "code": "nope"}]}}
    text_only = base | {"clinicalStatus": {"text": "active"}}
    no_system = base | {"clinicalStatus": {"coding": [{"code": "active"}]}}
    assert errors(validator.validate(good)) == []
    for bad in (wrong_code, text_only, no_system):
        assert located(errors(validator.validate(bad))) == {
            (E, "code-invalid", "AllergyIntolerance.clinicalStatus")
        }, bad


def test_example_and_extensible_bindings_are_not_checked(validator: Validator) -> None:
    resource = observation(category=[{"coding": [{"system": CATEGORY, "code": "not-a-category"}]}])
    assert errors(validator.validate(resource)) == []


def test_capability_statement_format_shorthands(validator: Validator) -> None:
    resource = {
        "resourceType": "CapabilityStatement",
        "status": "active",
        "date": "2024",
        "kind": "instance",
        "fhirVersion": "4.0.1",
        "implementation": {"description": "x"},
        "format": ["json", "application/fhir+xml", "turtle"],
        "text": {"status": "generated", "div": '<div xmlns="http://www.w3.org/1999/xhtml">x</div>'},
    }
    assert located(errors(validator.validate(resource))) == {
        (E, "code-invalid", "CapabilityStatement.format[2]")
    }


def test_unknown_value_sets_are_listed(validator: Validator) -> None:
    # the R4 bundle's R4B SubscriptionStatus (fhirVersion 4.3.0) is not an R4 type: not in the model
    assert set(validator.unchecked_bindings) == {
        ("EvidenceVariable.characteristic.definitionByCombination.code",
         "http://hl7.org/fhir/ValueSet/characteristic-combination"),
        ("MolecularSequence.structureVariant.variantType", "http://loinc.org/vs/LL379-9"),
    }
