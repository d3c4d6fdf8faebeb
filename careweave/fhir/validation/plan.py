"""Compiled validation plans: every context's JSON keys, each with what to check, built once.

Rules:
1. A :class:`ContextPlan` exists for every context reachable from a concrete resource type or a
   data type (rule 1 of :mod:`careweave.fhir.elements`), plus ``Element`` for the ``_x`` objects
   of primitives. Plans are looked up by context name; slots hold everything else precomputed.
2. A :class:`Slot` is one JSON key: a choice element has one slot per allowed type
   (``valueQuantity``...). It carries the kind (primitive, complex, resource), the array-ness, the
   primitive check, the child context, the required binding (expanded), the reference targets and
   the invariants to evaluate on each value (the element's own plus its type's).
3. Only ``required`` bindings are compiled; a required binding whose value set is unknown is
   recorded in :attr:`Plans.unchecked_bindings` and not checked.
5. One documented spec exception: ``CapabilityStatement.format`` is bound to MIME types, but its
   definition also allows the shorthands ``xml``, ``json`` and ``ttl`` (:data:`BINDING_ALSO`).
6. Building a plan never reads the model by string at validation time: the walker uses only
   :class:`Plans`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from careweave.fhir.elements import Element, ElementModel, TypeRef
from careweave.fhir.validation.contexts import model_contexts
from careweave.fhir.validation.expansion import Expansion
from careweave.fhir.validation.invariants import Invariant, InvariantTable, SkippedInvariant
from careweave.fhir.validation.primitives import PrimitiveCheck, build_primitive_checks, known_valid
from careweave.fhir.validation.terminology import Terminology

__all__ = ["COMPLEX", "PRIMITIVE", "RESOURCE", "BindingRule", "ContextPlan", "Plans", "Slot", "build_plans"]

PRIMITIVE, COMPLEX, RESOURCE = 0, 1, 2
_LOCAL_URI_TYPES = frozenset({"canonical", "uri", "url"})  # a "#..." value is a local reference

BINDING_ALSO: Mapping[str, frozenset[str]] = {
    "CapabilityStatement.format": frozenset({"xml", "json", "ttl"}),
}


@dataclass(frozen=True, slots=True)
class BindingRule:
    """A required binding, with the value set's expansion."""

    value_set: str
    expansion: Expansion
    also: frozenset[str] = frozenset()  # codes the spec allows beyond the value set (rule 5)


@dataclass(frozen=True, slots=True)
class Slot:
    key: str  # the JSON key (``valueQuantity``)
    name: str  # the element name (``value``)
    segment: str  # the FHIRPath step (``value.ofType(Quantity)``)
    definition: str  # the element path in the definitions (``Observation.value[x]``)
    type_code: str
    kind: int
    is_array: bool
    max: int | None
    choice: bool
    context: str  # where a complex value's children are declared
    check: PrimitiveCheck | None
    binding: BindingRule | None
    targets: frozenset[str]  # allowed Reference target types; empty means any
    invariants: tuple[Invariant, ...]
    # a primitive whose only check is its own (no binding, no invariants, not xhtml): a valid value
    # needs nothing else (but a local "#" reference in a uri type, which is noted)
    plain: bool = False
    # a plain slot but of a uri type: the strings its check has found valid (the check's own set,
    # primitives.known_valid); a value in it needs nothing at all
    known_valid: set[str] | None = None


@dataclass(frozen=True, slots=True)
class Requirement:
    """An element with min >= 1: the keys that can carry it (``_x`` included for primitives)."""

    name: str
    definition: str
    minimum: int
    keys: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class ContextPlan:
    context: str
    slots: Mapping[str, Slot]
    required: tuple[Requirement, ...]
    is_resource: bool = False
    invariants: tuple[Invariant, ...] = ()  # a resource type's own (root) invariants
    domain_resource: bool = False


@dataclass(frozen=True)
class Plans:
    contexts: Mapping[str, ContextPlan]
    resources: Mapping[str, ContextPlan]  # concrete resource types by name
    resource_types: frozenset[str]
    skipped_invariants: tuple[SkippedInvariant, ...] = ()
    unchecked_bindings: tuple[tuple[str, str], ...] = ()  # (element path, value set url)
    # valid relative references seen (``Patient/1`` -> ``Patient``): references.py, rule 4
    relative_references: dict[str, str] = field(default_factory=dict, compare=False)


@dataclass
class _Builder:
    model: ElementModel
    terminology: Terminology
    table: InvariantTable
    check_bindings: bool
    checks: Mapping[str, PrimitiveCheck] = field(default_factory=dict)
    unchecked: list[tuple[str, str]] = field(default_factory=list)
    resource_types: frozenset[str] = frozenset()

    def context_plan(self, context: str) -> ContextPlan:
        slots: dict[str, Slot] = {}
        required: list[Requirement] = []
        for element in self.model.children(context).values():
            keys = self._slots(context, element, slots)
            if element.min > 0:
                keys += tuple("_" + k for k in keys if slots[k].kind == PRIMITIVE)
                required.append(Requirement(element.name, element.path, element.min, keys))
        typedef = self.model.types.get(context)
        is_resource = context in self.resource_types
        invariants = self.table.compile(typedef.constraints, context) if is_resource and typedef else ()
        return ContextPlan(
            context=context,
            slots=slots,
            required=tuple(required),
            is_resource=is_resource,
            invariants=invariants,
            domain_resource=is_resource and self.model.is_subtype(context, "DomainResource"),
        )

    def _slots(self, context: str, element: Element, slots: dict[str, Slot]) -> tuple[str, ...]:
        keys: list[str] = []
        # a contentReference element has no type: its values are backbone elements
        types = element.types or (TypeRef("BackboneElement"),)
        for type_ref in types:
            code = type_ref.code
            key = element.name + code[0].upper() + code[1:] if element.choice else element.name
            segment = f"{element.name}.ofType({code})" if element.choice else element.name
            slots[key] = self._slot(element, code, key, segment, type_ref.target_types)
            keys.append(key)
        return tuple(keys)

    def _slot(self, element: Element, code: str, key: str, segment: str, targets: tuple[str, ...]) -> Slot:
        model = self.model
        kind = (
            PRIMITIVE
            if model.is_primitive(code)
            else RESOURCE
            if code == "Resource" or model.is_resource(code)
            else COMPLEX
        )
        constraints = element.constraints
        if element.content is not None and element.content != element.path:
            referenced = model.element(element.content)
            constraints += referenced.constraints if referenced is not None else ()
        own = _unique(self.table.compile(constraints, element.path))
        typedef = model.types.get(code)
        of_type = self.table.compile(typedef.constraints, code) if typedef and kind != RESOURCE else ()
        seen = {inv.key for inv in own}
        allowed = frozenset(t for t in targets if t in self.resource_types)
        binding = self._binding(element)
        invariants = own + tuple(inv for inv in of_type if inv.key not in seen)
        check = self.checks.get(code) if kind == PRIMITIVE else None
        plain = kind == PRIMITIVE and binding is None and not invariants and code != "xhtml"
        return Slot(
            key=key,
            name=element.name,
            segment=segment,
            definition=element.path,
            type_code=code,
            kind=kind,
            is_array=element.is_array,
            max=element.max,
            choice=element.choice,
            context=model.child_context(element, code) if kind == COMPLEX else "",
            check=check,
            binding=binding,
            targets=frozenset() if "Resource" in targets else allowed,
            invariants=invariants,
            plain=plain,
            known_valid=known_valid(check) if plain and code not in _LOCAL_URI_TYPES else None,
        )

    def _binding(self, element: Element) -> BindingRule | None:
        binding = element.binding
        if not self.check_bindings or binding is None or binding.strength != "required":
            return None
        if binding.value_set is None:
            return None
        expansion = self.terminology.expansion(binding.value_set)
        if expansion is None:
            self.unchecked.append((element.path, binding.value_set))
            return None
        return BindingRule(binding.value_set, expansion, BINDING_ALSO.get(element.path, frozenset()))


def _unique(invariants: tuple[Invariant, ...]) -> tuple[Invariant, ...]:
    found: dict[str, Invariant] = {}
    for invariant in invariants:
        found.setdefault(invariant.key, invariant)
    return tuple(found.values())


def build_plans(
    model: ElementModel,
    terminology: Terminology,
    table: InvariantTable,
    *,
    check_bindings: bool = True,
) -> Plans:
    """Compile every context of ``model`` (see the module rules)."""
    builder = _Builder(model, terminology, table, check_bindings)
    builder.checks = build_primitive_checks(model)
    builder.resource_types = model.resource_types
    contexts = {context: builder.context_plan(context) for context in model_contexts(model)}
    contexts.setdefault("Element", builder.context_plan("Element"))
    resources = {name: contexts[name] for name in builder.resource_types if name in contexts}
    return Plans(
        contexts=contexts,
        resources=resources,
        resource_types=builder.resource_types,
        skipped_invariants=tuple(table.skipped),
        unchecked_bindings=tuple(sorted(set(builder.unchecked))),
    )
