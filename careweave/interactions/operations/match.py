"""Patient/$match (FHIR R4 patient-operation-match.html, OperationDefinition Patient-match).

Rules:
1. ``POST [base]/Patient/$match`` with a Parameters body: ``resource`` (1..1, a Patient: the details
   to match, need not be complete or valid for storage), ``onlyCertainMatches`` (0..1 boolean),
   ``count`` (0..1 positive integer). A bare Patient body is read as ``resource``.
2. The answer is a ``searchset`` Bundle of the matching Patients, most likely first; each entry has
   ``search.mode = match``, ``search.score`` (the match probability, 0..1) and the extension
   http://hl7.org/fhir/StructureDefinition/match-grade (``certain`` auto-links; ``probable`` scores
   as high but a safety rule holds it for review; ``possible`` is the review band). No match: an
   empty Bundle (total 0).
3. ``onlyCertainMatches``: only ``certain`` matches, and none at all when they are of more than one
   Person (the spec: "if there are multiple potential matches ... should not return the results").
4. A tenant's ``$match`` looks among that tenant's own Patients; at /mpi/fhir it looks across
   every tenant (operators), each entry's fullUrl being the Patient's absolute URL in its tenant.
"""

from __future__ import annotations

from typing import Any

import orjson

from careweave.errors import error
from careweave.identity.records import IDENTITY_TENANT, patient_url
from careweave.interactions.common import parse_body
from careweave.interactions.context import Services
from careweave.interactions.request import Request
from careweave.interactions.result import Result

__all__ = ["MATCH_GRADE", "match"]

MATCH_GRADE = "http://hl7.org/fhir/StructureDefinition/match-grade"


def _boolean(parameter: dict[str, Any], name: str) -> bool:
    value = parameter.get("valueBoolean")
    if not isinstance(value, bool):
        raise error("CW-1011", f"{name} must be a valueBoolean")
    return value


def _arguments(body: dict[str, Any]) -> tuple[dict[str, Any], bool, int | None]:
    if body.get("resourceType") == "Patient":
        return body, False, None
    if body.get("resourceType") != "Parameters":
        raise error("CW-1015", "$match takes a Parameters resource (or a Patient)")
    resource: dict[str, Any] | None = None
    only_certain, count = False, None
    for parameter in body.get("parameter", ()):
        if not isinstance(parameter, dict):
            continue
        name = parameter.get("name")
        if name == "resource":
            resource = parameter.get("resource") if isinstance(parameter.get("resource"), dict) else None
            if resource is None:
                raise error("CW-1011", "the 'resource' parameter must carry a resource")
        elif name == "onlyCertainMatches":
            only_certain = _boolean(parameter, "onlyCertainMatches")
        elif name == "count":
            value = parameter.get("valueInteger")
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise error("CW-1011", "count must be a valueInteger of at least 1")
            count = value
    if resource is None:
        raise error("CW-1007", "$match needs the 'resource' parameter")
    if resource.get("resourceType") != "Patient":
        raise error("CW-1006", f"$match on Patient needs a Patient, not a {resource.get('resourceType')}")
    return resource, only_certain, count


async def match(services: Services, request: Request) -> Result:
    identity = services.identity
    if identity is None:
        raise error("CW-8010", "the master patient index is not running on this server")
    resource, only_certain, count = _arguments(parse_body(request))
    across = request.tenant.name == IDENTITY_TENANT
    found = await identity.match(resource, None if across else request.tenant.key, only_certain, count)
    names = {t.key: t.name for t in await services.store.tenants()} if across else {}
    server = request.base_url.rsplit("/mpi/fhir", 1)[0] if across else ""
    entries = []
    for m in found:
        tenant = request.tenant
        if across:
            other = await services.store.tenant_by_key(m.tenant)
            if other is None:
                continue
            tenant = other
        stored = await services.store.read(tenant, "Patient", m.patient)
        if stored is None or stored.deleted or stored.body is None:
            continue  # deleted since the matcher last saw it
        full_url = (
            patient_url(server, names.get(m.tenant, tenant.name), m.patient)
            if across
            else f"{request.base_url}/Patient/{m.patient}"
        )
        entries.append(
            {
                "fullUrl": full_url,
                "resource": orjson.loads(stored.body),
                "search": {
                    "extension": [{"url": MATCH_GRADE, "valueCode": m.grade}],
                    "mode": "match",
                    "score": round(m.score.probability, 6),
                },
            }
        )
    bundle: dict[str, Any] = {
        "resourceType": "Bundle",
        "type": "searchset",
        "total": len(entries),
        "link": [{"relation": "self", "url": f"{request.base_url}/Patient/$match"}],
        "entry": entries,
    }
    if not entries:
        del bundle["entry"]
    return Result(200, bundle)
