"""Profiles: StructureDefinitions with derivation=constraint, compiled from their differential.

Rules:
1. Only the differential is read (UK Core publishes differential-only profiles); each element's
   id (``Patient.identifier:nhsNumber.system``) places it in a tree of :class:`ProfileNode`
   under the base element model: children by element name, slices by slice name.
2. Per element: min, max, allowed type codes, Reference targets (profile URLs resolved to their
   resource type), ``fixed[x]``, ``pattern[x]``, a required binding (expanded through the
   Terminology, which a package extends with its ValueSets and CodeSystems), and constraints
   (invariants, through the FHIRPath engine when there is one).
3. Slicing: ``extension``/``modifierExtension`` slices are matched by url (the slice type's
   extension profile, a fixed ``url`` child, or for a nested slice of a complex extension its
   slice name); an extension slice is also checked against the extension's own definition,
   compiled as a profile on Extension. Other slicings use ``value``/``pattern`` discriminators
   (and ``exists``, ``type``); a discriminator of another kind leaves the slice unchecked.
4. Compiled once (:class:`ProfileLibrary`), then applied by :mod:`.conform` to any number of
   resources.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from careweave.fhir.elements import Constraint, ElementModel
from careweave.fhir.validation.invariants import Invariant, InvariantTable
from careweave.fhir.validation.plan import BindingRule
from careweave.fhir.validation.terminology import Terminology

__all__ = ["Profile", "ProfileLibrary", "ProfileNode", "Rule", "Slicing"]

EXTENSION_NAMES = frozenset({"extension", "modifierExtension"})


@dataclass(frozen=True, slots=True)
class Rule:
    """The constraints one differential element adds."""

    element_id: str
    min: int | None = None
    max: int | None = None  # None: not constrained; -1: "*"
    types: frozenset[str] | None = None
    targets: frozenset[str] | None = None
    fixed: Any = None
    pattern: Any = None
    binding: BindingRule | None = None
    invariants: tuple[Invariant, ...] = ()
    extension_url: str | None = None  # for extension slices: the url to match
    extension: ProfileNode | None = None  # the extension's own definition


@dataclass(frozen=True, slots=True)
class Slicing:
    discriminators: tuple[tuple[str, str], ...]  # (type, path)
    rules: str = "open"


@dataclass(slots=True)
class ProfileNode:
    """One element of a profile, with its children (by name) and slices (by slice name)."""

    rule: Rule
    children: dict[str, ProfileNode] = field(default_factory=dict)
    slices: dict[str, ProfileNode] = field(default_factory=dict)
    slicing: Slicing | None = None


@dataclass(frozen=True)
class Profile:
    url: str
    type: str
    root: ProfileNode


@dataclass
class ProfileLibrary:
    """Compiles profiles (and the extension definitions they use) from a package's resources."""

    model: ElementModel
    terminology: Terminology
    table: InvariantTable
    definitions: dict[str, Mapping[str, Any]] = field(default_factory=dict)
    _compiled: dict[str, Profile] = field(default_factory=dict)

    @classmethod
    def build(
        cls,
        model: ElementModel,
        terminology: Terminology,
        table: InvariantTable,
        resources: Iterable[Mapping[str, Any]],
    ) -> ProfileLibrary:
        resources = list(resources)
        library = cls(model, terminology.extended(resources), table)
        for resource in resources:
            if resource.get("resourceType") == "StructureDefinition" and resource.get("url"):
                library.definitions[resource["url"]] = resource
        return library

    def profile(self, url_or_sd: str | Mapping[str, Any]) -> Profile | None:
        """The compiled profile for a canonical URL (or a StructureDefinition), or None."""
        if isinstance(url_or_sd, str):
            sd = self.definitions.get(url_or_sd.split("|", 1)[0])
            if sd is None:
                return None
        else:
            sd = url_or_sd
        url = str(sd.get("url", ""))
        found = self._compiled.get(url)
        if found is None or not url:
            found = Profile(url, str(sd.get("type", "")), self._compile(sd, set()))
            if url:
                self._compiled[url] = found
        return found

    def _compile(self, sd: Mapping[str, Any], seen: set[str]) -> ProfileNode:
        root_type = str(sd.get("type", ""))
        root = ProfileNode(Rule(root_type))
        for element in sd.get("differential", {}).get("element", ()):
            element_id = str(element.get("id") or element.get("path", ""))
            steps = _steps(element_id)
            if len(steps) <= 1:
                root.rule = self._rule(element, element_id, seen)
                continue
            node = root
            for name, slice_name in steps[1:]:
                node = _child(node, name, slice_name, element_id)
            node.rule = self._rule(element, element_id, seen)
            if "slicing" in element:
                node.slicing = _slicing(element["slicing"])
        return root

    def _rule(self, el: Mapping[str, Any], element_id: str, seen: set[str]) -> Rule:
        max_raw = el.get("max")
        types = el.get("type")
        ext_url, ext_node = self._extension(types, seen)
        return Rule(
            element_id=element_id,
            min=el.get("min") if isinstance(el.get("min"), int) else None,
            max=None if max_raw is None else -1 if max_raw == "*" else int(max_raw),
            types=frozenset(t["code"] for t in types) if types else None,
            targets=self._targets(types),
            fixed=_prefixed(el, "fixed"),
            pattern=_prefixed(el, "pattern"),
            binding=self._binding(el.get("binding")),
            invariants=self.table.compile(_constraints(el), element_id),
            extension_url=ext_url,
            extension=ext_node,
        )

    def _extension(self, types: Any, seen: set[str]) -> tuple[str | None, ProfileNode | None]:
        if not types or types[0].get("code") != "Extension" or not types[0].get("profile"):
            return None, None
        url = str(types[0]["profile"][0]).split("|", 1)[0]
        sd = self.definitions.get(url)
        if sd is None or url in seen:
            return url, None
        return url, self._compile(sd, seen | {url})

    def _targets(self, types: Any) -> frozenset[str] | None:
        targets: set[str] = set()
        for t in types or ():
            for url in t.get("targetProfile", ()):
                sd = self.definitions.get(url)
                name = str(sd.get("type")) if sd else str(url).rsplit("/", 1)[-1]
                if name == "Resource":
                    return None
                targets.add(name)
        return frozenset(targets) if targets else None

    def _binding(self, binding: Any) -> BindingRule | None:
        if not isinstance(binding, dict) or binding.get("strength") != "required":
            return None
        url = binding.get("valueSet")
        expansion = self.terminology.expansion(url) if isinstance(url, str) else None
        return BindingRule(str(url), expansion) if expansion is not None else None


def _steps(element_id: str) -> list[tuple[str, str | None]]:
    steps: list[tuple[str, str | None]] = []
    for part in element_id.split("."):
        name, _, slice_name = part.partition(":")
        steps.append((name, slice_name or None))
    return steps


def _child(node: ProfileNode, name: str, slice_name: str | None, element_id: str) -> ProfileNode:
    child = node.children.get(name)
    if child is None:
        child = node.children[name] = ProfileNode(Rule(element_id))
    if slice_name is None:
        return child
    sliced = child.slices.get(slice_name)
    if sliced is None:
        sliced = child.slices[slice_name] = ProfileNode(Rule(element_id))
        if child.slicing is None and name in EXTENSION_NAMES:
            child.slicing = Slicing((("value", "url"),))
    return sliced


def _slicing(slicing: Mapping[str, Any]) -> Slicing:
    found = tuple((str(d.get("type")), str(d.get("path"))) for d in slicing.get("discriminator", ()))
    return Slicing(found, str(slicing.get("rules", "open")))


def _prefixed(el: Mapping[str, Any], prefix: str) -> Any:
    for key, value in el.items():
        if key.startswith(prefix) and key[len(prefix) : len(prefix) + 1].isupper():
            return value
    return None


def _constraints(el: Mapping[str, Any]) -> list[Constraint]:
    return [
        Constraint(
            key=str(c.get("key")),
            severity=str(c.get("severity", "error")),
            human=str(c.get("human", "")),
            expression=c.get("expression"),
            source=c.get("source"),
        )
        for c in el.get("constraint", ())
        if isinstance(c, dict)
    ]
