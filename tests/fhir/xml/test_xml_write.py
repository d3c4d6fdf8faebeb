"""render_xml: FHIR JSON -> FHIR XML (https://hl7.org/fhir/R4/xml.html), and back with parse_xml."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from careweave.errors import CareweaveError
from careweave.fhir.elements import ElementModel
from careweave.fhir.xml import parse_xml, render_xml

HEAD = b'<?xml version="1.0" encoding="UTF-8"?>'
XHTML = 'xmlns="http://www.w3.org/1999/xhtml"'


def test_elements_follow_the_definitions_order(model: ElementModel) -> None:
    patient = {
        "gender": "male",
        "name": [{"given": ["A", "B"], "family": "C", "id": "n"}],
        "extension": [{"valueString": "v", "url": "http://e"}],
        "id": "x",
        "resourceType": "Patient",
    }
    assert render_xml(patient, model) == HEAD + (
        b'<Patient xmlns="http://hl7.org/fhir"><id value="x"/>'
        b'<extension url="http://e"><valueString value="v"/></extension>'
        b'<name id="n"><family value="C"/><given value="A"/><given value="B"/></name>'
        b'<gender value="male"/></Patient>'
    )


def test_primitive_extras_and_null_alignment(model: ElementModel) -> None:
    patient = {
        "resourceType": "Patient",
        "name": [
            {
                "given": ["A", None],
                "_given": [None, {"id": "g", "extension": [{"url": "u", "valueCode": "c"}]}],
            }
        ],
        "_birthDate": {"id": "b"},
    }
    xml = render_xml(patient, model)
    assert (
        b'<name><given value="A"/><given id="g">'
        b'<extension url="u"><valueCode value="c"/></extension></given></name>' in xml
    )
    assert b'<birthDate id="b"/>' in xml
    assert parse_xml(xml, model) == patient


def test_attribute_values_survive_xml_normalisation(model: ElementModel) -> None:
    family = 'a"b<c>&d\te\nf\rg  h'
    xml = render_xml({"resourceType": "Patient", "name": [{"family": family}]}, model)
    assert b'value="a&quot;b&lt;c&gt;&amp;d&#9;e&#10;f&#13;g  h"' in xml
    assert parse_xml(xml, model)["name"][0]["family"] == family


def test_numbers_and_booleans(model: ElementModel) -> None:
    observation = {
        "resourceType": "Observation",
        "status": "final",
        "code": {"text": "x"},
        "valueQuantity": {"value": 1e-7},
        "component": [
            {"code": {"text": "a"}, "valueInteger": -4},
            {"code": {"text": "b"}, "valueBoolean": False},
            {"code": {"text": "c"}, "valueQuantity": {"value": orjson.Fragment(b"1.50")}},
            {"code": {"text": "d"}, "valueQuantity": {"value": 100.0}},
        ],
    }
    xml = render_xml(observation, model)
    for text in (b'"1e-7"', b'"-4"', b'"false"', b'"1.50"', b'"100.0"'):
        assert b"value=" + text in xml
    back = parse_xml(xml, model)
    assert orjson.dumps(back) == orjson.dumps(observation)


def test_contained_and_bundle_resources(model: ElementModel) -> None:
    bundle = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {
                "fullUrl": "urn:uuid:1",
                "resource": {
                    "resourceType": "Patient",
                    "contained": [{"resourceType": "Organization", "id": "o"}],
                    "managingOrganization": {"reference": "#o"},
                },
                "request": {"method": "POST", "url": "Patient"},
            }
        ],
    }
    xml = render_xml(bundle, model)
    assert b'<resource><Patient><contained><Organization><id value="o"/></Organization></contained>' in xml
    assert parse_xml(xml, model) == bundle


def test_narrative_is_embedded_in_canonical_form(model: ElementModel) -> None:
    patient = {
        "resourceType": "Patient",
        "text": {"status": "generated", "div": f"<div {XHTML}><p title='t'>a\r\nb<br></br></p></div>"},
    }
    xml = render_xml(patient, model)
    canonical = f'<div {XHTML}><p title="t">a\nb<br/></p></div>'
    assert canonical.encode() in xml
    assert parse_xml(xml, model)["text"]["div"] == canonical


def test_pretty_output_indents_and_reads_back(model: ElementModel) -> None:
    patient = {
        "resourceType": "Patient",
        "text": {"status": "generated", "div": f"<div {XHTML}><p>x</p></div>"},
        "name": [{"family": "F"}],
        "contained": [{"resourceType": "Organization", "id": "o"}],
    }
    xml = render_xml(patient, model, pretty=True)
    assert xml.decode().splitlines() == [
        '<?xml version="1.0" encoding="UTF-8"?>',
        '<Patient xmlns="http://hl7.org/fhir">',
        "  <text>",
        '    <status value="generated"/>',
        f"    <div {XHTML}><p>x</p></div>",
        "  </text>",
        "  <contained>",
        "    <Organization>",
        '      <id value="o"/>',
        "    </Organization>",
        "  </contained>",
        "  <name>",
        '    <family value="F"/>',
        "  </name>",
        "</Patient>",
    ]
    assert parse_xml(xml, model) == patient


XML_TEXT = st.text(
    alphabet=st.characters(blacklist_categories=["Cs"], blacklist_characters=["\ufffe", "\uffff"]).filter(
        lambda c: c in "\t\n\r" or c >= " "
    ),
    min_size=1,
)


@settings(max_examples=200, deadline=None)
@given(
    family=XML_TEXT,
    given_names=st.lists(XML_TEXT, max_size=3),
    weight=st.floats(allow_nan=False, allow_infinity=False),
)
def test_any_text_and_any_float_round_trip(
    model: ElementModel, family: str, given_names: list[str], weight: float
) -> None:
    name: dict[str, Any] = {"family": family}
    if given_names:
        name["given"] = given_names
    resources = [
        {"resourceType": "Patient", "name": [name]},
        {
            "resourceType": "Observation",
            "status": "final",
            "code": {"text": family},
            "valueQuantity": {"value": weight},
        },
    ]
    for resource in resources:
        assert parse_xml(render_xml(resource, model), model) == resource


@settings(max_examples=100, deadline=None)
@given(number=st.integers(min_value=-(2**63), max_value=2**63 - 1))
def test_any_integer_round_trips(model: ElementModel, number: int) -> None:
    resource = {"resourceType": "Patient", "multipleBirthInteger": number}
    assert parse_xml(render_xml(resource, model), model) == resource


# -- errors: render_xml writes what the server holds, so it fails with CW-1000 ---------------------

UNWRITABLE: list[tuple[str, Any, str]] = [
    ("not an object", ["Patient"], "must be a JSON object"),
    ("no resourceType", {"id": "x"}, "unknown resourceType None"),
    ("unknown resourceType", {"resourceType": "Foo"}, "unknown resourceType 'Foo'"),
    ("abstract resourceType", {"resourceType": "DomainResource"}, "unknown resourceType"),
    ("unknown key", {"resourceType": "Patient", "foo": 1}, "unknown element(s) ['foo']"),
    ("unknown nested key", {"resourceType": "Patient", "name": [{"foo": 1}]}, "Patient.name"),
    ("wrong JSON type for boolean", {"resourceType": "Patient", "active": "true"}, "is not a JSON boolean"),
    (
        "wrong JSON type for integer",
        {"resourceType": "Patient", "multipleBirthInteger": 1.0},
        "not a JSON integer",
    ),
    ("bool is no integer", {"resourceType": "Patient", "multipleBirthInteger": True}, "not a JSON integer"),
    ("number for a string", {"resourceType": "Patient", "gender": 1}, "not a JSON code"),
    ("array for max 1", {"resourceType": "Patient", "gender": ["male"]}, "max is 1"),
    ("value for an array", {"resourceType": "Patient", "name": {"family": "F"}}, "must hold an array"),
    ("string for a complex", {"resourceType": "Patient", "maritalStatus": "M"}, "expected a JSON object"),
    ("_key beside a complex", {"resourceType": "Patient", "_maritalStatus": {"id": "x"}}, "not a primitive"),
    (
        "two choice types",
        {"resourceType": "Patient", "deceasedBoolean": True, "deceasedDateTime": "2020"},
        "several types",
    ),
    (
        "misaligned arrays",
        {"resourceType": "Patient", "name": [{"given": ["a", "b"], "_given": [None]}]},
        "differ in length",
    ),
    (
        "null in both arrays",
        {"resourceType": "Patient", "name": [{"given": [None], "_given": [None]}]},
        "null in both",
    ),
    (
        "bad _key content",
        {"resourceType": "Patient", "_gender": {"value": "x"}},
        "may hold only id and extension",
    ),
    ("extension not a list", {"resourceType": "Patient", "_gender": {"extension": {}}}, "must be an array"),
    ("empty _key", {"resourceType": "Patient", "_gender": {}}, "needs a value, an id or an extension"),
    ("empty extension list", {"resourceType": "Patient", "_gender": {"extension": []}}, "needs a value"),
    ("control character", {"resourceType": "Patient", "gender": "a\x01"}, "cannot hold the character"),
    ("lone surrogate", {"resourceType": "Patient", "gender": "a\ud800"}, "cannot hold the character"),
    ("non-string id", {"resourceType": "Patient", "name": [{"id": 5}]}, "is not a string"),
    (
        "malformed narrative",
        {"resourceType": "Patient", "text": {"status": "generated", "div": "<div"}},
        "malformed XML",
    ),
    (
        "narrative not a div",
        {"resourceType": "Patient", "text": {"status": "generated", "div": f"<p {XHTML}/>"}},
        "XHTML <div>",
    ),
    (
        "narrative not a string",
        {"resourceType": "Patient", "text": {"status": "generated", "div": 1}},
        "must be a string",
    ),
    (
        "contained not a resource",
        {"resourceType": "Patient", "contained": [{"id": "x"}]},
        "unknown resourceType",
    ),
    (
        "NaN decimal",
        {"resourceType": "Observation", "valueQuantity": {"value": float("nan")}},
        "not a JSON decimal",
    ),
]


@pytest.mark.parametrize(("resource", "message"), [c[1:] for c in UNWRITABLE], ids=[c[0] for c in UNWRITABLE])
def test_unwritable(model: ElementModel, resource: Any, message: str) -> None:
    with pytest.raises(CareweaveError) as caught:
        render_xml(resource, model)
    assert caught.value.code == "CW-1000"
    assert message in str(caught.value)


def test_deep_nesting_is_refused(model: ElementModel) -> None:
    extension: dict[str, Any] = {"url": "u", "valueString": "x"}
    for _ in range(200):
        extension = {"url": "u", "extension": [extension]}
    with pytest.raises(CareweaveError, match="nest deeper"):
        render_xml({"resourceType": "Patient", "extension": [extension]}, model)
