"""parse_xml: FHIR XML -> FHIR JSON, rule by rule (https://hl7.org/fhir/R4/xml.html, json.html)."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from careweave.errors import CareweaveError
from careweave.fhir.elements import ElementModel
from careweave.fhir.xml import parse_xml

FHIR = 'xmlns="http://hl7.org/fhir"'
XHTML = 'xmlns="http://www.w3.org/1999/xhtml"'


def doc(body: str, root: str = "Patient") -> bytes:
    return f"<{root} {FHIR}>{body}</{root}>".encode()


EXT = '<extension url="http://e"><valueBoolean value="true"/></extension>'
EXT_JSON = {"url": "http://e", "valueBoolean": True}

# (case, root, XML body, expected JSON without resourceType)
READ_CASES: list[tuple[str, str, str, dict[str, Any]]] = [
    ("resource id is an element", "Patient", '<id value="p1"/>', {"id": "p1"}),
    ("empty resource", "Patient", "", {}),
    (
        "max > 1 becomes an array, max 1 a value",
        "Patient",
        '<name><family value="Smith"/><given value="A"/><given value="B"/></name>',
        {"name": [{"family": "Smith", "given": ["A", "B"]}]},
    ),
    ("boolean", "Patient", '<active value="false"/>', {"active": False}),
    ("integer in a choice", "Patient", '<multipleBirthInteger value="-2"/>', {"multipleBirthInteger": -2}),
    ("choice boolean", "Patient", '<deceasedBoolean value="true"/>', {"deceasedBoolean": True}),
    (
        "positiveInt is a JSON integer (its range is the validator's)",
        "Patient",
        '<photo><size value="0"/></photo>',
        {"photo": [{"size": 0}]},
    ),
    (
        "choice of a complex type",
        "Observation",
        '<status value="final"/><code><text value="w"/></code>'
        '<valueQuantity><value value="72.5"/><unit value="kg"/></valueQuantity>',
        {"status": "final", "code": {"text": "w"}, "valueQuantity": {"value": 72.5, "unit": "kg"}},
    ),
    (
        "a constrained type (Age) takes its base's children",
        "Condition",
        '<onsetAge><value value="42"/><code value="a"/></onsetAge>',
        {"onsetAge": {"value": 42, "code": "a"}},
    ),
    (
        "element id is an attribute",
        "Patient",
        '<name id="n1"><family value="S"/></name>',
        {"name": [{"id": "n1", "family": "S"}]},
    ),
    (
        "backbone element id is an attribute",
        "Patient",
        '<contact id="c1"><gender value="male"/></contact>',
        {"contact": [{"id": "c1", "gender": "male"}]},
    ),
    ("extension url is an attribute", "Patient", EXT, {"extension": [EXT_JSON]}),
    (
        "nested extensions",
        "Patient",
        f'<extension url="http://outer">{EXT}</extension>',
        {"extension": [{"url": "http://outer", "extension": [EXT_JSON]}]},
    ),
    (
        "primitive id and extension go to _name",
        "Patient",
        f'<birthDate id="b" value="1970-01-01">{EXT}</birthDate>',
        {"birthDate": "1970-01-01", "_birthDate": {"id": "b", "extension": [EXT_JSON]}},
    ),
    (
        "primitive with an extension and no value",
        "Patient",
        f"<birthDate>{EXT}</birthDate>",
        {"_birthDate": {"extension": [EXT_JSON]}},
    ),
    (
        "primitive arrays align with null",
        "Patient",
        f'<name><given value="A"/><given id="g2">{EXT}</given><given value="C"/></name>',
        {
            "name": [
                {"given": ["A", None, "C"], "_given": [None, {"id": "g2", "extension": [EXT_JSON]}, None]}
            ]
        },
    ),
    (
        "a value list of nulls only is left out",
        "Patient",
        '<name><given id="g1"/><given id="g2"/></name>',
        {"name": [{"_given": [{"id": "g1"}, {"id": "g2"}]}]},
    ),
    (
        "strings are kept exactly",
        "Patient",
        '<name><family value=" a&#10;b&#9;&amp;&lt;&quot; "/></name>',
        {"name": [{"family": ' a\nb\t&<" '}]},
    ),
    (
        "contained resources",
        "Patient",
        '<contained><Organization><id value="o1"/><name value="O"/></Organization></contained>'
        '<managingOrganization><reference value="#o1"/></managingOrganization>',
        {
            "contained": [{"resourceType": "Organization", "id": "o1", "name": "O"}],
            "managingOrganization": {"reference": "#o1"},
        },
    ),
    (
        "Bundle entries hold resources, links follow a contentReference",
        "Bundle",
        '<type value="collection"/><entry><link><relation value="self"/><url value="http://x"/></link>'
        '<resource><Patient><active value="true"/></Patient></resource></entry>',
        {
            "type": "collection",
            "entry": [
                {
                    "link": [{"relation": "self", "url": "http://x"}],
                    "resource": {"resourceType": "Patient", "active": True},
                }
            ],
        },
    ),
    (
        "Parameters hold resources and nested parts",
        "Parameters",
        '<parameter><name value="p"/><resource><Patient><id value="x"/></Patient></resource>'
        '<part><name value="q"/><valueInteger value="1"/></part></parameter>',
        {
            "parameter": [
                {
                    "name": "p",
                    "resource": {"resourceType": "Patient", "id": "x"},
                    "part": [{"name": "q", "valueInteger": 1}],
                }
            ]
        },
    ),
    (
        "contentReference (Questionnaire.item.item)",
        "Questionnaire",
        '<status value="draft"/><item><linkId value="1"/><type value="group"/>'
        '<item><linkId value="1.1"/><type value="string"/></item></item>',
        {
            "status": "draft",
            "item": [{"linkId": "1", "type": "group", "item": [{"linkId": "1.1", "type": "string"}]}],
        },
    ),
    (
        "narrative div is a string with its namespace",
        "Patient",
        f'<text><status value="generated"/><div {XHTML}><p class="x">a &amp; b &gt; c</p><br/></div></text>',
        {
            "text": {
                "status": "generated",
                "div": f'<div {XHTML}><p class="x">a &amp; b &gt; c</p><br/></div>',
            }
        },
    ),
    (
        "narrative with a prefix, xml:lang and char references becomes canonical",
        "Patient",
        '<text><status value="generated"/><h:div xmlns:h="http://www.w3.org/1999/xhtml">'
        "<h:p xml:lang='en' title='a&#10;b'>&#160;&quot;x&quot;&#13;</h:p><h:td></h:td></h:div></text>",
        {
            "text": {
                "status": "generated",
                "div": f'<div {XHTML}><p xml:lang="en" title="a&#10;b">'
                "\u00a0&quot;x&quot;&#13;</p><td/></div>",
            }
        },
    ),
    (
        "comments and processing instructions are dropped",
        "Patient",
        '<!-- c --><?pi x?><active value="true"><!-- inner --></active>',
        {"active": True},
    ),
    (
        "whitespace between elements is ignored",
        "Patient",
        '\n  <active value="true"/>\n  <gender value="male"/>\n',
        {"active": True, "gender": "male"},
    ),
]


@pytest.mark.parametrize(
    ("root", "body", "expected"), [c[1:] for c in READ_CASES], ids=[c[0] for c in READ_CASES]
)
def test_read(model: ElementModel, root: str, body: str, expected: dict[str, Any]) -> None:
    assert parse_xml(doc(body, root), model) == {"resourceType": root, **expected}


def test_keys_follow_document_order_with_underscore_siblings(model: ElementModel) -> None:
    got = parse_xml(
        doc('<gender value="male"/><birthDate id="b" value="2000"/><active value="true"/>'), model
    )
    assert list(got) == ["resourceType", "gender", "birthDate", "_birthDate", "active"]


def test_xsi_attributes_are_ignored(model: ElementModel) -> None:
    data = (
        b'<?xml version="1.0" encoding="UTF-8"?>'
        b'<Patient xmlns="http://hl7.org/fhir" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"'
        b' xsi:schemaLocation="http://hl7.org/fhir fhir-single.xsd"><active value="true"/></Patient>'
    )
    assert parse_xml(data, model) == {"resourceType": "Patient", "active": True}


def test_other_encodings(model: ElementModel) -> None:
    body = '<Patient xmlns="http://hl7.org/fhir"><name><family value="Brontë"/></name></Patient>'
    latin = ('<?xml version="1.0" encoding="ISO-8859-1"?>' + body).encode("latin-1")
    assert parse_xml(latin, model)["name"] == [{"family": "Brontë"}]
    assert parse_xml(body.encode("utf-16"), model)["name"] == [{"family": "Brontë"}]


# -- decimals ------------------------------------------------------------------------------------

# (XML text, Python type parse_xml gives); orjson must write the same text back in every case.
DECIMALS = [
    ("0.1", float),
    ("72.5", float),
    ("100.0", float),
    ("1e-7", float),
    ("10", int),
    ("-3", int),
    ("0", int),
    ("1.50", orjson.Fragment),
    ("0.10", orjson.Fragment),
    ("120.00", orjson.Fragment),
    ("1e3", orjson.Fragment),
    ("1E-2", orjson.Fragment),
    ("-0", orjson.Fragment),
    ("3.141592653589793238462643", orjson.Fragment),
    ("123456789012345678901234567890", orjson.Fragment),
]


def _quantity_value(model: ElementModel, text: str, *, exact: bool = True) -> Any:
    body = (
        '<status value="final"/><code><text value="x"/></code>'
        f'<valueQuantity><value value="{text}"/></valueQuantity>'
    )
    return parse_xml(doc(body, "Observation"), model, exact_decimals=exact)["valueQuantity"]["value"]


@pytest.mark.parametrize(("text", "kind"), DECIMALS)
def test_decimals_keep_their_digits(model: ElementModel, text: str, kind: type) -> None:
    value = _quantity_value(model, text)
    assert type(value) is kind
    assert orjson.dumps(value) == text.encode()
    assert orjson.dumps({"value": value}) == b'{"value":' + text.encode() + b"}"


@pytest.mark.parametrize(("text", "kind"), DECIMALS)
def test_inexact_decimals_read_as_orjson_reads_json(model: ElementModel, text: str, kind: type) -> None:
    value = _quantity_value(model, text, exact=False)
    expected = orjson.loads(text)
    assert value == expected
    assert type(value) is type(expected)


# -- errors --------------------------------------------------------------------------------------

DIV = f'<text><status value="generated"/><div {XHTML}>x</div></text>'
BAD_DOCUMENTS: list[tuple[str, bytes, str]] = [
    ("not XML", b'{"resourceType": "Patient"}', "malformed XML"),
    ("empty", b"", "malformed XML"),
    ("unclosed", b'<Patient xmlns="http://hl7.org/fhir"><active value="true"></Patient>', "malformed XML"),
    ("two roots", doc("") + doc(""), "malformed XML"),
    (
        "undefined entity",
        doc(f"<text><status value='generated'/><div {XHTML}>&nbsp;</div></text>"),
        "malformed XML",
    ),
    ("DOCTYPE", b'<!DOCTYPE Patient><Patient xmlns="http://hl7.org/fhir"/>', "DOCTYPE"),
    (
        "external entity (XXE)",
        b'<!DOCTYPE p [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
        b'<Patient xmlns="http://hl7.org/fhir"><id value="&x;"/></Patient>',
        "DOCTYPE",
    ),
    (
        "entity expansion (billion laughs)",
        b'<!DOCTYPE p [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">'
        b'<!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;">]>'
        b'<Patient xmlns="http://hl7.org/fhir"><id value="&c;"/></Patient>',
        "DOCTYPE",
    ),
    ("root in no namespace", b'<Patient><active value="true"/></Patient>', "no namespace"),
    ("root in another namespace", b'<Patient xmlns="http://hl7.org/fhir/r5"/>', "namespace"),
    ("unknown resource type", doc("", "Foo"), "not a FHIR R4 resource type"),
    ("abstract resource type", doc("", "DomainResource"), "not a FHIR R4 resource type"),
    ("data type as root", doc("", "HumanName"), "not a FHIR R4 resource type"),
    ("unknown element", doc('<foo value="x"/>'), "unknown element <foo> in Patient"),
    ("unknown nested element", doc("<name><foo value='x'/></name>"), "unknown element <foo> in Patient.name"),
    ("JSON key spelling of a choice", doc('<deceased value="true"/>'), "unknown element <deceased>"),
    ("child in another namespace", doc('<active xmlns="urn:x" value="true"/>'), "namespace 'urn:x'"),
    (
        "prefixed child in another namespace",
        doc('<x:active xmlns:x="urn:x" value="true"/>'),
        "namespace 'urn:x'",
    ),
    ("child in no namespace", doc('<active xmlns="" value="true"/>'), "<active> is in no namespace"),
    (
        "narrative div in the FHIR namespace",
        doc('<text><status value="generated"/><div>x</div></text>'),
        "not 'http://www.w3.org/1999/xhtml'",
    ),
    (
        "foreign element in the narrative",
        doc(
            f'<text><status value="generated"/><div {XHTML}><svg xmlns="http://www.w3.org/2000/svg"/></div></text>'
        ),
        "may hold only XHTML",
    ),
    (
        "foreign attribute in the narrative",
        doc(f'<text><status value="generated"/><div {XHTML} xmlns:x="urn:x" x:a="1">x</div></text>'),
        "not allowed in the narrative",
    ),
    ("unknown attribute on a primitive", doc('<active value="true" foo="1"/>'), "attribute 'foo'"),
    ("value on a complex element", doc('<name value="x"/>'), "attribute 'value'"),
    ("id attribute on a resource", b'<Patient xmlns="http://hl7.org/fhir" id="x"/>', "attribute 'id'"),
    (
        "id element on a data type",
        doc('<name><id value="x"/></name>'),
        "unknown element <id> in Patient.name",
    ),
    ("url element on an extension", doc('<extension><url value="x"/></extension>'), "unknown element <url>"),
    ("url attribute elsewhere", doc('<name url="x"/>'), "attribute 'url'"),
    ("text in a primitive", doc('<active value="true">yes</active>'), "holds text 'yes'"),
    ("text in a complex element", doc("<name>Smith</name>"), "Patient.name holds text 'Smith'"),
    ("text in a resource", doc("hello"), "Patient holds text 'hello'"),
    ("max-1 element twice", doc('<active value="true"/><active value="false"/>'), "occurs more than once"),
    (
        "two types of one choice",
        doc('<deceasedBoolean value="true"/><deceasedDateTime value="2020"/>'),
        "both give deceased[x]",
    ),
    ("empty primitive", doc("<active/>"), "has no value, id or extension"),
    (
        "non-extension child of a primitive",
        doc('<active value="true"><foo/></active>'),
        "unknown element <foo> in primitive",
    ),
    ("bad boolean", doc('<active value="yes"/>'), "'yes' is not a valid boolean"),
    ("boolean in capitals", doc('<active value="True"/>'), "not a valid boolean"),
    ("decimal integer", doc('<multipleBirthInteger value="1.5"/>'), "not a valid integer"),
    ("integer with a plus", doc('<multipleBirthInteger value="+1"/>'), "not a valid integer"),
    ("integer with a leading zero", doc('<multipleBirthInteger value="01"/>'), "not a valid integer"),
    ("integer with spaces", doc('<multipleBirthInteger value=" 1"/>'), "not a valid integer"),
    ("integer beyond 64 bits", doc('<multipleBirthInteger value="99999999999999999999"/>'), "64-bit"),
    ("integer of 5000 digits", doc(f'<multipleBirthInteger value="{"9" * 5000}"/>'), "64-bit"),
    (
        "decimal of 5000 digits",
        doc(
            f'<status value="final"/><valueQuantity><value value="{"9" * 5000}"/></valueQuantity>',
            "Observation",
        ),
        "out of range",
    ),
    (
        "decimal with a comma",
        doc('<status value="final"/><valueQuantity><value value="1,5"/></valueQuantity>', "Observation"),
        "not a valid decimal",
    ),
    (
        "NaN",
        doc('<status value="final"/><valueQuantity><value value="NaN"/></valueQuantity>', "Observation"),
        "not a valid decimal",
    ),
    (
        "infinite decimal",
        doc('<status value="final"/><valueQuantity><value value="1e999"/></valueQuantity>', "Observation"),
        "out of range",
    ),
    (
        "two contained resources in one",
        doc("<contained><Patient/><Patient/></contained>"),
        "exactly one resource",
    ),
    ("empty contained", doc("<contained/>"), "exactly one resource"),
    ("text in contained", doc("<contained>x<Patient/></contained>"), "exactly one resource"),
    ("data type in contained", doc("<contained><name/></contained>"), "not a FHIR R4 resource type"),
    ("nesting too deep", doc('<extension url="u">' * 150 + "</extension>" * 150), "nest deeper"),
]


@pytest.mark.parametrize(
    ("data", "message"), [c[1:] for c in BAD_DOCUMENTS], ids=[c[0] for c in BAD_DOCUMENTS]
)
def test_refused(model: ElementModel, data: bytes, message: str) -> None:
    with pytest.raises(CareweaveError) as caught:
        parse_xml(data, model)
    assert caught.value.code == "CW-1015"
    assert message in str(caught.value)


def test_errors_name_the_line(model: ElementModel) -> None:
    data = b'<Patient xmlns="http://hl7.org/fhir">\n  <active value="true"/>\n  <foo/>\n</Patient>'
    with pytest.raises(CareweaveError, match="line 3: unknown element <foo>"):
        parse_xml(data, model)


def test_unknown_declared_encoding_is_cw_1015(model) -> None:
    # found by the mutation fuzz test: expat raised LookupError for an unknown encoding name
    import pytest as _pytest

    from careweave.errors import CareweaveError
    from careweave.fhir.xml import parse_xml

    with _pytest.raises(CareweaveError) as caught:
        parse_xml(b'<?xml version="1.0" encoding="UTF-8value"?><Patient xmlns="http://hl7.org/fhir"/>',
                  model)
    assert caught.value.code == "CW-1015"
