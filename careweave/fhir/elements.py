"""The R4 element model: every type's and backbone element's children, as FHIR JSON spells them.

Built once from the packaged StructureDefinitions (``profiles-types`` and ``profiles-resources``)
and passed explicitly to whatever needs it (validator, FHIRPath, search indexing, ``_elements``).

Rules:
1. A *context* names where children are declared: a type name (``"HumanName"``, ``"Patient"``) or
   the path of a backbone element (``"Patient.contact"``). An element whose children are declared
   inline has ``content`` set to that path; a ``contentReference`` (``#Questionnaire.item``) points
   ``content`` at the referenced path. Otherwise its children are those of its type.
2. A choice element ``value[x]`` is named ``value`` with ``choice=True``; its JSON keys are
   ``value`` + the type code with the first letter upper-cased (``valueQuantity``, ``valueDateTime``).
3. ``Resource.id`` is typed ``id`` (the R4 snapshot writes it as System.String); other
   System.* typed elements take the FHIR type from the ``structuredefinition-fhir-type`` extension.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "Binding",
    "Constraint",
    "Element",
    "ElementModel",
    "TypeDef",
    "TypeRef",
    "choice_key",
]

_FHIR_TYPE_EXT = "http://hl7.org/fhir/StructureDefinition/structuredefinition-fhir-type"
_REGEX_EXT = "http://hl7.org/fhir/StructureDefinition/regex"
_SYSTEM_PREFIX = "http://hl7.org/fhirpath/System."
_SD_PREFIX = "http://hl7.org/fhir/StructureDefinition/"


@dataclass(frozen=True, slots=True)
class Constraint:
    """An invariant from the definitions (``ele-1``, ``pat-1``...), with its FHIRPath expression."""

    key: str
    severity: str  # "error" | "warning"
    human: str
    expression: str | None
    source: str | None


@dataclass(frozen=True, slots=True)
class Binding:
    strength: str  # required | extensible | preferred | example
    value_set: str | None  # canonical URL without a version


@dataclass(frozen=True, slots=True)
class TypeRef:
    """One allowed type of an element: its code, and for Reference/canonical the allowed targets."""

    code: str
    profiles: tuple[str, ...] = ()
    target_types: tuple[str, ...] = ()  # resource type names a Reference/canonical may point to


@dataclass(frozen=True, slots=True)
class Element:
    path: str
    name: str
    min: int
    max: int | None  # None means "*"
    types: tuple[TypeRef, ...]
    choice: bool
    content: str | None
    binding: Binding | None
    constraints: tuple[Constraint, ...]
    summary: bool
    modifier: bool

    @property
    def is_array(self) -> bool:
        return self.max is None or self.max > 1

    @property
    def type_codes(self) -> tuple[str, ...]:
        return tuple(t.code for t in self.types)

    def type_ref(self, code: str) -> TypeRef | None:
        for t in self.types:
            if t.code == code:
                return t
        return None


@dataclass(frozen=True, slots=True)
class TypeDef:
    name: str
    kind: str  # primitive-type | complex-type | resource | logical
    abstract: bool
    base: str | None  # base type name (e.g. "DomainResource", "Quantity"), None for Element/Resource
    derivation: str | None  # specialization | constraint
    regex: str | None = None  # primitives: the value regex from the definitions
    constraints: tuple[Constraint, ...] = ()
    url: str = ""


def choice_key(name: str, type_code: str) -> str:
    """The JSON key of one type of a choice element: ``choice_key("value", "dateTime")``."""
    return name + type_code[0].upper() + type_code[1:]


@dataclass
class ElementModel:
    """Children of every context, and the type definitions, from the R4 StructureDefinitions."""

    types: dict[str, TypeDef] = field(default_factory=dict)
    _children: dict[str, dict[str, Element]] = field(default_factory=dict)
    _json_keys: dict[str, dict[str, tuple[Element, str]]] = field(default_factory=dict)
    _elements: dict[str, Element] = field(default_factory=dict)
    _resource_types: frozenset[str] = frozenset()

    # -- construction -------------------------------------------------------------------------
    @classmethod
    def from_structure_definitions(cls, definitions: Iterable[Mapping[str, Any]]) -> ElementModel:
        model = cls()
        for sd in definitions:
            if sd.get("resourceType") != "StructureDefinition":
                continue
            if sd.get("derivation") == "constraint" and sd.get("kind") != "complex-type":
                continue  # profiles on resources are not base types
            if sd.get("fhirVersion", "4.0.1") != "4.0.1":
                continue  # the R4 bundle also ships R4B's SubscriptionStatus (fhirVersion 4.3.0)
            model._add_structure_definition(sd)
        model._resource_types = frozenset(
            t.name
            for t in model.types.values()
            if t.kind == "resource" and not t.abstract and t.derivation != "constraint"
        )
        return model

    def _add_structure_definition(self, sd: Mapping[str, Any]) -> None:
        name = sd["id"] if sd.get("derivation") == "constraint" else sd["type"]
        base_url = sd.get("baseDefinition")
        base = base_url.rsplit("/", 1)[-1] if base_url else None
        elements = sd.get("snapshot", {}).get("element", [])
        root = elements[0] if elements else {}
        regex = None
        for el in elements:
            if el["path"] == f"{sd['type']}.value":
                for t in el.get("type", ()):
                    for ext in t.get("extension", ()):
                        if ext.get("url") == _REGEX_EXT:
                            regex = ext.get("valueString")
        self.types[name] = TypeDef(
            name=name,
            kind=sd.get("kind", ""),
            abstract=bool(sd.get("abstract")),
            base=base,
            derivation=sd.get("derivation"),
            regex=regex,
            constraints=_constraints(root),
            url=sd.get("url", ""),
        )
        if sd.get("derivation") == "constraint":
            return  # SimpleQuantity / MoneyQuantity share Quantity's children
        if sd.get("kind") == "primitive-type":
            return  # a primitive's children (id, extension) are handled generically
        paths_with_children = {el["path"].rsplit(".", 1)[0] for el in elements if "." in el["path"]}
        for el in elements[1:]:
            self._add_element(el, paths_with_children, sd["type"])

    def _add_element(self, el: Mapping[str, Any], parents: set[str], root_type: str) -> None:
        path: str = el["path"]
        parent, raw_name = path.rsplit(".", 1)
        choice = raw_name.endswith("[x]")
        name = raw_name[:-3] if choice else raw_name
        content = None
        ref = el.get("contentReference")
        if ref:
            content = ref.lstrip("#")
        elif path in parents:
            content = path
        types = tuple(_type_ref(t, path, el) for t in el.get("type", ()))
        binding = None
        if "binding" in el:
            vs = el["binding"].get("valueSet")
            binding = Binding(el["binding"]["strength"], vs.split("|", 1)[0] if vs else None)
        max_raw = el.get("max", "*")
        element = Element(
            path=path,
            name=name,
            min=int(el.get("min", 0)),
            max=None if max_raw == "*" else int(max_raw),
            types=types,
            choice=choice,
            content=content,
            binding=binding,
            constraints=_constraints(el),
            summary=bool(el.get("isSummary")),
            modifier=bool(el.get("isModifier")),
        )
        self._children.setdefault(parent, {})[name] = element
        self._elements[path] = element
        keys = self._json_keys.setdefault(parent, {})
        if choice:
            for t in types:
                keys[choice_key(name, t.code)] = (element, t.code)
        else:
            keys[name] = (element, types[0].code if types else "")

    # -- queries ------------------------------------------------------------------------------
    @property
    def resource_types(self) -> frozenset[str]:
        """Concrete (instantiable) resource type names."""
        return self._resource_types

    def element(self, path: str) -> Element | None:
        return self._elements.get(path)

    def elements(self) -> Mapping[str, Element]:
        """Every element of every type and resource, by path."""
        return self._elements

    def children(self, context: str) -> Mapping[str, Element]:
        """Elements declared directly under a context, inherited ones included."""
        own = self._children.get(context)
        if own is not None:
            return own
        return self._children.get(self._inherited_context(context), {})

    def resolve_key(self, context: str, key: str) -> tuple[Element, str] | None:
        """The element and concrete type that a JSON key names inside a context, or None."""
        keys = self._json_keys.get(context)
        if keys is None:
            keys = self._json_keys.get(self._inherited_context(context), {})
        return keys.get(key)

    def json_keys(self, context: str) -> Mapping[str, tuple[Element, str]]:
        keys = self._json_keys.get(context)
        if keys is None:
            keys = self._json_keys.get(self._inherited_context(context), {})
        return keys

    def child_context(self, element: Element, type_code: str) -> str:
        """The context holding the children of a value of ``element`` with type ``type_code``."""
        if element.content is not None:
            return element.content
        return self.base_of_constraint(type_code)

    def base_of_constraint(self, type_code: str) -> str:
        """``SimpleQuantity`` -> ``Quantity``: a constrained type's children are its base's."""
        t = self.types.get(type_code)
        while t is not None and t.derivation == "constraint" and t.base:
            type_code = t.base
            t = self.types.get(type_code)
        return type_code

    def is_primitive(self, type_code: str) -> bool:
        t = self.types.get(type_code)
        return t is not None and t.kind == "primitive-type"

    def is_resource(self, type_code: str) -> bool:
        t = self.types.get(type_code)
        return t is not None and t.kind == "resource"

    def is_subtype(self, type_code: str, ancestor: str) -> bool:
        """True when ``type_code`` is ``ancestor`` or derives from it (``Age`` is a ``Quantity``)."""
        seen = type_code
        while seen:
            if seen == ancestor:
                return True
            t = self.types.get(seen)
            if t is None or t.base is None:
                return False
            seen = t.base
        return False

    def _inherited_context(self, context: str) -> str:
        # A context that is a type with no own children (e.g. "Age") borrows its base's.
        t = self.types.get(context)
        while t is not None and t.base and t.name not in self._children:
            t = self.types.get(t.base)
            if t is not None and t.name in self._children:
                return t.name
        return context


def _constraints(el: Mapping[str, Any]) -> tuple[Constraint, ...]:
    return tuple(
        Constraint(
            key=c["key"],
            severity=c.get("severity", "error"),
            human=c.get("human", ""),
            expression=c.get("expression"),
            source=c.get("source"),
        )
        for c in el.get("constraint", ())
    )


def _type_ref(t: Mapping[str, Any], path: str, el: Mapping[str, Any]) -> TypeRef:
    code: str = t["code"]
    if code.startswith(_SYSTEM_PREFIX):
        fhir_type = next(
            (e.get("valueUrl") for e in t.get("extension", ()) if e.get("url") == _FHIR_TYPE_EXT),
            None,
        )
        base_path = el.get("base", {}).get("path", "")
        code = "id" if base_path == "Resource.id" else fhir_type or code[len(_SYSTEM_PREFIX) :].lower()
    targets = tuple(p.rsplit("/", 1)[-1] for p in t.get("targetProfile", ()) if p.startswith(_SD_PREFIX))
    return TypeRef(code=code, profiles=tuple(t.get("profile", ())), target_types=targets)
