"""The structure walk: one pass over a resource's JSON, driven by the compiled plans.

Rules:
1. Every key of every object is looked up in its context's slots: unknown keys (including ``_x``
   keys with no primitive ``x``) are ``structure`` errors; ``resourceType`` only at a resource's
   root. Arrays exactly where max > 1, never empty, never null except aligned nulls in a primitive
   array whose ``_x`` sibling has an object at that index. Objects are never empty and never only
   an ``id`` (ele-1). At most one key per choice element. min/max cardinality per element.
2. A primitive is checked by its type's check; a ``code`` (or other primitive) with a required
   binding, a Coding or a CodeableConcept is checked against the value set; a Reference by
   :mod:`.references`; a narrative ``div`` by :mod:`.xhtml`; an Extension has ext-1.
3. Resources nested in ``contained``, ``Bundle.entry.resource``, ``Parameters.parameter.resource``
   (any element of type Resource) are validated as resources of their own ``resourceType``, with
   the location continuing from the parent's (``Bundle.entry[3].resource.subject``).
4. Invariants run only on values that are present, after the value's own structure is walked;
   one whose shortcut tells from the typed value that it holds is not evaluated (invariants.py).
5. Nothing here raises on user data: every JSON shape is type-tested before use, and content
   nested deeper than :data:`MAX_DEPTH` objects is reported (``too-costly``), not walked.
"""

from __future__ import annotations

from typing import Any

from careweave.fhir.validation import bindings, containment, references
from careweave.fhir.validation.invariants import Invariant, holds
from careweave.fhir.validation.plan import COMPLEX, PRIMITIVE, ContextPlan, Slot
from careweave.fhir.validation.run import Run, Scope
from careweave.fhir.validation.xhtml import check_xhtml

__all__ = ["validate_resource", "walk_object"]

_LOCAL_URI_TYPES = frozenset({"canonical", "uri", "url"})
MAX_DEPTH = 128  # objects; far beyond real FHIR, well within Python's recursion limit


def validate_resource(run: Run, resource: object, path: str | None, container: Scope | None = None) -> None:
    """Validate one resource (a root, a contained one when ``container`` is given, or an entry)."""
    if type(resource) is not dict:
        run.error("structure", path or "(root)", "must be a JSON object holding a resource")
        return
    resource_type = resource.get("resourceType")
    where = path or (resource_type if isinstance(resource_type, str) else "(root)")
    if not isinstance(resource_type, str):
        run.error("structure", where, "has no resourceType (a string naming the resource type)")
        return
    plan = run.plans.resources.get(resource_type)
    if plan is None:
        run.error("structure", where, f"has an unknown or abstract resourceType {resource_type!r}")
        return
    if container is None:
        scope = Scope(resource, containment.contained_ids(resource))
    else:
        scope = Scope(resource, container.contained_ids, root=container)
    if resource_type == "Bundle":
        outer = run.conditional_references
        run.conditional_references = resource.get("type") in ("transaction", "batch")
        walk_object(run, resource, plan, where, scope)
        run.conditional_references = outer
    else:
        walk_object(run, resource, plan, where, scope)
    if plan.domain_resource:
        containment.check_resource(run, resource, where, scope)
    if run.invariants and plan.invariants:
        evaluate(run, plan.invariants, resource, where, scope, resource_type)


def walk_object(run: Run, obj: dict[str, Any], plan: ContextPlan, path: str, scope: Scope) -> None:
    if run.depth >= MAX_DEPTH:
        run.error(
            "too-costly", path, f"nests more than {MAX_DEPTH} objects deep; its content was not checked"
        )
        return
    run.depth += 1
    try:
        _walk_keys(run, obj, plan, path, scope)
    finally:
        run.depth -= 1


def _walk_keys(run: Run, obj: dict[str, Any], plan: ContextPlan, path: str, scope: Scope) -> None:
    slots = plan.slots
    choices: dict[str, str] | None = None
    for key, value in obj.items():
        slot = slots.get(key)
        if slot is None:
            if key[:1] == "_":
                base = slots.get(key[1:])
                if base is not None and base.kind == PRIMITIVE:
                    if base.choice:
                        choices = _note_choice(run, choices, base, path)
                    _primitive_extension(run, obj, key, base, value, path, scope)
                    continue
            elif key == "resourceType" and plan.is_resource:
                continue
            run.error("structure", f"{path}.{key}", f"is not a known element of {plan.context}")
            continue
        if slot.choice:
            choices = _note_choice(run, choices, slot, path)
        if slot.is_array:
            _array(run, obj, slot, value, path, scope)
        elif type(value) is list:
            run.error(
                "structure",
                f"{path}.{slot.segment}",
                "must be a single value, not an array (max cardinality 1)",
            )
        elif value is None:
            run.error("structure", f"{path}.{slot.segment}", "must not be null")
        elif not (
            (slot.known_valid is not None and value.__class__ is str and value in slot.known_valid)
            or (slot.plain and _valid_plain(slot, value))
        ):
            _value(run, slot, value, f"{path}.{slot.segment}", scope)
    for requirement in plan.required:
        count = 0
        for key in requirement.keys:
            value = obj.get(key)
            if value is not None:
                count = max(count, len(value) if type(value) is list else 1)
        if count < requirement.minimum:
            run.error(
                "required",
                f"{path}.{requirement.name}",
                f"is required: {requirement.definition} has minimum cardinality "
                f"{requirement.minimum} but {count} present",
            )


def _note_choice(run: Run, choices: dict[str, str] | None, slot: Slot, path: str) -> dict[str, str]:
    if choices is None:
        choices = {}
    key = slot.key
    other = choices.get(slot.name)
    if other is None:
        choices[slot.name] = key
    elif other != key:
        run.error(
            "structure",
            f"{path}.{slot.name}",
            f"has more than one type: {other} and {key} (a choice element takes one)",
        )
    return choices


def _array(run: Run, obj: dict[str, Any], slot: Slot, value: object, path: str, scope: Scope) -> None:
    base = f"{path}.{slot.segment}"
    if type(value) is not list:
        run.error("structure", base, f"must be an array ({slot.definition} repeats)")
        return
    if not value:
        run.error("structure", base, "must not be an empty array")
        return
    if slot.max is not None and len(value) > slot.max:
        run.error("structure", base, f"has {len(value)} items but at most {slot.max} are allowed")
    extensions = obj.get("_" + slot.key) if slot.kind == PRIMITIVE else None
    plain = slot.plain
    known = slot.known_valid
    for index, item in enumerate(value):
        if known is not None and item.__class__ is str and item in known:
            continue
        if item is None:
            aligned = type(extensions) is list and index < len(extensions) and extensions[index] is not None
            if not aligned:
                run.error(
                    "structure",
                    f"{base}[{index}]",
                    "must not be null (a null is only "
                    "allowed where the _ array has an extension at the same index)",
                )
            continue
        if not (plain and _valid_plain(slot, item)):
            _value(run, slot, item, f"{base}[{index}]", scope)


def _valid_plain(slot: Slot, value: Any) -> bool:
    """Whether a value of a plain primitive slot is valid and needs nothing more: then
    :func:`_primitive` would add no issue and note nothing, and its path is never built."""
    check = slot.check
    if check is not None and check(value) is not None:
        return False
    return slot.type_code not in _LOCAL_URI_TYPES or value[:1] != "#"


def _value(run: Run, slot: Slot, value: Any, path: str, scope: Scope) -> None:
    kind = slot.kind
    if kind == PRIMITIVE:
        _primitive(run, slot, value, path, scope)
        return
    if kind != COMPLEX:
        validate_resource(run, value, path, scope if slot.name == "contained" else None)
        return
    if type(value) is not dict:
        run.error("structure", path, f"must be a JSON object ({slot.type_code})")
        return
    if not value:
        run.error("structure", path, "must not be an empty object")
    elif len(value) == 1 and "id" in value:
        run.error("invariant", path, "must have children other than id (ele-1)", "ele-1")
    walk_object(run, value, run.plans.contexts[slot.context], path, scope)
    code = slot.type_code
    if code == "Reference":
        references.check_reference(run, slot, value, path, scope)
    elif code == "Extension":
        _check_ext_1(run, value, path)
    if slot.binding is not None:
        bindings.check_complex(run, slot.binding, code, value, path)
    if slot.invariants and run.invariants:
        evaluate(run, slot.invariants, value, path, scope, slot.context)


def _primitive(run: Run, slot: Slot, value: Any, path: str, scope: Scope) -> None:
    check = slot.check
    problem = check(value) if check is not None else None
    if problem is not None:
        run.add(problem.severity, problem.code, path, problem.clause)
        if problem.severity == "error":
            return
    code = slot.type_code
    if code == "xhtml":
        for key, clause in check_xhtml(value):
            run.error("invariant" if key else "value", path, clause, key)
    elif code in _LOCAL_URI_TYPES and value[:1] == "#":
        containment.note_local_reference(scope, value)
    if slot.binding is not None:
        bindings.check_code(run, slot.binding, value, path)
    if slot.invariants and run.invariants:
        evaluate(run, slot.invariants, value, path, scope, slot.type_code)


def _primitive_extension(
    run: Run, obj: dict[str, Any], key: str, slot: Slot, value: object, path: str, scope: Scope
) -> None:
    base = f"{path}.{slot.segment}"
    plan = run.plans.contexts["Element"]
    primitive = obj.get(slot.key)
    if not slot.is_array:
        if type(primitive) is list:
            return  # reported on the primitive key
        _element_of_primitive(run, plan, value, primitive is not None, base, scope)
        return
    if type(value) is not list:
        run.error("structure", f"{path}.{key}", f"must be an array, aligned with the {slot.key} array")
        return
    values = primitive if type(primitive) is list else []
    if primitive is not None and len(values) != len(value):
        run.error(
            "structure",
            f"{path}.{key}",
            f"has {len(value)} items but {slot.key} has {len(values)}: the arrays must be aligned",
        )
    for index, item in enumerate(value):
        has_value = index < len(values) and values[index] is not None
        if item is None:
            if not has_value:
                run.error("structure", f"{base}[{index}]", "has neither a value nor extensions")
            continue
        _element_of_primitive(run, plan, item, has_value, f"{base}[{index}]", scope)


def _element_of_primitive(
    run: Run, plan: ContextPlan, value: object, has_value: bool, path: str, scope: Scope
) -> None:
    if type(value) is not dict:
        run.error("structure", path, "has a _ sibling that is not a JSON object")
        return
    walk_object(run, value, plan, path, scope)
    if not has_value and not value.get("extension"):
        run.error("invariant", path, "must have a value or extensions (ele-1)", "ele-1")


def _check_ext_1(run: Run, extension: dict[str, Any], path: str) -> None:
    has_value = any(k.startswith("value") or k.startswith("_value") for k in extension)
    if has_value == bool(extension.get("extension")):
        clause = (
            "has both a value and nested extensions"
            if has_value
            else "has neither a value nor nested extensions"
        )
        run.error("invariant", path, f"{clause}: it must have one or the other (ext-1)", "ext-1")


def evaluate(
    run: Run,
    invariants: tuple[Invariant, ...],
    node: Any,
    path: str,
    scope: Scope,
    type_name: str | None = None,
) -> None:
    """Evaluate invariants on one present value; failures become issues (see invariants.py).

    When the engine can type a value (``node(value, type, path)``), the focus is given as a typed
    node of ``type_name`` (a type, or a backbone element's path), else as the bare JSON value.
    """
    resource: Any = scope.resource
    root_resource: Any = scope.root_resource
    focus = node
    if run.typed is not None:
        if type_name:
            try:
                focus = run.typed(node, type_name, path)
            except Exception:  # an engine that cannot type the value still gets the bare value
                focus = node
            if focus is not node:  # typed: the invariants that surely hold need no evaluation
                invariants = tuple(
                    invariant
                    for invariant in invariants
                    if invariant.shortcut is None or not invariant.shortcut(focus)
                )
                if not invariants:
                    return
        nodes = scope.nodes
        if nodes is None:
            nodes = scope.nodes = _resource_nodes(run.typed, resource, root_resource)
        if nodes:
            resource, resource_var, root_resource = nodes
        else:
            resource_var = resource
    else:
        resource_var = resource
    variables = {"resource": resource_var, "rootResource": root_resource}
    for invariant in invariants:
        try:
            result = invariant.compiled.evaluate(resource, context=focus, variables=variables)
        except Exception as exc:  # an engine failure must not fail the resource
            run.add(
                "information",
                "not-supported",
                path,
                f"could not be checked against invariant {invariant.key} ({type(exc).__name__}: {exc})",
                invariant.key,
            )
            continue
        if not holds(result):
            run.add(
                invariant.severity,
                "invariant",
                path,
                f"breaks invariant {invariant.key}: {invariant.human}",
                invariant.key,
            )


def _resource_nodes(typed: Any, resource: dict[str, Any], root_resource: dict[str, Any]) -> tuple[Any, ...]:
    """The resource as the engine's typed nodes: the evaluation root, ``%resource`` and
    ``%rootResource`` (three nodes, as the engine would make from the bare values); () when the
    engine cannot type them, and then the bare values are given as before."""
    try:
        return (typed(resource, None, None), typed(resource, None, None), typed(root_resource, None, None))
    except Exception:
        return ()
