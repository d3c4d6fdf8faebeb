"""Apply a compiled profile (:mod:`.profile`) to a resource that passed through the base walk.

Rules:
1. Every issue found here carries ``details`` = :data:`PROFILE_DETAILS` (``CW-3002``, "the
   resource does not meet its profiles", an UNPROCESSABLE error: HTTP 422), whatever else it says;
   an invariant's key is named in the diagnostics instead.
2. Elements are selected by name from the JSON (``value[x]`` matches every ``valueXxx`` key; a
   primitive's children come from its ``_x`` object). Cardinality is checked per element and per
   slice; each present value is checked against the rule, then its children and slices.
3. Matching values to slices follows :func:`slice_matches`; with ``rules: closed`` a value that
   matches no slice is an error. A value whose slice cannot be decided is left alone.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from careweave.fhir.validation import bindings
from careweave.fhir.validation.containment import contained_ids
from careweave.fhir.validation.profile import Profile, ProfileNode, Rule, Slicing
from careweave.fhir.validation.run import Run, Scope
from careweave.fhir.validation.walk import evaluate

__all__ = ["PROFILE_DETAILS", "conform", "pattern_matches", "slice_matches"]

PROFILE_DETAILS = "CW-3002"
_REFERENCE_TYPE = re.compile(r"(?:^|/)([A-Z][A-Za-z]+)/[A-Za-z0-9\-.]{1,64}(?:/_history/.*)?$")


@dataclass(frozen=True, slots=True)
class Item:
    value: Any  # the JSON value
    holder: Any  # where its children are: the value itself, or a primitive's _x object
    path: str
    key: str


def conform(run: Run, resource: dict[str, Any], profile: Profile) -> None:
    """Report (into ``run``) every way ``resource`` breaks ``profile``."""
    outer = run.profile_details
    run.profile_details = PROFILE_DETAILS
    try:
        kind = resource.get("resourceType")
        where = str(kind)
        if kind != profile.type:
            run.error("invalid", where, f"is a {kind}, but profile {profile.url} is for {profile.type}")
            return
        scope = Scope(resource, contained_ids(resource))
        _apply(run, profile.root, [Item(resource, resource, where, "")], where, scope)
    finally:
        run.profile_details = outer


def _apply(run: Run, node: ProfileNode, items: list[Item], where: str, scope: Scope) -> None:
    rule = node.rule
    _cardinality(run, rule, len(items), where)
    for item in items:
        _check_item(run, rule, item, scope)
        for name, child in node.children.items():
            selected = _select(item.holder, name, item.path)
            _apply(run, child, selected, f"{item.path}.{name}", scope)
            if child.slices:
                _slices(run, child, selected, f"{item.path}.{name}", scope)


def _slices(run: Run, node: ProfileNode, items: list[Item], where: str, scope: Scope) -> None:
    slicing = node.slicing or Slicing(())
    matched: dict[str, list[Item]] = {name: [] for name in node.slices}
    for item in items:
        decided = False
        for name, piece in node.slices.items():
            verdict = slice_matches(slicing, piece, name, item)
            if verdict is None:
                decided = True  # cannot tell: leave the value alone
            elif verdict:
                matched[name].append(item)
                decided = True
                break
        if not decided and slicing.rules == "closed":
            run.error(
                "structure",
                item.path,
                f"matches none of the slices of {node.rule.element_id}, and the slicing is closed",
            )
    for name, piece in node.slices.items():
        _apply(run, piece, matched[name], f"{where}:{name}", scope)


def slice_matches(slicing: Slicing, piece: ProfileNode, name: str, item: Item) -> bool | None:
    """Whether ``item`` belongs to the slice ``piece``; None when it cannot be decided."""
    if not slicing.discriminators:
        return None
    for kind, path in slicing.discriminators:
        if kind in ("value", "pattern"):
            expected = _expected(piece, path, name)
            if expected is None:
                return None
            if not any(pattern_matches(v, expected) for v in _values_at(item.value, path)):
                return False
        elif kind == "exists":
            rule = _descend(piece, path)
            if rule is None or (rule.min is None and rule.max is None):
                return None
            present = bool(_values_at(item.value, path))
            if present != (rule.max != 0):
                return False
        else:
            return None
    return True


def _expected(piece: ProfileNode, path: str, name: str) -> Any:
    rule = _descend(piece, path)
    if rule is not None and (rule.fixed is not None or rule.pattern is not None):
        return rule.fixed if rule.fixed is not None else rule.pattern
    if path == "url":
        return piece.rule.extension_url or name
    return None


def _descend(piece: ProfileNode, path: str) -> Rule | None:
    if path == "$this":
        return piece.rule
    node: ProfileNode | None = piece
    for step in path.split("."):
        node = node.children.get(step) if node is not None else None
    return node.rule if node is not None else None


def _values_at(value: Any, path: str) -> list[Any]:
    values = [value]
    if path == "$this":
        return values
    for step in path.split("."):
        found: list[Any] = []
        for v in values:
            if isinstance(v, dict) and step in v:
                got = v[step]
                found += got if isinstance(got, list) else [got]
        values = found
    return values


def pattern_matches(value: Any, pattern: Any) -> bool:
    """FHIR pattern matching: every part of ``pattern`` is present in ``value``."""
    if isinstance(pattern, dict):
        if not isinstance(value, dict):
            return False
        return all(k in value and pattern_matches(value[k], p) for k, p in pattern.items())
    if isinstance(pattern, list):
        if not isinstance(value, list):
            return False
        return all(any(pattern_matches(v, p) for v in value) for p in pattern)
    return bool(value == pattern and type(value) is type(pattern))


def _select(holder: Any, name: str, path: str) -> list[Item]:
    if not isinstance(holder, dict):
        return []
    if name.endswith("[x]"):
        prefix = name[:-3]
        keys = [k for k in holder if k.startswith(prefix) and k[len(prefix) : len(prefix) + 1].isupper()]
    else:
        keys = [name] if name in holder or f"_{name}" in holder else []
    items: list[Item] = []
    for key in keys:
        value, under = holder.get(key), holder.get(f"_{key}")
        if isinstance(value, list) or isinstance(under, list):
            values = value if isinstance(value, list) else []
            extras = under if isinstance(under, list) else []
            for i in range(max(len(values), len(extras))):
                v = values[i] if i < len(values) else None
                u = extras[i] if i < len(extras) else None
                items.append(Item(v, v if isinstance(v, dict) else u, f"{path}.{key}[{i}]", key))
        else:
            items.append(Item(value, value if isinstance(value, dict) else under, f"{path}.{key}", key))
    return items


def _cardinality(run: Run, rule: Rule, count: int, where: str) -> None:
    if rule.min is not None and count < rule.min:
        run.error("required", where, f"has {count} value(s) but {rule.element_id} needs at least {rule.min}")
    if rule.max is not None and rule.max >= 0 and count > rule.max:
        run.error("structure", where, f"has {count} value(s) but {rule.element_id} allows at most {rule.max}")


def _check_item(run: Run, rule: Rule, item: Item, scope: Scope) -> None:
    value = item.value
    if rule.types is not None and item.key and item.key != rule.element_id.rsplit(".", 1)[-1]:
        _check_type(run, rule, item)
    if rule.fixed is not None and value != rule.fixed:
        run.error("value", item.path, f"must be exactly {rule.fixed!r} ({rule.element_id})")
    if rule.pattern is not None and not pattern_matches(value, rule.pattern):
        run.error("value", item.path, f"does not match the pattern {rule.pattern!r} ({rule.element_id})")
    if rule.targets is not None and isinstance(value, dict):
        _check_target(run, rule, value, item.path)
    if rule.binding is not None and value is not None:
        _check_binding(run, rule, item)
    if rule.invariants and run.invariants:
        evaluate(run, rule.invariants, value, item.path, scope)
    if rule.extension is not None:
        _apply(run, rule.extension, [item], item.path, scope)


def _check_type(run: Run, rule: Rule, item: Item) -> None:
    assert rule.types is not None
    name = rule.element_id.rsplit(".", 1)[-1].split(":", 1)[0]
    if not name.endswith("[x]"):
        return
    suffix = item.key[len(name) - 3 :]
    code = suffix[:1].lower() + suffix[1:]
    if suffix not in rule.types and code not in rule.types:
        run.error(
            "structure",
            item.path,
            f"has type {suffix}, but {rule.element_id} allows only {', '.join(sorted(rule.types))}",
        )


def _check_target(run: Run, rule: Rule, value: dict[str, Any], path: str) -> None:
    assert rule.targets is not None
    reference = value.get("reference")
    match = _REFERENCE_TYPE.search(reference) if isinstance(reference, str) else None
    if match is not None and match.group(1) not in rule.targets:
        run.error(
            "invalid",
            f"{path}.reference",
            f"refers to a {match.group(1)}, but "
            f"{rule.element_id} allows only {', '.join(sorted(rule.targets))}",
        )


def _check_binding(run: Run, rule: Rule, item: Item) -> None:
    assert rule.binding is not None
    value = item.value
    if isinstance(value, str):
        bindings.check_code(run, rule.binding, value, item.path)
    elif isinstance(value, dict):
        kind = "CodeableConcept" if "coding" in value or "text" in value else "Coding"
        bindings.check_complex(run, rule.binding, kind, value, item.path)
