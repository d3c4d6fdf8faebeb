"""A tenant's own SearchParameter resources: checking them, and the registry that includes them.

Rules:
1. A SearchParameter with status ``active`` defines one custom parameter per ``base`` type; other
   statuses define none (so retiring one removes it). Its ``code`` must not be one the
   specification already defines for that base (a tenant cannot change the meaning of ``name``).
2. It must have a supported ``type`` (not ``special``), known resource types as ``base``, and an
   ``expression`` the FHIRPath engine compiles; composites need their components' definitions to
   be parameters the tenant can use. Problems are issues (the write answers 422), never exceptions.
3. Custom parameters are ``pending`` until the existing resources are reindexed, then ``ready``:
   writes index pending ones already; searches use ready ones only.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

from careweave.errors import Issue
from careweave.fhir.fhirpath import FhirPathEngine, FhirPathError
from careweave.search.registry import SearchParam, SearchParamRegistry, params_of

__all__ = ["check_search_parameter", "registry_with"]

_TYPES = frozenset({"number", "date", "string", "token", "reference", "composite", "quantity", "uri"})
_CODE = re.compile(r"[A-Za-z][A-Za-z0-9_\-]{0,63}\Z")


def _issue(text: str, where: str = "SearchParameter") -> Issue:
    return Issue("error", "business-rule", text, (where,), "CW-3002")


def check_search_parameter(
    resource: Mapping[str, Any],
    base: SearchParamRegistry,
    engine: FhirPathEngine,
    resource_types: frozenset[str],
) -> tuple[list[SearchParam], list[Issue]]:
    """The custom parameters a SearchParameter resource defines (one per base), or why not."""
    if resource.get("status") != "active":
        return [], []
    issues: list[Issue] = []
    code = resource.get("code")
    if not isinstance(code, str) or not _CODE.match(code):
        issues.append(_issue(f"code {code!r} is not a usable parameter name", "SearchParameter.code"))
    kind = resource.get("type")
    if kind not in _TYPES:
        issues.append(
            _issue(f"type {kind!r} cannot be a custom search parameter here", "SearchParameter.type")
        )
    bases = resource.get("base") or []
    for b in bases:
        if b not in resource_types:
            issues.append(_issue(f"base {b!r} is not a resource type", "SearchParameter.base"))
        elif isinstance(code, str):
            existing = base.get(b, code)
            if existing is not None and existing.url != resource.get("url"):
                issues.append(
                    _issue(
                        f"{b} already has a search parameter {code!r} ({existing.url})",
                        "SearchParameter.code",
                    )
                )
    if not isinstance(resource.get("expression"), str) or not resource["expression"].strip():
        issues.append(_issue("a custom search parameter needs an expression", "SearchParameter.expression"))
    if issues:
        return [], issues
    params = params_of({**resource, "url": resource.get("url") or f"urn:careweave:sp:{code}"})
    for p in params:
        issues.extend(_compiles(p, engine))
        for component in p.components:
            if base.by_url(component.definition) is None:
                issues.append(
                    _issue(
                        f"component {component.definition} is not a known parameter",
                        "SearchParameter.component",
                    )
                )
    if issues:
        return [], issues
    return params, []


def _compiles(param: SearchParam, engine: FhirPathEngine) -> list[Issue]:
    expressions = [param.expression or ""] + [c.expression for c in param.components]
    out = []
    for text in expressions:
        try:
            engine.compile(text)
        except FhirPathError as exc:
            out.append(
                _issue(f"the expression {text!r} does not compile: {exc}", "SearchParameter.expression")
            )
    return out


def registry_with(
    base: SearchParamRegistry, custom: Iterable[tuple[str, Mapping[str, Any]]]
) -> SearchParamRegistry:
    """``base`` plus custom parameters, given as (key, SearchParameter resource)."""
    registry = base.copy()
    for key, definition in custom:
        for p in params_of(definition):
            if p.key == key:
                registry.add(p)
    return registry
