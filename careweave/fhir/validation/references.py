"""Reference shape and target checks (and ref-1, natively).

Rules:
1. ``Reference.reference`` is one of: ``#id`` of a contained resource of the root resource
   (ref-1; a bare ``#`` only inside a contained resource, meaning its container); ``urn:uuid:``
   with a UUID; ``urn:oid:`` with an OID; an absolute URL (its type is read when it ends in
   ``Type/id`` or ``Type/id/_history/vid``); a relative ``Type/id[/_history/vid]`` with a known
   resource type and a valid id; or, inside a transaction or batch Bundle, a conditional
   ``Type?query``.
2. When the element's targetProfile lists specific resource types, a reference whose type is
   known must be one of them.
3. ``Reference.type``, when present, is a known resource type (or an absolute URL, for logical
   models), is allowed by the targets, and agrees with the type the reference names.
4. A valid relative reference (``Type/id``, no query) names its type whatever the resource around
   it: the plans remember the last few thousand (the same patients and encounters are referred to
   again and again), and those are not parsed again.
"""

from __future__ import annotations

import re
from typing import Any

from careweave.fhir.validation.containment import note_local_reference
from careweave.fhir.validation.plan import Slot
from careweave.fhir.validation.run import Run, Scope

__all__ = ["check_reference", "reference_type"]

_ID = r"[A-Za-z0-9\-.]{1,64}"
_RELATIVE = re.compile(rf"([A-Za-z]+)/({_ID})(?:/_history/({_ID}))?")
_ABSOLUTE_TAIL = re.compile(rf"/([A-Z][A-Za-z]+)/({_ID})(?:/_history/({_ID}))?\Z")
_ABSOLUTE = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*://\S+")
_UUID = re.compile(r"urn:uuid:[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
_OID = re.compile(r"urn:oid:[0-2](\.(0|[1-9][0-9]*))+")
_REMEMBERED = 8192  # relative references per validator (rule 4)


def check_reference(run: Run, slot: Slot, value: dict[str, Any], path: str, scope: Scope) -> None:
    """Check one Reference value found at ``path`` for the element ``slot``."""
    reference = value.get("reference")
    target: str | None = None
    if isinstance(reference, str) and reference:
        target = run.plans.relative_references.get(reference)  # rule 4
        if target is None:
            target = reference_type(run, reference, f"{path}.reference", scope)
    if target is not None and slot.targets and target not in slot.targets:
        run.error(
            "invalid",
            f"{path}.reference",
            f"refers to a {target}, but {slot.definition} allows only {_listed(slot.targets)}",
        )
    declared = value.get("type")
    if not isinstance(declared, str) or not declared:
        return
    if declared not in run.plans.resource_types:
        if _ABSOLUTE.fullmatch(declared) is None:
            run.error(
                "code-invalid",
                f"{path}.type",
                f"is {declared!r}, which is not a resource type (or the absolute URL of a logical model)",
            )
        return
    if slot.targets and declared not in slot.targets:
        run.error(
            "invalid",
            f"{path}.type",
            f"is {declared}, but {slot.definition} allows only {_listed(slot.targets)}",
        )
    elif target is not None and declared != target:
        run.error("invalid", f"{path}.type", f"is {declared}, but the reference points to a {target}")


def reference_type(run: Run, reference: str, path: str, scope: Scope) -> str | None:
    """The resource type ``reference`` names (None when it names none); reports bad shapes."""
    types = run.plans.resource_types
    if reference[0] == "#":
        note_local_reference(scope, reference)
        if reference == "#":
            if scope.root is None:
                run.error(
                    "invalid",
                    path,
                    "is '#', which only a contained resource may use (to refer to its container)",
                )
                return None
            return str(scope.root.resource.get("resourceType"))
        found = scope.contained_ids.get(reference[1:])
        if found is None:
            run.error(
                "invariant",
                path,
                f"refers to {reference}, but there is no contained resource with that id (ref-1)",
                "ref-1",
            )
        return found
    if reference.startswith("urn:"):
        if reference.startswith("urn:uuid:") and _UUID.fullmatch(reference) is None:
            run.error("value", path, f"is not a valid urn:uuid reference ({reference!r})")
        elif reference.startswith("urn:oid:") and _OID.fullmatch(reference) is None:
            run.error("value", path, f"is not a valid urn:oid reference ({reference!r})")
        return None
    if _ABSOLUTE.fullmatch(reference) is not None:
        match = _ABSOLUTE_TAIL.search(reference)
        if match is not None and match.group(1) in types:
            return match.group(1)
        return None
    return _relative_type(run, reference, path, types)


def _relative_type(run: Run, reference: str, path: str, types: frozenset[str]) -> str | None:
    if "?" in reference:
        kind = reference.split("?", 1)[0]
        if not run.conditional_references:
            run.error(
                "value",
                path,
                f"is a conditional reference ({reference!r}), which is "
                "only allowed inside a transaction or batch Bundle",
            )
        elif kind not in types:
            run.error("value", path, f"is a conditional reference to an unknown resource type {kind!r}")
            return None
        return kind if kind in types else None
    match = _RELATIVE.fullmatch(reference)
    if match is None:
        run.error(
            "value",
            path,
            f"is not a valid reference ({reference!r}): expected Type/id, "
            "an absolute URL, #id, urn:uuid: or urn:oid:",
        )
        return None
    if match.group(1) not in types:
        run.error("value", path, f"refers to an unknown resource type {match.group(1)!r}")
        return None
    remembered = run.plans.relative_references
    if len(remembered) >= _REMEMBERED:
        remembered.clear()
    remembered[reference] = match.group(1)
    return match.group(1)


def _listed(types: frozenset[str]) -> str:
    return ", ".join(sorted(types))
