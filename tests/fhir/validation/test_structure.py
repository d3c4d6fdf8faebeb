"""JSON shape and cardinality: https://hl7.org/fhir/R4/json.html, element rules from the definitions.

Each case is a hand-written invalid variant of a valid resource, with the exact issues expected.
"""

from __future__ import annotations

from typing import Any

import pytest

from careweave.fhir.validation import Validator

from .samples import OBSERVATION, PATIENT, errors, located, observation, patient

E = "error"

CASES: list[tuple[str, Any, set[tuple[str, str, str]]]] = [
    ("not an object", [1, 2], {(E, "structure", "(root)")}),
    ("no resourceType", {"id": "x"}, {(E, "structure", "(root)")}),
    ("unknown resourceType", {"resourceType": "Patientx"}, {(E, "structure", "Patientx")}),
    ("abstract resourceType", {"resourceType": "DomainResource"}, {(E, "structure", "DomainResource")}),
    ("unknown element", patient(colour="blue"), {(E, "structure", "Patient.colour")}),
    (
        "fhir_comments is not R4 JSON",
        patient(fhir_comments=["x"]),
        {(E, "structure", "Patient.fhir_comments")},
    ),
    ("stray _ key", patient(_colour={"id": "a"}), {(E, "structure", "Patient._colour")}),
    ("_ key for a complex element", patient(_name=[{"id": "a"}]), {(E, "structure", "Patient._name")}),
    ("array where max 1", patient(gender=["female"]), {(E, "structure", "Patient.gender")}),
    ("object where array", patient(name={"family": "X"}), {(E, "structure", "Patient.name")}),
    ("empty array", patient(name=[]), {(E, "structure", "Patient.name")}),
    ("empty object", patient(maritalStatus={}), {(E, "structure", "Patient.maritalStatus")}),
    ("object with only id", patient(maritalStatus={"id": "m"}), {(E, "invariant", "Patient.maritalStatus")}),
    ("null value", patient(gender=None) | {"active": None}, {(E, "structure", "Patient.active")}),
    ("null in array", patient(name=[{"family": "A"}, None]), {(E, "structure", "Patient.name[1]")}),
    (
        "null in primitive array without _",
        patient(name=[{"given": ["A", None]}]),
        {(E, "structure", "Patient.name[0].given[1]")},
    ),
    ("empty string", patient(name=[{"given": ["A", ""]}]), {(E, "value", "Patient.name[0].given[1]")}),
    ("number for a string", patient(name=[{"family": 3}]), {(E, "structure", "Patient.name[0].family")}),
    ("string for a boolean", patient(active="true"), {(E, "structure", "Patient.active")}),
    ("complex value not an object", patient(maritalStatus="M"), {(E, "structure", "Patient.maritalStatus")}),
    ("bad id", patient(id="a b"), {(E, "value", "Patient.id")}),
    (
        "time without seconds",
        observation(effectiveDateTime="2020-01-01T10:00Z"),
        {(E, "value", "Observation.effective.ofType(dateTime)")},
    ),
    ("id too long", patient(id="a" * 65), {(E, "value", "Patient.id")}),
    ("missing required", observation(status=None), {(E, "required", "Observation.status")}),
    (
        "missing required backbone child",
        patient(link=[{"type": "seealso"}]),
        {(E, "required", "Patient.link[0].other")},
    ),
    ("two choice types", observation(valueString="x"), {(E, "structure", "Observation.value")}),
    (
        "choice type not allowed",
        observation(valueAddress={"city": "X"}),
        {(E, "structure", "Observation.valueAddress")},
    ),
    (
        "bad element inside choice",
        observation(valueQuantity={"value": "72"}),
        {(E, "structure", "Observation.value.ofType(Quantity).value")},
    ),
    ("code with whitespace", patient(gender=" female"), {(E, "value", "Patient.gender")}),
    (
        "unknown element in nested backbone",
        patient(contact=[{"name": {"family": "A"}, "foo": 1}]),
        {(E, "structure", "Patient.contact[0].foo")},
    ),
]


@pytest.mark.parametrize(("label", "resource", "expected"), CASES, ids=[c[0] for c in CASES])
def test_invalid_variant(validator: Validator, label: str, resource: Any, expected: set[Any]) -> None:
    assert located(errors(validator.validate(resource))) == expected


@pytest.mark.parametrize("resource", [PATIENT, OBSERVATION], ids=["Patient", "Observation"])
def test_valid_samples_have_no_issues(validator: Validator, resource: dict[str, Any]) -> None:
    assert validator.validate(resource) == []


def test_every_problem_is_reported_in_one_pass(validator: Validator) -> None:
    bad = patient(gender="f", birthDate="2023-02-30", colour=1, name=[{"given": [""]}])
    assert located(errors(validator.validate(bad))) == {
        (E, "code-invalid", "Patient.gender"),
        (E, "value", "Patient.birthDate"),
        (E, "structure", "Patient.colour"),
        (E, "value", "Patient.name[0].given[0]"),
    }


def test_diagnostics_name_the_element(validator: Validator) -> None:
    (issue,) = validator.validate(patient(birthDate="2023-02-30"))
    assert issue.diagnostics.startswith("Patient.birthDate ")
    assert "2023-02-30" in issue.diagnostics
    assert issue.details is None


def test_primitive_extension_alone_satisfies_the_element(validator: Validator) -> None:
    ext = {
        "extension": [
            {"url": "http://hl7.org/fhir/StructureDefinition/data-absent-reason", "valueCode": "unknown"}
        ]
    }
    resource = observation(status=None) | {"_status": ext}
    assert errors(validator.validate(resource)) == []


def test_aligned_nulls_in_primitive_arrays(validator: Validator) -> None:
    ext = {"extension": [{"url": "http://example.org/x", "valueString": "y"}]}
    ok = patient(name=[{"given": ["A", None], "_given": [None, ext]}])
    assert errors(validator.validate(ok)) == []
    misaligned = patient(name=[{"given": ["A", None], "_given": [None]}])
    assert located(errors(validator.validate(misaligned))) == {
        (E, "structure", "Patient.name[0].given[1]"),
        (E, "structure", "Patient.name[0]._given"),
    }


def test_primitive_extension_object_shape(validator: Validator) -> None:
    bad = patient(_birthDate={"id": "b"})
    assert located(errors(validator.validate(bad))) == set()  # the value is there: id alone is fine
    lonely = patient(birthDate=None) | {"_birthDate": {"id": "b"}}
    assert located(errors(validator.validate(lonely))) == {(E, "invariant", "Patient.birthDate")}
    unknown = patient(_birthDate={"foo": 1})
    assert located(errors(validator.validate(unknown))) == {(E, "structure", "Patient.birthDate.foo")}


def test_extension_ext_1(validator: Validator) -> None:
    both = patient(
        extension=[
            {"url": "http://x.org/a", "valueString": "v", "extension": [{"url": "b", "valueString": "w"}]}
        ]
    )
    neither = patient(extension=[{"url": "http://x.org/a"}])
    for resource in (both, neither):
        (issue,) = errors(validator.validate(resource))
        assert (issue.code, issue.expression, issue.details) == (
            "invariant",
            ("Patient.extension[0]",),
            "ext-1",
        )
    no_url = patient(extension=[{"valueString": "v"}])
    assert located(errors(validator.validate(no_url))) == {(E, "required", "Patient.extension[0].url")}


def test_whitespace_only_string_is_a_warning(validator: Validator) -> None:
    issues = validator.validate(patient(name=[{"family": "  "}]))
    assert located(issues) == {("warning", "value", "Patient.name[0].family")}


def test_plain_primitives_skipped_when_valid_give_the_same_issues(
    validator: Validator, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A valid value of a primitive with nothing else to check (no binding, no invariant) is not
    walked further; walking every value (the general path) finds exactly the same issues, on every
    case here, local references and warnings included."""
    from careweave.fhir import ukcore
    from careweave.fhir.validation import walk

    extra = [
        patient(name=[{"family": " ", "given": ["Ann", "", "B\x01"]}], birthDate="2024-02-30"),
        observation(valueString="x", effectiveDateTime="2024-01-01T10:00", issued="2024-01-01"),
        # the contained Patient is referred to only from a uri (meta.source): no dom-3
        {**observation(text=None), "contained": [{"resourceType": "Patient", "id": "c"}],
         "meta": {"source": "#c"}},
        {**patient(), "implicitRules": "#", "_birthDate": {"extension": [{"url": "u", "valueCode": "x"}]}},
    ]
    cases = [case[1] for case in CASES] + extra + [PATIENT, OBSERVATION, *ukcore.load_examples()]
    quick = [validator.validate(r) for r in cases]
    monkeypatch.setattr(walk, "_valid_plain", lambda slot, value: False)
    assert [validator.validate(r) for r in cases] == quick
    assert sum(len(issues) for issues in quick) > len(CASES)
