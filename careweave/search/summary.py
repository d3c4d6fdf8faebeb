"""_summary and _elements: the subset of a resource a client asked for (search.html 3.1.1.5.9).

Rules:
1. ``true``: the elements the base definition marks as summary (recursively inside backbone
   elements); ``text``: text plus mandatory elements; ``data``: everything but text; ``false``:
   everything. ``_elements``: the named top-level elements.
2. ``resourceType``, ``id``, ``meta`` and the resource's mandatory (min >= 1) top-level elements are
   always kept; a subsetted resource carries the SUBSETTED tag in meta.tag.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from careweave.fhir.elements import ElementModel

__all__ = ["SUBSETTED", "subset"]

SUBSETTED = {
    "system": "http://terminology.hl7.org/CodeSystem/v3-ObservationValue",
    "code": "SUBSETTED",
    "display": "Resource encoded in summary mode",
}
_ALWAYS = frozenset({"resourceType", "id", "meta"})


def _base_name(key: str) -> str:
    return key[1:] if key.startswith("_") else key


def _mandatory(model: ElementModel, type_: str) -> set[str]:
    return {name for name, el in model.children(type_).items() if el.min >= 1}


def _summary_of(model: ElementModel, context: str, value: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, item in value.items():
        if key in _ALWAYS:
            out[key] = item
            continue
        found = model.resolve_key(context, _base_name(key))
        if found is None:
            continue
        element = found[0]
        if not element.summary and element.min < 1:
            continue
        if element.content is not None:
            if isinstance(item, list):
                out[key] = [
                    _summary_of(model, element.content, v) if isinstance(v, dict) else v for v in item
                ]
            elif isinstance(item, dict):
                out[key] = _summary_of(model, element.content, item)
            else:
                out[key] = item
        else:
            out[key] = item
    return out


def _tagged(resource: dict[str, Any]) -> dict[str, Any]:
    meta = dict(resource.get("meta") or {})
    tags = list(meta.get("tag") or [])
    if not any(t.get("code") == "SUBSETTED" for t in tags if isinstance(t, dict)):
        tags.append(SUBSETTED)
    meta["tag"] = tags
    return {**resource, "meta": meta}


def subset(
    model: ElementModel, resource: dict[str, Any], summary: str | None, elements: Sequence[str]
) -> dict[str, Any]:
    """The resource as ``_summary`` / ``_elements`` ask; the resource itself when they don't."""
    type_ = str(resource.get("resourceType", ""))
    if summary in (None, "false") and not elements:
        return resource
    keep_always = _ALWAYS | _mandatory(model, type_)
    if summary == "true":
        out = _summary_of(model, type_, resource)
    elif summary == "text":
        out = {k: v for k, v in resource.items() if _base_name(k) in keep_always or k == "text"}
    elif summary == "data":
        out = {k: v for k, v in resource.items() if k != "text"}
    else:
        wanted = set(elements) | keep_always
        out = {k: v for k, v in resource.items() if _base_name(k) in wanted}
    return _tagged(out)
