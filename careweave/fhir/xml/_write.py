"""FHIR JSON -> FHIR XML, in the element order of the StructureDefinitions.

Rules:
1. Elements are written in the order the definitions list them (XML requires it), whatever the
   order of the JSON keys; repeating elements keep their array order. Attributes (``id`` on
   elements, ``url`` on Extensions, ``value`` on primitives) follow ``_read.ATTRIBUTES``.
2. Every key of the JSON is written or refused: a key the context does not define, a value of the
   wrong JSON type, a ``_key`` beside a non-primitive, misaligned primitive arrays or two types of
   one choice element are CW-1000. ``render_xml`` writes what the server holds, so a resource it
   cannot write is the server's fault, never the client's.
3. Attribute values escape ``& < > "`` and write tab, line feed and carriage return as character
   references, so they survive XML attribute normalisation; characters XML 1.0 cannot carry
   (controls, lone surrogates, U+FFFE/U+FFFF) are CW-1000.
4. The narrative string is parsed safely and written in its canonical form (``_xhtml``).
5. The output is UTF-8 with an XML declaration; ``pretty`` indents FHIR elements by two spaces per
   level (never inside the narrative, where whitespace is content).
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from careweave.errors import CareweaveError, error
from careweave.fhir.elements import Element, ElementModel, choice_key
from careweave.fhir.xml._read import FHIR_NS, attribute_names
from careweave.fhir.xml._tree import MAX_DEPTH
from careweave.fhir.xml._values import json_kind, write_primitive
from careweave.fhir.xml._xhtml import canonical_div, escape_attribute

__all__ = ["Writer"]

_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")
_EXTRA_KEYS = frozenset({"id", "extension"})


def _fault(path: str, message: str) -> CareweaveError:
    return error("CW-1000", f"cannot write {path} as XML: {message}")


def _keys(element: Element) -> Iterator[tuple[str, str]]:
    """The JSON keys an element may take, with the type each one means."""
    if element.choice:
        for t in element.types:
            yield choice_key(element.name, t.code), t.code
    else:
        yield element.name, element.types[0].code if element.types else ""


@dataclass(frozen=True, slots=True)
class Writer:
    """Writes FHIR JSON resources as FHIR XML (pure; may be shared)."""

    model: ElementModel
    pretty: bool = False

    def document(self, resource: Any) -> bytes:
        out = ['<?xml version="1.0" encoding="UTF-8"?>']
        self._resource(resource, out, 0, "", root=True)
        if self.pretty:
            out.append("\n")
        return "".join(out).encode("utf-8")

    def _pad(self, depth: int) -> str:
        return "\n" + "  " * depth if self.pretty else ""

    def _resource(self, resource: Any, out: list[str], depth: int, path: str, *, root: bool) -> None:
        if not isinstance(resource, Mapping):
            raise _fault(path or "the resource", "a resource must be a JSON object")
        rtype = resource.get("resourceType")
        if not isinstance(rtype, str) or rtype not in self.model.resource_types:
            raise _fault(path or "the resource", f"unknown resourceType {rtype!r}")
        pad = self._pad(depth) if path else ("\n" if self.pretty else "")
        xmlns = f' xmlns="{FHIR_NS}"' if root else ""
        out.append(f"{pad}<{rtype}{xmlns}>")
        self._members(resource, rtype, out, depth + 1, rtype, skip={"resourceType"})
        out.append(f"{self._pad(depth)}</{rtype}>")

    def _members(
        self,
        obj: Mapping[str, Any],
        context: str,
        out: list[str],
        depth: int,
        path: str,
        skip: set[str],
    ) -> None:
        if depth > MAX_DEPTH:
            raise _fault(path, f"elements nest deeper than {MAX_DEPTH} levels")
        attributes = attribute_names(self.model, context)
        used = skip | (attributes & obj.keys())
        for element in self.model.children(context).values():
            if element.name in attributes:
                continue
            present = [(k, t) for k, t in _keys(element) if k in obj or "_" + k in obj]
            if len(present) > 1:
                raise _fault(path, f"{element.name}[x] has several types: {[k for k, _ in present]}")
            for key, type_code in present:
                used.update((key, "_" + key))
                if "_" + key in obj and not self.model.is_primitive(type_code):
                    raise _fault(f"{path}._{key}", f"{key} is not a primitive")
                item = _Item(key, element, type_code, f"{path}.{key}")
                self._element(item, obj.get(key), obj.get("_" + key), out, depth)
        unknown = sorted(obj.keys() - used)
        if unknown:
            raise _fault(path, f"unknown element(s) {unknown}")

    def _element(self, item: _Item, value: Any, extra: Any, out: list[str], depth: int) -> None:
        if not item.element.is_array:
            if isinstance(value, list) or isinstance(extra, list):
                raise _fault(item.path, "max is 1 but the JSON holds an array")
            self._one(item, value, extra, out, depth)
            return
        values = [] if value is None else value
        extras = [] if extra is None else extra
        if not isinstance(values, list) or not isinstance(extras, list):
            raise _fault(item.path, "the element repeats, so the JSON must hold an array")
        if values and extras and len(values) != len(extras):
            raise _fault(item.path, f"{item.key} and _{item.key} differ in length")
        size = max(len(values), len(extras))
        values = values or [None] * size
        extras = extras or [None] * size
        for v, x in zip(values, extras, strict=True):
            self._one(item, v, x, out, depth)

    def _one(self, item: _Item, value: Any, extra: Any, out: list[str], depth: int) -> None:
        pad = self._pad(depth)
        if item.type_code == "xhtml":
            if not isinstance(value, str) or extra is not None:
                raise _fault(item.path, "the narrative must be a string")
            try:
                out.append(pad + canonical_div(value))
            except CareweaveError as e:
                raise _fault(item.path, e.diagnostics) from None
        elif self.model.is_primitive(item.type_code):
            self._primitive(item, value, extra, out, depth)
        elif self.model.is_resource(item.type_code):
            out.append(f"{pad}<{item.key}>")
            self._resource(value, out, depth + 1, item.path, root=False)
            out.append(f"{pad}</{item.key}>")
        else:
            context = self.model.child_context(item.element, item.type_code)
            self._complex(item.key, context, value, out, depth, item.path)

    def _complex(self, key: str, context: str, value: Any, out: list[str], depth: int, path: str) -> None:
        if not isinstance(value, Mapping):
            raise _fault(path, "expected a JSON object")
        attributes = attribute_names(self.model, context)
        attrs = "".join(
            self._attribute(name, value[name], path) for name in sorted(attributes & value.keys())
        )
        inner: list[str] = []
        self._members(value, context, inner, depth + 1, path, skip=set())
        pad = self._pad(depth)
        if inner:
            out.extend([f"{pad}<{key}{attrs}>", *inner, f"{pad}</{key}>"])
        else:
            out.append(f"{pad}<{key}{attrs}/>")

    def _primitive(self, item: _Item, value: Any, extra: Any, out: list[str], depth: int) -> None:
        if value is None and extra is None:
            raise _fault(item.path, "null in both the value and the _ array")
        attrs = ""
        extensions: Any = None
        if extra is not None:
            if not isinstance(extra, Mapping) or not extra.keys() <= _EXTRA_KEYS:
                raise _fault(item.path, f"_{item.key} may hold only id and extension")
            if "id" in extra:
                attrs += self._attribute("id", extra["id"], item.path)
            extensions = extra.get("extension")
        if value is not None:
            text = write_primitive(value, json_kind(self.model, item.type_code))
            if text is None:
                raise _fault(item.path, f"{value!r} is not a JSON {item.type_code}")
            attrs += self._attribute("value", text, item.path)
        if extensions is not None and not isinstance(extensions, list):
            raise _fault(item.path, "the extension of a primitive must be an array")
        if not attrs and not extensions:
            raise _fault(item.path, "a primitive needs a value, an id or an extension")
        pad = self._pad(depth)
        if not extensions:
            out.append(f"{pad}<{item.key}{attrs}/>")
            return
        out.append(f"{pad}<{item.key}{attrs}>")
        for extension in extensions:
            self._complex("extension", "Extension", extension, out, depth + 1, item.path)
        out.append(f"{pad}</{item.key}>")

    def _attribute(self, name: str, value: Any, path: str) -> str:
        if not isinstance(value, str):
            raise _fault(f"{path}.{name}", f"{value!r} is not a string")
        bad = _NOT_XML.search(value)
        if bad is not None:
            raise _fault(f"{path}.{name}", f"XML cannot hold the character {bad.group()!r}")
        return f' {name}="{escape_attribute(value)}"'


@dataclass(frozen=True, slots=True)
class _Item:
    key: str
    element: Element
    type_code: str
    path: str
