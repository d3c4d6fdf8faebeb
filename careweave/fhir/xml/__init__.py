"""FHIR R4 XML <-> FHIR JSON (https://hl7.org/fhir/R4/xml.html and json.html).

Rules:
1. Both directions are driven by the :class:`~careweave.fhir.elements.ElementModel`: element
   names, cardinality (arrays where max > 1), types, choice elements and backbone contexts come
   from the StructureDefinitions, never from a hand-written list.
2. :func:`parse_xml` raises only :class:`~careweave.errors.CareweaveError` ``CW-1015``, with the
   line, for anything that is not a FHIR R4 resource in XML: malformed XML, a DOCTYPE (refused
   outright, so no XXE and no entity expansion), an unknown element or attribute, a wrong
   namespace, a boolean or number that does not fit its type.
3. :func:`render_xml` writes elements in definition order (XML requires it); a resource it cannot
   write raises ``CW-1000`` (it writes what the server holds).
4. Decimals stay exact through :func:`parse_xml`: ``1.50`` becomes ``orjson.Fragment(b"1.50")`` so
   orjson writes ``1.50`` again (see ``_values``); ``exact_decimals=False`` gives floats instead.
5. The narrative ``div`` is a string in one canonical XHTML form (see :func:`canonical_div`):
   JSON -> XML -> JSON gives back every resource unchanged except that its narratives take the
   canonical form, which holds the same XML information.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from careweave.fhir.elements import ElementModel
from careweave.fhir.xml._read import ATTRIBUTES, FHIR_NS, Reader
from careweave.fhir.xml._tree import MAX_DEPTH, parse_tree
from careweave.fhir.xml._write import Writer
from careweave.fhir.xml._xhtml import XHTML_NS, canonical_div

__all__ = [
    "ATTRIBUTES",
    "FHIR_NS",
    "MAX_DEPTH",
    "XHTML_NS",
    "canonical_div",
    "parse_xml",
    "render_xml",
]


def parse_xml(data: bytes, model: ElementModel, *, exact_decimals: bool = True) -> dict[str, Any]:
    """The FHIR JSON form of one resource in FHIR XML; raises only CW-1015."""
    return Reader(model, exact_decimals).resource(parse_tree(data))


def render_xml(resource: Mapping[str, Any], model: ElementModel, *, pretty: bool = False) -> bytes:
    """One FHIR JSON resource as FHIR XML (UTF-8 bytes); raises CW-1000 when it cannot."""
    return Writer(model, pretty).document(resource)
