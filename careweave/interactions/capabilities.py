"""capabilities: GET [base]/metadata, generated from the served surface and the registries."""

from __future__ import annotations

from typing import Any

from careweave.fhir.definitions import FHIR_VERSION
from careweave.interactions.context import Services
from careweave.interactions.operations import OPERATIONS
from careweave.interactions.request import Request
from careweave.interactions.result import Result
from careweave.interactions.surface import INSTANCE_LEVEL, SURFACE, SYSTEM_LEVEL, TYPE_LEVEL
from careweave.search.params import is_supported
from careweave.search.registry import SearchParamRegistry

__all__ = ["capabilities", "capability_statement"]

_DOC = "http://hl7.org/fhir/StructureDefinition/"


def _operations(level: str, type_: str | None) -> list[dict[str, str]]:
    return [
        {"name": op.name, "definition": op.definition}
        for op in OPERATIONS.values()
        if level in op.levels and (op.types is None or type_ is None or type_ in op.types)
    ]


def _resource(services: Services, registry: SearchParamRegistry, type_: str) -> dict[str, Any]:
    served = {code for codes in SURFACE.values() for code in codes.split()}
    interactions = sorted((TYPE_LEVEL | INSTANCE_LEVEL) & served)
    params = [
        {"name": p.code, "definition": p.url, "type": p.type}
        for p in registry.for_type(type_)
        if is_supported(type_, p.code, registry)
    ]
    entry: dict[str, Any] = {
        "type": type_,
        "profile": _DOC + type_,
        "interaction": [{"code": code} for code in interactions],
        "versioning": "versioned-update",
        "readHistory": True,
        "updateCreate": True,
        "conditionalCreate": True,
        "conditionalRead": "full-support",
        "conditionalUpdate": ("PUT", "type") in SURFACE,
        "conditionalDelete": "single" if ("DELETE", "type") in SURFACE else "not-supported",
        "searchParam": params,
    }
    operations = _operations("type", type_) + _operations("instance", type_)
    if operations:
        unique = {op["name"]: op for op in operations}
        entry["operation"] = list(unique.values())
    return entry


def capability_statement(
    services: Services, base_url: str, date: str, registry: SearchParamRegistry | None = None
) -> dict[str, Any]:
    """The CapabilityStatement for a tenant whose search parameters are ``registry`` (default:
    the specification's)."""
    registry = registry or services.search_params
    served = {code for codes in SURFACE.values() for code in codes.split()}
    rest: dict[str, Any] = {
        "mode": "server",
        "resource": [_resource(services, registry, t) for t in sorted(services.resource_types)],
        "interaction": [{"code": code} for code in sorted(SYSTEM_LEVEL & served)],
    }
    system_ops = _operations("system", None)
    if system_ops:
        rest["operation"] = system_ops
    return {
        "resourceType": "CapabilityStatement",
        "status": "active",
        "date": date,
        "publisher": "careweave",
        "kind": "instance",
        "software": {"name": "careweave", "version": services.software_version},
        "implementation": {"description": "careweave FHIR R4 server", "url": base_url},
        "fhirVersion": FHIR_VERSION,
        "format": ["application/fhir+json", "json"],
        "patchFormat": ["application/json-patch+json", "application/fhir+json"],
        "rest": [rest],
    }


async def capabilities(services: Services, request: Request) -> Result:
    registry = (await services.search.of(request.tenant)).registry
    return Result(200, capability_statement(services, request.base_url, services.started_at, registry))
