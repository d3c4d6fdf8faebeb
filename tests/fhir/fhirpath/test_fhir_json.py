"""FHIRPath over FHIR JSON: choice elements, primitives with ``_name`` siblings, contained and
Bundle resources, resolve(), the FHIR functions and environment variables, and Node paths.

Spec: https://hl7.org/fhir/R4/fhirpath.html, https://hl7.org/fhir/R4/json.html
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from careweave.fhir.fhirpath import FhirPathEngine, FhirPathError, Node


def nodes(engine: FhirPathEngine, expression: str, resource: Any, **kw: Any) -> list[Node]:
    return engine.compile(expression).evaluate_nodes(resource, **kw)


def values(engine: FhirPathEngine, expression: str, resource: Any, **kw: Any) -> list[Any]:
    return engine.compile(expression).evaluate(resource, **kw)


# -- choice elements -----------------------------------------------------------------------------
def test_choice_element_navigates_by_short_name_and_carries_the_type(engine, observation):
    (value,) = nodes(engine, "Observation.value", observation)
    assert (value.type, value.path) == ("Quantity", "Observation.value.ofType(Quantity)")
    assert value.value["value"] == 72.5
    types = [n.type for n in nodes(engine, "Observation.component.value", observation)]
    assert types == ["Quantity", "Quantity", "string"]


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("Observation.value.unit", ["kg"]),
        ("Observation.value.is(Quantity)", [True]),
        ("Observation.value.is(Period)", [False]),
        ("(Observation.value as Quantity).value", [72.5]),
        ("Observation.value.as(Period).start", []),
        ("Observation.component.value.ofType(string)", ["seated"]),
        ("(Observation.component.value as Quantity).value", [120, 80]),
        ("Observation.effective > @2024-01-01", [True]),
        ("Observation.effective is dateTime", [True]),
        ("Observation.value > 70 'kg'", [True]),
        ("Observation.value = 72500 'g'", [True]),
        ("Observation.value ~ 72.5 'kg'", [True]),
        ("Observation.valueQuantity.value", [72.5]),  # lenient: the JSON name works too
        ("Observation.value.value > 72.4", [True]),
        ("Observation.value.value is decimal", [True]),
    ],
)
def test_choice_semantics(engine, observation, expression, expected):
    assert values(engine, expression, observation) == expected


# -- primitives and their _name siblings ----------------------------------------------------------
def test_primitive_extension_is_reachable(engine, patient):
    url = "http://hl7.org/fhir/StructureDefinition/patient-birthTime"
    assert values(engine, f"Patient.birthDate.extension('{url}').value", patient) == [
        "1980-06-02T07:15:00+01:00"
    ]
    assert values(engine, "Patient.birthDate.extension(%`ext-patient-birthTime`).exists()",
                  patient) == [True]  # fmt: skip
    assert values(engine, "Patient.birthDate.extension('http://x').exists()", patient) == [False]


def test_primitive_arrays_align_values_with_their_extensions(engine, patient):
    lines = nodes(engine, "Patient.address.line", patient)
    assert [(n.value, n.path) for n in lines] == [
        ("1 High St", "Patient.address[0].line[0]"),
        (None, "Patient.address[0].line[1]"),
    ]
    assert values(engine, "Patient.address.line[1].extension.value", patient) == ["rear door"]
    assert values(engine, "Patient.address.line.hasValue()", patient) == [False]
    assert values(engine, "Patient.address.line.first().hasValue()", patient) == [True]
    assert values(engine, "Patient.address.line.last().hasValue()", patient) == [False]
    assert values(engine, "Patient.address.line.last().getValue()", patient) == []
    assert values(engine, "Patient.address.line.count()", patient) == [2]
    assert values(engine, "Patient.address.line.last() = 'x'", patient) == []


def test_primitive_with_only_an_extension_exists_without_a_value(engine):
    patient = {"resourceType": "Patient",
               "_birthDate": {"extension": [{"url": "http://x", "valueCode": "unknown"}]}}  # fmt: skip
    assert values(engine, "Patient.birthDate.exists()", patient) == [True]
    assert values(engine, "Patient.birthDate.hasValue()", patient) == [False]
    assert values(engine, "Patient.birthDate.extension.value", patient) == ["unknown"]
    assert values(engine, "Patient.birthDate < @2000", patient) == []


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("Patient.active.hasValue()", [True]),
        ("Patient.name.first().hasValue()", [False]),
        ("Patient.active.getValue()", [True]),
        ("Patient.birthDate.getValue() = @1980-06-02", [True]),
        ("Patient.birthDate = @1980-06-02", [True]),
        ("Patient.birthDate = @1980-06-02T10:00", []),
        ("Patient.birthDate.type().name", ["date"]),
        ("Patient.birthDate.type().namespace", ["FHIR"]),
        ("'x'.type().namespace", ["System"]),
        ("Patient.type().name", ["Patient"]),
        ("Patient.name.first().type().name", ["HumanName"]),
        ("Patient.id is id", [True]),
        ("Patient.id = 'pat-7'", [True]),
    ],
)
def test_primitive_values_and_types(engine, patient, expression, expected):
    assert values(engine, expression, patient) == expected


# -- resources inside resources ------------------------------------------------------------------
def test_contained_and_bundle_resources_take_their_resource_type(engine, patient, observation):
    (gp,) = nodes(engine, "Patient.contained", patient)
    assert (gp.type, gp.path) == ("Practitioner", "Patient.contained[0]")
    bundle = {"resourceType": "Bundle", "type": "collection",
              "entry": [{"resource": patient}, {"resource": observation}]}  # fmt: skip
    assert [n.type for n in nodes(engine, "Bundle.entry.resource", bundle)] == [
        "Patient",
        "Observation",
    ]
    assert values(engine, "Bundle.entry.resource.ofType(Observation).value.unit", bundle) == ["kg"]
    assert values(engine, "Bundle.entry[0].resource.name.first().family", bundle) == ["Okafor"]
    assert values(engine, "Bundle.entry.resource.where($this is DomainResource).count()",
                  bundle) == [2]  # fmt: skip


def test_resource_variables_follow_the_context(engine, patient):
    (gp,) = nodes(engine, "Patient.contained", patient)
    (gp_name,) = nodes(engine, "name", patient, context=gp)
    assert values(engine, "%resource.id", patient, context=gp_name) == ["gp1"]
    assert values(engine, "%rootResource.id", patient, context=gp_name) == ["pat-7"]
    assert values(engine, "%context.family", patient, context=gp_name) == ["Nwosu"]
    assert values(engine, "family", patient, context=gp_name) == ["Nwosu"]


# -- resolve() -----------------------------------------------------------------------------------
def test_resolve_without_a_resolver_makes_stubs(engine, patient, observation):
    assert values(engine, "Observation.subject.resolve()", observation) == [
        {"resourceType": "Patient", "id": "pat-7"}
    ]
    assert values(engine, "Observation.subject.where(resolve() is Patient).reference",
                  observation) == ["Patient/pat-7"]  # fmt: skip
    assert values(engine, "Observation.subject.where(resolve() is Group)", observation) == []
    assert values(engine, "Patient.managingOrganization.resolve().id", patient) == ["org-1"]
    assert values(engine, "Patient.generalPractitioner.resolve().id", patient) == ["gp1", "p-99"]
    assert values(engine, "Patient.generalPractitioner.resolve().name.family", patient) == ["Nwosu"]
    assert values(engine, "'urn:uuid:1234'.resolve()", patient) == []
    assert values(engine, "'Unknown/1'.resolve()", patient) == []


def test_resolve_uses_the_resolver(engine, observation):
    store = {"Patient/pat-7": {"resourceType": "Patient", "id": "pat-7", "gender": "male"}}
    assert values(engine, "Observation.subject.resolve().gender", observation,
                  resolver=store.get) == ["male"]  # fmt: skip
    assert values(engine, "Observation.encounter.resolve()", observation, resolver=store.get) == []


# -- hooks and FHIR functions --------------------------------------------------------------------
def test_member_of_delegates_to_the_terminology_hook(model, observation):
    calls: list[tuple[Any, str]] = []

    def terminology(value: Any, value_set: str) -> bool | None:
        calls.append((value.value["coding"][0]["code"], value_set))
        return value_set.endswith("/weights")

    hooked = FhirPathEngine(model, terminology=terminology)
    expression = "Observation.code.memberOf(%`vs-weights`)"
    assert hooked.compile(expression).evaluate(observation) == [True]
    assert calls == [("29463-7", "http://hl7.org/fhir/ValueSet/weights")]
    bare = FhirPathEngine(model)
    assert bare.compile(expression).evaluate(observation) == []


def test_conforms_to(model, engine, patient):
    base = "http://hl7.org/fhir/StructureDefinition/"
    assert values(engine, f"conformsTo('{base}Patient')", patient) == [True]
    assert values(engine, f"conformsTo('{base}DomainResource')", patient) == [True]
    assert values(engine, f"conformsTo('{base}Person')", patient) == [False]
    with pytest.raises(FhirPathError):
        values(engine, "conformsTo('http://example.org/profile')", patient)
    hooked = FhirPathEngine(model, conforms_to=lambda node, url: url in node.value["meta"]["profile"])
    profile = patient["meta"]["profile"][0]
    assert hooked.compile(f"conformsTo('{profile}')").evaluate(patient) == [True]


@pytest.mark.parametrize(
    ("div", "ok"),
    [
        ('<div xmlns="http://www.w3.org/1999/xhtml"><p>Hi <b>there</b></p></div>', True),
        ('<div xmlns="http://www.w3.org/1999/xhtml"><img src="a.png"/><br/></div>', True),
        ("<div><p>no namespace</p></div>", False),
        ('<div xmlns="http://www.w3.org/1999/xhtml"><script>x()</script></div>', False),
        ('<div xmlns="http://www.w3.org/1999/xhtml"><p onclick="x()">a</p></div>', False),
        ('<div xmlns="http://www.w3.org/1999/xhtml"><a href="javascript:x()">a</a></div>', False),
        ('<div xmlns="http://www.w3.org/1999/xhtml"><p>unclosed</div>', False),
        ('<p xmlns="http://www.w3.org/1999/xhtml">not a div</p>', False),
    ],
)
def test_html_checks(engine, div, ok):
    resource = {"resourceType": "Basic", "text": {"status": "generated", "div": div}}
    assert values(engine, "text.`div`.htmlChecks()", resource) == [ok]


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("%ucum", ["http://unitsofmeasure.org"]),
        ("%sct", ["http://snomed.info/sct"]),
        ("%loinc", ["http://loinc.org"]),
        ("%`vs-administrative-gender`", ["http://hl7.org/fhir/ValueSet/administrative-gender"]),
        ("%'ext-patient-birthTime'",
         ["http://hl7.org/fhir/StructureDefinition/patient-birthTime"]),
        ("%limit + 1", [4]),
        ("%codes.count()", [2]),
        ("%ratio * 2", [Decimal("0.50")]),
        ("%other.id", ["o1"]),
    ],
)  # fmt: skip
def test_environment_variables(engine, patient, expression, expected):
    supplied = {"limit": 3, "codes": ["a", "b"], "ratio": 0.25,
                "other": {"resourceType": "Organization", "id": "o1"}}  # fmt: skip
    assert values(engine, expression, patient, variables=supplied) == expected


def test_unknown_variable_fails_at_evaluation(engine, patient):
    with pytest.raises(FhirPathError, match="%missing"):
        values(engine, "%missing", patient)


@pytest.mark.parametrize("name", ["elementDefinition", "slice", "checkModifiers"])
def test_unsupported_functions_fail_at_compile_time(engine, name):
    with pytest.raises(FhirPathError, match="not supported"):
        engine.compile(f"Patient.name.{name}('x', 'y')")


# -- paths, plain values and untyped input --------------------------------------------------------
def test_node_paths_types_and_computed_values(engine, patient):
    given = nodes(engine, "Patient.name.where(use = 'maiden').given", patient)
    assert [(n.path, n.type) for n in given] == [
        ("Patient.name[2].given[0]", "string"),
        ("Patient.name[2].given[1]", "string"),
    ]
    (count,) = nodes(engine, "Patient.name.count()", patient)
    assert (count.value, count.type, count.path) == (3, "System.Integer", "")
    (today,) = nodes(engine, "today()", patient)
    assert (today.value, today.type) == ("2024-05-17", "System.Date")
    (meta,) = nodes(engine, "Patient.meta", patient)
    assert (meta.type, meta.path) == ("Meta", "Patient.meta")


def test_evaluate_returns_plain_values(engine, patient):
    assert values(engine, "Patient.name.first()", patient) == [patient["name"][0]]
    assert values(engine, "2.5 'mg'", patient) == [
        {"value": Decimal("2.5"), "unit": "mg", "system": "http://unitsofmeasure.org", "code": "mg"}
    ]
    assert values(engine, "3 days", patient) == [{"value": Decimal(3), "unit": "day"}]
    assert values(engine, "1.type()", patient) == [{"namespace": "System", "name": "Integer"}]


def test_untyped_context_is_navigated_by_json_keys(engine, observation):
    component = observation["component"][0]
    assert values(engine, "value.value", observation, context=component) == [120]
    assert values(engine, "value is Quantity", observation, context=component) == [True]
    assert values(engine, "code.coding.code", observation, context=component) == ["8480-6"]


def test_json_without_a_model_type_still_navigates(engine):
    data = {"a": {"b": [1, 2.5, "x", True]}, "c": None}
    assert values(engine, "a.b", data) == [1, 2.5, "x", True]
    assert values(engine, "a.b.where($this is integer)", data) == [1]
    assert values(engine, "c.exists()", data) == [False]


def test_nodes_locate_their_json_for_editing(engine, observation):
    (value,) = nodes(engine, "Observation.value", observation)
    assert value.key == "valueQuantity"
    assert value.parent is not None and value.parent.value[value.key] is value.value
    second = nodes(engine, "Observation.component[1].code.coding.code", observation)[0]
    assert (second.key, second.index) == ("code", None)
    coding = second.parent
    assert coding is not None and (coding.key, coding.index) == ("coding", 0)


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("Condition.onset is Age", [True]),
        ("Condition.onset is Quantity", [True]),
        ("Condition.onset is Duration", [False]),
        ("Condition.onset.ofType(Quantity).value", [52]),
        ("Condition.onset > 50 'a'", [True]),
        ("Condition.onset.type().name", ["Age"]),
        ("Condition is FHIR.DomainResource", [True]),
        ("Condition.abatement.as(string)", ["about a year ago"]),
    ],
)
def test_subtypes_count_for_type_tests(engine, expression, expected):
    condition = {
        "resourceType": "Condition",
        "subject": {"reference": "Patient/1"},
        "onsetAge": {"value": 52, "unit": "yr", "system": "http://unitsofmeasure.org", "code": "a"},
        "abatementString": "about a year ago",
    }
    assert values(engine, expression, condition) == expected


def test_a_prebuilt_root_node_gives_the_same_results(engine, patient):
    expression = engine.compile("Patient.name.where(use = 'official').given")
    root = engine.node(patient)
    assert expression.evaluate(root) == expression.evaluate(patient) == ["Ada", "Nneka"]
    assert [n.path for n in expression.evaluate_nodes(root)] == [
        "Patient.name[0].given[0]",
        "Patient.name[0].given[1]",
    ]
