"""Rules for contained resources and narrative: dom-2, dom-3, dom-4, dom-5, dom-6 (natively).

Rules:
1. dom-2: a contained resource has no ``contained`` of its own.
2. dom-3: every contained resource is referred to (``#id`` in a Reference, canonical, uri or url
   anywhere in the container, contained resources included), or refers to its container (``#``).
   A contained resource without an id can never be referred to, so it breaks dom-3.
3. dom-4: a contained resource has no ``meta.versionId`` or ``meta.lastUpdated``; dom-5: no
   ``meta.security``.
4. dom-6 (warning): a resource that is not contained should have narrative (``text.div``).
"""

from __future__ import annotations

from typing import Any

from careweave.fhir.validation.run import Run, Scope

__all__ = ["check_resource", "contained_ids", "note_local_reference"]


def contained_ids(resource: dict[str, Any]) -> dict[str, str]:
    """The ids of a resource's contained resources, mapped to their resource types."""
    contained = resource.get("contained")
    if type(contained) is not list:
        return {}
    found: dict[str, str] = {}
    for item in contained:
        if type(item) is dict and isinstance(item.get("id"), str):
            found[item["id"]] = str(item.get("resourceType"))
    return found


def note_local_reference(scope: Scope, reference: str) -> None:
    """Record a ``#...`` reference seen while walking ``scope``'s resource."""
    if reference == "#":
        scope.refers_to_container = True
    else:
        scope.top.local_refs.add(reference)


def check_resource(run: Run, resource: dict[str, Any], path: str, scope: Scope) -> None:
    """The dom-* rules for one DomainResource, after its content has been walked."""
    if scope.root is not None:
        _check_contained(run, resource, path, scope)
        return
    text = resource.get("text")
    if type(text) is not dict or "div" not in text:
        run.add(
            "warning",
            "invariant",
            path,
            "should have narrative (text.div) for robust management (dom-6)",
            "dom-6",
        )
    contained = resource.get("contained")
    if type(contained) is not list:
        return
    for index, item in enumerate(contained):
        if type(item) is not dict:
            continue
        where = f"{path}.contained[{index}]"
        ident = item.get("id")
        if not isinstance(ident, str):
            run.error(
                "invariant",
                where,
                "has no id, so nothing can refer to it: a contained "
                "resource must be referred to from the container (dom-3)",
                "dom-3",
            )
        elif f"#{ident}" not in scope.local_refs and index not in scope.referring:
            run.error(
                "invariant",
                where,
                f"is not referred to (#{ident}) from elsewhere in the "
                "resource and does not refer to its container (dom-3)",
                "dom-3",
            )


def _check_contained(run: Run, resource: dict[str, Any], path: str, scope: Scope) -> None:
    container = scope.top
    if scope.refers_to_container:
        contained = container.resource.get("contained")
        if type(contained) is list:
            for index, item in enumerate(contained):
                if item is resource:
                    container.referring.add(index)
    if "contained" in resource:
        run.error(
            "invariant",
            f"{path}.contained",
            "is not allowed: a contained resource must not contain resources (dom-2)",
            "dom-2",
        )
    meta = resource.get("meta")
    if type(meta) is not dict:
        return
    if "versionId" in meta or "lastUpdated" in meta:
        run.error(
            "invariant",
            f"{path}.meta",
            "must not have versionId or lastUpdated in a contained resource (dom-4)",
            "dom-4",
        )
    if "security" in meta:
        run.error(
            "invariant", f"{path}.meta.security", "is not allowed in a contained resource (dom-5)", "dom-5"
        )
