"""FHIR XML -> FHIR JSON, driven by the element model (xml.html and json.html of R4).

Rules:
1. The root element is a concrete resource type in the FHIR namespace; it becomes
   ``"resourceType"``. Children are looked up with ``ElementModel.resolve_key`` in the context of
   their parent, so choice elements (``valueQuantity``) and backbone elements come from the
   definitions; an element the context does not define is CW-1015.
2. An element whose max is above 1 becomes a JSON array, in document order; another occurrence of
   a max-1 element is CW-1015. Order between different elements is not checked (a lenient reader).
3. ``id`` is an XML attribute on every element but a resource (where it is an element), and
   ``url`` on an Extension; see :data:`ATTRIBUTES`. Any other un-namespaced attribute is CW-1015;
   attributes in other namespaces (``xsi:schemaLocation``) are ignored.
4. A primitive is ``<x value=".." id="..">`` with ``extension`` children: the value goes under
   ``x`` and the id and extensions under ``_x``. In arrays the two lists align, ``null`` where an
   item has no value or no id/extension; a list that would hold only ``null`` is left out.
5. An element typed ``Resource`` (``contained``, ``Bundle.entry.resource``,
   ``Parameters.parameter.resource``) holds exactly one child element named by the resource type.
6. The ``xhtml`` narrative becomes its canonical string (see ``_xhtml``).
7. Non-whitespace text inside a FHIR element is CW-1015; comments were dropped by the parser.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from careweave.fhir.elements import Element, ElementModel
from careweave.fhir.xml._tree import Node, fail
from careweave.fhir.xml._values import json_kind, read_primitive
from careweave.fhir.xml._xhtml import XHTML_NS, serialise_div

__all__ = ["ATTRIBUTES", "FHIR_NS", "Reader"]

FHIR_NS = "http://hl7.org/fhir"

# The elements XML writes as attributes (representation xmlAttr in the definitions; a test keeps
# this in step): context ("*" for any non-resource context) -> element names.
ATTRIBUTES: dict[str, frozenset[str]] = {"*": frozenset({"id"}), "Extension": frozenset({"url"})}
_PRIMITIVE_ATTRIBUTES = frozenset({"id", "value"})


def attribute_names(model: ElementModel, context: str) -> frozenset[str]:
    """The elements of ``context`` that XML writes as attributes."""
    if model.is_resource(context):
        return frozenset()
    return ATTRIBUTES["*"] | ATTRIBUTES.get(context, frozenset())


@dataclass(frozen=True, slots=True)
class _Occurrences:
    """The values of one JSON key gathered from the XML, with the ``_key`` parts alongside."""

    element: Element
    values: list[Any]
    extras: list[dict[str, Any] | None]


@dataclass(frozen=True, slots=True)
class Reader:
    """Turns a parsed XML tree into FHIR JSON; one per :func:`parse_xml` call or shared (pure)."""

    model: ElementModel
    exact_decimals: bool = True

    def resource(self, node: Node) -> dict[str, Any]:
        """A resource element (the document root, or inside ``contained``) as FHIR JSON."""
        if node.ns != FHIR_NS:
            where = f"namespace {node.ns!r}" if node.ns else "no namespace"
            raise fail(node.line, f"<{node.name}> is in {where}, not {FHIR_NS!r}")
        if node.name not in self.model.resource_types:
            raise fail(node.line, f"<{node.name}> is not a FHIR R4 resource type")
        self._check_attributes(node, frozenset(), node.name)
        out: dict[str, Any] = {"resourceType": node.name}
        out.update(self._children(node, node.name, node.name))
        return out

    def _children(self, node: Node, context: str, path: str) -> dict[str, Any]:
        gathered: dict[str, _Occurrences] = {}
        attributes = attribute_names(self.model, context)
        for child in node.children:
            if isinstance(child, str):
                if child.strip():
                    raise fail(node.line, f"{path} holds text {child.strip()[:40]!r}")
                continue
            hit = self.model.resolve_key(context, child.name)
            if hit is None or child.name in attributes:
                raise fail(child.line, f"unknown element <{child.name}> in {path}")
            element, type_code = hit
            _check_namespace(child, type_code)
            seen = gathered.get(child.name)
            if seen is None:
                _check_choice(gathered, element, child, path)
                seen = gathered[child.name] = _Occurrences(element, [], [])
            elif not element.is_array:
                raise fail(child.line, f"{path}.{child.name} occurs more than once (max 1)")
            value, extra = self._value(child, element, type_code, f"{path}.{child.name}")
            seen.values.append(value)
            seen.extras.append(extra)
        return _assemble(gathered)

    def _value(
        self, node: Node, element: Element, type_code: str, path: str
    ) -> tuple[Any, dict[str, Any] | None]:
        if type_code == "xhtml":
            return serialise_div(node), None
        if self.model.is_primitive(type_code):
            return self._primitive(node, type_code, path)
        if self.model.is_resource(type_code):
            return self._contained(node, path), None
        return self._complex(node, self.model.child_context(element, type_code), path), None

    def _complex(self, node: Node, context: str, path: str) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for name in self._check_attributes(node, attribute_names(self.model, context), path):
            out[name] = node.attr(name)
        out.update(self._children(node, context, path))
        return out

    def _primitive(self, node: Node, type_code: str, path: str) -> tuple[Any, dict[str, Any] | None]:
        self._check_attributes(node, _PRIMITIVE_ATTRIBUTES, path)
        extra: dict[str, Any] = {}
        element_id = node.attr("id")
        if element_id is not None:
            extra["id"] = element_id
        extensions = [
            self._complex(child, "Extension", f"{path}.extension") for child in _only_extensions(node, path)
        ]
        if extensions:
            extra["extension"] = extensions
        text = node.attr("value")
        if text is None:
            if not extra:
                raise fail(node.line, f"{path} has no value, id or extension")
            return None, extra
        kind = json_kind(self.model, type_code)
        try:
            value = read_primitive(text, kind, self.model, exact=self.exact_decimals)
        except ValueError as e:
            raise fail(node.line, f"{path}: {e}") from None
        return value, extra or None

    def _contained(self, node: Node, path: str) -> dict[str, Any]:
        self._check_attributes(node, frozenset(), path)
        inner = list(node.elements())
        text = "".join(c for c in node.children if isinstance(c, str)).strip()
        if len(inner) != 1 or text:
            raise fail(node.line, f"{path} must hold exactly one resource element")
        return self.resource(inner[0])

    def _check_attributes(self, node: Node, allowed: frozenset[str], path: str) -> list[str]:
        """The allowed attributes present, in document order; others are CW-1015."""
        present = []
        for ns, name, _ in node.attrs:
            if ns:
                continue
            if name not in allowed:
                raise fail(node.line, f"{path}: attribute {name!r} is not allowed here")
            present.append(name)
        return present


def _check_namespace(node: Node, type_code: str) -> None:
    expected = XHTML_NS if type_code == "xhtml" else FHIR_NS
    if node.ns != expected:
        where = f"namespace {node.ns!r}" if node.ns else "no namespace"
        raise fail(node.line, f"<{node.name}> is in {where}, not {expected!r}")


def _check_choice(gathered: dict[str, _Occurrences], element: Element, node: Node, path: str) -> None:
    """A choice element takes one type only: ``valueCode`` and ``valueString`` together fail."""
    if not element.choice:
        return
    for key, seen in gathered.items():
        if seen.element.path == element.path:
            raise fail(node.line, f"{path}: <{key}> and <{node.name}> both give {element.name}[x]")


def _only_extensions(node: Node, path: str) -> list[Node]:
    children = []
    for child in node.children:
        if isinstance(child, str):
            if child.strip():
                raise fail(node.line, f"{path} holds text {child.strip()[:40]!r}")
            continue
        if child.name != "extension" or child.ns != FHIR_NS:
            raise fail(child.line, f"unknown element <{child.name}> in primitive {path}")
        children.append(child)
    return children


def _assemble(gathered: dict[str, _Occurrences]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, seen in gathered.items():
        if seen.element.is_array:
            if any(v is not None for v in seen.values):
                out[key] = seen.values
            if any(x is not None for x in seen.extras):
                out["_" + key] = seen.extras
        else:
            if seen.values[0] is not None:
                out[key] = seen.values[0]
            if seen.extras[0] is not None:
                out["_" + key] = seen.extras[0]
    return out
