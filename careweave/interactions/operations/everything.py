"""Patient/$everything at instance and type level (patient-operation-everything.html).

Rules:
1. The answer is a searchset Bundle: the Patient(s), every resource in their Patient compartment
   (the CompartmentDefinition's parameters per type), and, on each page, the resources those refer
   to that are outside the compartment (Practitioner, Organization, Location, Medication...),
   marked ``search.mode = include``.
2. ``_since`` keeps resources updated at or after that instant; ``_type`` limits the types;
   ``_count`` sets the page size; paging uses the search engine's signed cursors.
"""

from __future__ import annotations

from typing import Any

import orjson

from careweave.bundles.plan import references_in
from careweave.errors import error
from careweave.fhir.model import parse_instant, parse_reference
from careweave.interactions.bundle import link
from careweave.interactions.common import check_id
from careweave.interactions.compartments import patient_membership
from careweave.interactions.context import Services
from careweave.interactions.paging import open_cursor, seal_cursor
from careweave.interactions.request import Request
from careweave.interactions.result import Result
from careweave.search.plan import And, LastUpdated, Predicate, QueryPlan
from careweave.search.values import POS_INF
from careweave.store.base import StoredResource

__all__ = ["everything"]


def _count(services: Services, request: Request) -> int:
    raw = request.param("_count")
    if raw is None:
        return services.default_count
    try:
        return max(1, min(int(raw), services.max_count))
    except ValueError:
        raise error("CW-1011", f"_count must be a whole number, not {raw!r}") from None


async def everything(services: Services, request: Request) -> Result:
    patient_id = check_id(request.id) if request.id is not None else None
    if patient_id is not None:
        patient = await services.store.read(request.tenant, "Patient", patient_id)
        if patient is None or patient.deleted:
            raise error("CW-2001", f"Patient/{patient_id} is not known")
    in_compartment = sorted(set(services.compartments.get("Patient", {})) | {"Patient"})
    wanted = request.param("_type")
    types = in_compartment
    if wanted:
        types = [t.strip() for t in wanted.split(",") if t.strip()]
        unknown = [t for t in types if t not in services.resource_types]
        if unknown:
            raise error("CW-1011", f"_type names unknown resource types: {', '.join(unknown)}")
        types = [t for t in types if t in in_compartment]
    where: Predicate = patient_membership(services, patient_id, types)
    since = request.param("_since")
    if since is not None:
        ms = parse_instant(since)
        if ms is None:
            raise error("CW-1011", f"_since must be an instant with a time zone, not {since!r}")
        where = And((where, LastUpdated("ge", ms, POS_INF)))
    count = _count(services, request)
    path = f"Patient/{patient_id}/$everything" if patient_id else "Patient/$everything"
    kept = [(k, v) for k, v in request.params if k in ("_since", "_type", "_count")]
    plan = QueryPlan(tuple(types), where, count=count)
    token = request.param("_cursor")
    if token is not None:
        cursor = open_cursor(services.cursor_secret, request.tenant.name, token)
        if not isinstance(cursor, dict) or cursor.get("q") != path or not cursor.get("k"):
            raise error("CW-5003", "the paging cursor belongs to another request")
        plan = QueryPlan(tuple(types), where, count=count, after=tuple(cursor["k"]))
    page = await services.store.search(request.tenant, plan)
    entries = [
        {
            "fullUrl": f"{request.base_url}/{r.type}/{r.id}",
            "resource": orjson.Fragment(r.body or b"{}"),
            "search": {"mode": "match"},
        }
        for r in page.matches
    ]
    allowed = set(types) if wanted else None
    for extra in await _referenced(services, request, page.matches, set(in_compartment), allowed):
        entries.append(
            {
                "fullUrl": f"{request.base_url}/{extra.type}/{extra.id}",
                "resource": orjson.Fragment(extra.body or b"{}"),
                "search": {"mode": "include"},
            }
        )
    links = [link("self", request.base_url, path, kept + ([("_cursor", token)] if token else []))]
    if page.next_after is not None:
        sealed = seal_cursor(
            services.cursor_secret, request.tenant.name, {"q": path, "k": list(page.next_after)}
        )
        links.append(link("next", request.base_url, path, [*kept, ("_cursor", sealed)]))
    bundle: dict[str, Any] = {"resourceType": "Bundle", "type": "searchset"}
    if page.total is not None:
        bundle["total"] = page.total
    bundle["link"] = links
    bundle["entry"] = entries
    return Result(200, bundle)


async def _referenced(
    services: Services,
    request: Request,
    matches: list[StoredResource] | Any,
    compartment: set[str],
    allowed: set[str] | None,
) -> list[StoredResource]:
    """Resources outside the compartment that the page's matches refer to (of the ``_type``s
    asked for, when the request limits them): the compartment's own come through the search."""
    have = {(r.type, r.id) for r in matches}
    wanted: set[tuple[str, str]] = set()
    for r in matches:
        for holder, key in references_in(orjson.loads(r.body or b"{}")):
            ref = parse_reference(holder[key])
            if (
                ref is not None
                and ref.base is None
                and (ref.type, ref.id) not in have
                and ref.type not in compartment
                and (allowed is None or ref.type in allowed)
            ):
                wanted.add((ref.type, ref.id))
    found = []
    for type_, id_ in sorted(wanted):
        stored = await services.store.read(request.tenant, type_, id_)
        if stored is not None and not stored.deleted:
            found.append(stored)
    return found
