"""FHIRPath Patch (R4 fhirpatch.html): a Parameters resource of operations applied to a resource.

Rules:
1. Operations run in order on a copy of the resource; the first that cannot be applied stops the
   patch with CW-2009 (422) and nothing changes. A malformed operation is CW-2010 (400).
2. ``add`` puts ``name`` = value on the single element ``path`` selects (appending when ``name``
   repeats); ``insert`` puts a value at ``index`` of the list ``path`` names; ``delete`` removes the
   single element ``path`` selects (nothing selected: nothing to do); ``replace`` replaces the single
   element ``path`` selects; ``move`` moves list item ``source`` to ``destination``.
3. A value is the operation's ``value[x]`` (any FHIR type), or, for a backbone element, the
   operation's ``value`` part whose own parts name its children.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

from careweave.errors import error
from careweave.fhir.elements import ElementModel
from careweave.fhir.fhirpath import FhirPathEngine, FhirPathError, Node

__all__ = ["apply_fhirpath_patch", "is_fhirpath_patch"]

_TYPES = frozenset({"add", "insert", "delete", "replace", "move"})


def is_fhirpath_patch(body: Any) -> bool:
    return isinstance(body, dict) and body.get("resourceType") == "Parameters"


def apply_fhirpath_patch(
    engine: FhirPathEngine, model: ElementModel, resource: dict[str, Any], patch: Mapping[str, Any]
) -> dict[str, Any]:
    """The patched copy of ``resource``; raises CareweaveError (CW-2009 / CW-2010)."""
    result = copy.deepcopy(resource)
    operations = patch.get("parameter")
    if not isinstance(operations, list) or not operations:
        raise error("CW-2010", "a FHIRPath Patch is a Parameters resource with 'operation' parameters")
    for number, operation in enumerate(operations, start=1):
        if not isinstance(operation, dict) or operation.get("name") != "operation":
            raise error("CW-2010", f"parameter {number} is not an 'operation'")
        parts = _parts(operation, number)
        kind = parts.get("type")
        if kind not in _TYPES:
            raise error("CW-2010", f"operation {number}: type must be one of {', '.join(sorted(_TYPES))}")
        path = parts.get("path")
        if not isinstance(path, str) or not path:
            raise error("CW-2010", f"operation {number}: a path is required")
        try:
            _APPLY[kind](engine, model, result, path, parts, number)
        except FhirPathError as exc:
            raise error("CW-2010", f"operation {number}: {exc}") from None
    return result


def _parts(operation: Mapping[str, Any], number: int) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for part in operation.get("part", ()):
        if not isinstance(part, dict) or not isinstance(part.get("name"), str):
            raise error("CW-2010", f"operation {number}: every part needs a name")
        name = part["name"]
        if name == "value":
            out["value"] = _value(part, number)
            continue
        values = [v for k, v in part.items() if k.startswith("value")]
        out[name] = values[0] if values else None
    return out


def _value(part: Mapping[str, Any], number: int) -> Any:
    values = [v for k, v in part.items() if k.startswith("value")]
    if values:
        return values[0]
    children = part.get("part")
    if isinstance(children, list):
        built: dict[str, Any] = {}
        for child in children:
            if not isinstance(child, dict) or not isinstance(child.get("name"), str):
                raise error("CW-2010", f"operation {number}: a value part needs a name")
            value = _value(child, number)
            key = child["name"]
            if key in built:
                existing = built[key]
                built[key] = [*existing, value] if isinstance(existing, list) else [existing, value]
            else:
                built[key] = value
        return built
    raise error("CW-2010", f"operation {number}: the value is missing")


def _single(
    engine: FhirPathEngine, resource: dict[str, Any], path: str, number: int, allow_none: bool = False
) -> Node | None:
    nodes = engine.compile(path).evaluate_nodes(resource)
    if not nodes and allow_none:
        return None
    if len(nodes) != 1:
        raise error("CW-2009", f"operation {number}: {path} selects {len(nodes)} elements, not one")
    return nodes[0]


def _container(node: Node, number: int) -> tuple[dict[str, Any], str, int | None]:
    parent = node.parent
    if parent is None or not isinstance(parent.value, dict):
        raise error("CW-2009", f"operation {number}: the resource itself cannot be changed")
    return parent.value, node.key, node.index


def _add(
    engine: FhirPathEngine,
    model: ElementModel,
    resource: dict[str, Any],
    path: str,
    parts: dict[str, Any],
    number: int,
) -> None:
    target = _single(engine, resource, path, number)
    assert target is not None
    name, value = parts.get("name"), parts.get("value")
    if not isinstance(name, str) or value is None:
        raise error("CW-2010", f"operation {number}: add needs a name and a value")
    if not isinstance(target.value, dict):
        raise error("CW-2009", f"operation {number}: {path} is not an element that can hold {name}")
    element = model.children(target.ctx).get(name.split("[")[0]) if target.ctx else None
    repeats = element.is_array if element is not None else isinstance(target.value.get(name), list)
    if repeats:
        target.value.setdefault(name, []).append(value)
    elif name in target.value:
        raise error("CW-2009", f"operation {number}: {path}.{name} has a value already (use replace)")
    else:
        target.value[name] = value


def _list_of(
    engine: FhirPathEngine, resource: dict[str, Any], path: str, number: int
) -> tuple[dict[str, Any], str, list[Any]]:
    nodes = engine.compile(path).evaluate_nodes(resource)
    if nodes:
        holder, key, index = _container(nodes[0], number)
        if index is None or any(n.parent is not nodes[0].parent for n in nodes):
            raise error("CW-2009", f"operation {number}: {path} is not a list")
        return holder, key, holder[key]
    head, dot, key = path.rpartition(".")
    parent = _single(engine, resource, head, number) if dot else None
    if parent is None or not isinstance(parent.value, dict):
        raise error("CW-2009", f"operation {number}: {path} does not name a list")
    return parent.value, key, parent.value.setdefault(key, [])


def _insert(
    engine: FhirPathEngine,
    model: ElementModel,
    resource: dict[str, Any],
    path: str,
    parts: dict[str, Any],
    number: int,
) -> None:
    index, value = parts.get("index"), parts.get("value")
    if not isinstance(index, int) or value is None:
        raise error("CW-2010", f"operation {number}: insert needs an index and a value")
    _, _, items = _list_of(engine, resource, path, number)
    if not 0 <= index <= len(items):
        raise error("CW-2009", f"operation {number}: index {index} is outside {path} (0..{len(items)})")
    items.insert(index, value)


def _delete(
    engine: FhirPathEngine,
    model: ElementModel,
    resource: dict[str, Any],
    path: str,
    parts: dict[str, Any],
    number: int,
) -> None:
    target = _single(engine, resource, path, number, allow_none=True)
    if target is None:
        return
    holder, key, index = _container(target, number)
    if index is None:
        holder.pop(key, None)
        holder.pop("_" + key, None)
        return
    items = holder[key]
    del items[index]
    if not items:
        del holder[key]


def _replace(
    engine: FhirPathEngine,
    model: ElementModel,
    resource: dict[str, Any],
    path: str,
    parts: dict[str, Any],
    number: int,
) -> None:
    value = parts.get("value")
    if value is None:
        raise error("CW-2010", f"operation {number}: replace needs a value")
    target = _single(engine, resource, path, number)
    assert target is not None
    holder, key, index = _container(target, number)
    if index is None:
        holder[key] = value
    else:
        holder[key][index] = value


def _move(
    engine: FhirPathEngine,
    model: ElementModel,
    resource: dict[str, Any],
    path: str,
    parts: dict[str, Any],
    number: int,
) -> None:
    source, destination = parts.get("source"), parts.get("destination")
    if not isinstance(source, int) or not isinstance(destination, int):
        raise error("CW-2010", f"operation {number}: move needs source and destination indexes")
    _, _, items = _list_of(engine, resource, path, number)
    if not (0 <= source < len(items) and 0 <= destination < len(items)):
        raise error("CW-2009", f"operation {number}: source or destination is outside {path}")
    items.insert(destination, items.pop(source))


_APPLY = {"add": _add, "insert": _insert, "delete": _delete, "replace": _replace, "move": _move}
