"""parse_xml and render_xml over the spec's own data: every resource packaged in
careweave.fhir.definitions (https://hl7.org/fhir/R4/downloads.html) and the packaged UK Core, plus the
rules taken from the definitions (https://hl7.org/fhir/R4/xml.html#1.17.1)."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from careweave.errors import CareweaveError
from careweave.fhir import definitions, ukcore
from careweave.fhir.elements import ElementModel
from careweave.fhir.xml import ATTRIBUTES, FHIR_NS, canonical_div, parse_xml, render_xml


def _resources(name: str) -> list[dict[str, Any]]:
    if name == "compartmentdefinition-patient":
        return [definitions.load(name)]
    return definitions.resources_of(name)


def _canonical_narratives(value: Any) -> Any:
    """The resource as JSON -> XML -> JSON must give it: every narrative in canonical form."""
    if isinstance(value, dict):
        return {
            k: canonical_div(v) if k == "div" and isinstance(v, str) else _canonical_narratives(v)
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [_canonical_narratives(v) for v in value]
    return value


def _check_order(model: ElementModel, node: ET.Element, context: str, path: str) -> None:
    """Child elements come in the order the definitions list them, at every level."""
    order = list(model.children(context))
    last = -1
    for child in node:
        name = child.tag.rpartition("}")[2]
        hit = model.resolve_key(context, name)
        assert hit is not None, f"{path}: unknown <{name}>"
        element, type_code = hit
        index = order.index(element.name)
        assert index >= last, f"{path}: <{name}> comes after a later element"
        last = index
        if type_code == "xhtml" or model.is_primitive(type_code):
            continue
        if model.is_resource(type_code):
            inner = child[0]
            _check_order(model, inner, inner.tag.rpartition("}")[2], f"{path}.{name}")
        else:
            _check_order(model, child, model.child_context(element, type_code), f"{path}.{name}")


def _round_trip_failures(model: ElementModel, resources: list[dict[str, Any]]) -> list[str]:
    failures = []
    for resource in resources:
        label = f"{resource['resourceType']}/{resource.get('id')}"
        xml = render_xml(resource, model)
        if parse_xml(xml, model) != _canonical_narratives(resource):
            failures.append(label)
        root = ET.fromstring(xml)
        assert root.tag == f"{{{FHIR_NS}}}{resource['resourceType']}"
        _check_order(model, root, resource["resourceType"], label)
    return failures


@pytest.mark.parametrize("name", definitions.NAMES)
def test_every_packaged_definition_round_trips(model: ElementModel, name: str) -> None:
    resources = _resources(name)
    assert resources
    assert _round_trip_failures(model, resources) == []


@pytest.mark.parametrize("load", [ukcore.load_conformance, ukcore.load_examples])
def test_every_packaged_uk_core_resource_round_trips(model: ElementModel, load: Any) -> None:
    resources = load()
    assert resources
    assert _round_trip_failures(model, resources) == []


def _narratives(value: Any) -> list[str]:
    if isinstance(value, dict):
        found = [v for k, v in value.items() if k == "div" and isinstance(v, str)]
        return found + [d for k, v in value.items() if k != "div" for d in _narratives(v)]
    if isinstance(value, list):
        return [d for v in value for d in _narratives(v)]
    return []


def _infoset(element: ET.Element) -> tuple[Any, ...]:
    return (
        element.tag,
        sorted(element.attrib.items()),
        element.text or "",
        [(_infoset(c), c.tail or "") for c in element],
    )


def test_canonical_narratives_keep_the_xml_information() -> None:
    """Over every narrative of the spec: same elements, attributes and text; idempotent."""
    divs = [(name, d) for name in definitions.NAMES for r in _resources(name)
            for d in _narratives(r)]
    assert len(divs) > 1000
    unchanged = total = 0
    for name, div in divs:
        canonical = canonical_div(div)
        assert canonical.startswith('<div xmlns="http://www.w3.org/1999/xhtml"')
        assert canonical_div(canonical) == canonical
        assert _infoset(ET.fromstring(canonical)) == _infoset(ET.fromstring(div))
        if name not in ("v2-tables", "conceptmaps"):  # written with CRLF line ends throughout
            total += 1
            unchanged += canonical == div
    # Most of the spec's narratives are already canonical; the rest differ only in how they spell
    # the same XML (CRLF line ends, <td></td> for <td/>, line breaks inside attribute values).
    assert unchanged > total * 0.7


def test_attribute_table_matches_the_definitions() -> None:
    """ATTRIBUTES lists exactly the non-primitive elements the definitions mark xmlAttr."""
    marked = set()
    for name in ("profiles-types", "profiles-resources"):
        for sd in definitions.resources_of(name):
            for el in sd.get("snapshot", {}).get("element", ()):
                if "xmlAttr" in el.get("representation", ()) and not el["path"].endswith(".value"):
                    marked.add(el.get("base", {}).get("path", el["path"]))
    expected: dict[str, set[str]] = {}
    for path in marked:
        owner, element = path.split(".")
        expected.setdefault("*" if owner == "Element" else owner, set()).add(element)
    assert {k: set(v) for k, v in ATTRIBUTES.items()} == expected
    assert len(marked) == 2  # Element.id and Extension.url


SEED = (
    b'<?xml version="1.0" encoding="UTF-8"?>\n'
    b'<Patient xmlns="http://hl7.org/fhir">\n'
    b'  <id value="p1"/>\n'
    b'  <text><status value="generated"/>'
    b'<div xmlns="http://www.w3.org/1999/xhtml"><p>Jo &amp; Al</p></div></text>\n'
    b'  <contained><Organization><id value="o"/><name value="Org"/></Organization></contained>\n'
    b'  <extension url="http://e"><valueQuantity><value value="1.50"/></valueQuantity></extension>\n'
    b'  <active value="true"/>\n'
    b'  <name id="n"><family value="Smith"/><given value="Jo"/><given id="g"><extension url="u">'
    b'<valueCode value="x"/></extension></given></name>\n'
    b'  <birthDate value="1970-01-01"/>\n'
    b'  <multipleBirthInteger value="2"/>\n'
    b'  <managingOrganization><reference value="#o"/></managingOrganization>\n'
    b"</Patient>\n"
)
_PIECES = [b"<", b">", b"/", b'"', b"=", b"&", b";", b"value", b"id", b"<active/>", b"&#0;", b"\xff", b" "]


@settings(max_examples=400, deadline=None)
@given(data=st.data())
def test_mutated_documents_raise_only_cw_1015(model: ElementModel, data: st.DataObject) -> None:
    """Random cuts, copies and insertions into a valid document: a resource or CW-1015, nothing else."""
    doc = bytearray(SEED)
    for _ in range(data.draw(st.integers(1, 4))):
        i = data.draw(st.integers(0, len(doc)))
        j = data.draw(st.integers(i, min(len(doc), i + 40)))
        action = data.draw(st.sampled_from(["cut", "copy", "insert"]))
        if action == "cut":
            del doc[i:j]
        elif action == "copy":
            doc[i:i] = doc[i:j]
        else:
            doc[i:i] = data.draw(st.sampled_from(_PIECES))
    try:
        parse_xml(bytes(doc), model)
    except CareweaveError as e:
        assert e.code == "CW-1015"


def test_the_seed_document_parses(model: ElementModel) -> None:
    resource = parse_xml(SEED, model)
    assert resource["name"][0]["_given"] == [None, {"id": "g", "extension": [{"url": "u", "valueCode": "x"}]}]
    # orjson.Fragment has no equality: compare what orjson writes
    assert orjson.dumps(parse_xml(render_xml(resource, model), model)) == orjson.dumps(resource)
    assert b'"value":1.50' in orjson.dumps(resource)
