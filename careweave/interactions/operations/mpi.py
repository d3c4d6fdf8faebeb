"""The identity space at /mpi/fhir: Persons read as FHIR, changed only through the MPI operations.

Rules:
1. Reads go to the ordinary interactions on the identity tenant: read, vread, search (GET and
   ``POST _search``, e.g. ``Person?link=...``, ``_include``), history. Any other write is 405
   (CW-8009): Persons change only through the operations below, which audit every change. The
   identity space holds Persons only: any other resource type is 404 (CW-1004).
   ``GET metadata`` is the identity space's own CapabilityStatement (:func:`identity_capabilities`):
   exactly the reads above and the operations below, no write interaction.
2. Operations (all audited; ``actor`` and ``reason`` are required; ``If-Match`` on the Person's
   version is honoured, 412 when stale):
   ``POST Person/{id}/$link`` (``patient``), ``POST Person/{id}/$unlink`` (``patient``),
   ``POST Person/{id}/$merge`` (``source``: the Person merged into this one),
   ``POST Person/{id}/$unmerge`` (``source``), ``GET Person/{id}/$locate`` (record locator: which
   organisations hold records), ``GET Person/{id}/$patients`` (the Patients of a Person, as a
   searchset Bundle), ``GET Person/{id}/$audit`` (its audit trail), ``GET $review`` (the review
   queue), ``GET $review-compare?item=N`` (both records side by side with the score),
   ``POST $review-decide`` (``item``, ``decision`` = same | not-same), and ``POST Patient/$match``
   across every tenant.
3. A patient is named by a Reference (``valueReference``) or string: its absolute URL (as in
   Person.link.target) or ``tenant/Patient/id``.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import orjson

from careweave.errors import CareweaveError, error
from careweave.fhir.definitions import FHIR_VERSION
from careweave.identity.records import patient_url
from careweave.identity.service import IdentityService
from careweave.interactions.common import parse_body, parse_if_match
from careweave.interactions.context import Services
from careweave.interactions.dispatch import dispatch, route, routed
from careweave.interactions.operations.match import match
from careweave.interactions.request import Request
from careweave.interactions.result import Result, error_result
from careweave.search.params import is_supported

__all__ = ["IDENTITY_OPERATIONS", "dispatch_identity", "identity_capabilities"]

log = logging.getLogger("careweave.identity")

Handler = Callable[[Services, IdentityService, Request], Awaitable[Result]]


def _parameters(request: Request) -> dict[str, Any]:
    """Operation arguments: the Parameters body (POST) and the query string, by name."""
    out: dict[str, Any] = {k: v for k, v in request.params}
    if request.method == "POST" and request.body and request.body.strip():
        body = parse_body(request, "Parameters")
        for p in body.get("parameter", ()):
            if not isinstance(p, dict) or not isinstance(p.get("name"), str):
                continue
            for key, value in p.items():
                if key.startswith("value"):
                    out[p["name"]] = (
                        value.get("reference")
                        if key == "valueReference" and isinstance(value, dict)
                        else value
                    )
    return out


def _text(args: dict[str, Any], name: str) -> str:
    value = args.get(name)
    if not isinstance(value, str) or not value.strip():
        raise error("CW-8005", f"the operation needs '{name}'")
    return value.strip()


def _person_id(value: str) -> str:
    return value.rsplit("Person/", 1)[-1].split("/")[0]


def _time(ms: int | None) -> str | None:
    return None if ms is None else datetime.fromtimestamp(ms / 1000, UTC).isoformat(timespec="milliseconds")


def _outcome_parameters(values: dict[str, Any]) -> dict[str, Any]:
    parameter = []
    for key, value in values.items():
        if isinstance(value, int):
            parameter.append({"name": key, "valueInteger": value})
        elif value is not None:
            parameter.append({"name": key, "valueString": str(value)})
    return {"resourceType": "Parameters", "parameter": parameter}


async def _link(services: Services, identity: IdentityService, request: Request) -> Result:
    args = _parameters(request)
    patient = await identity.patient_ref(_text(args, "patient"))
    out = await identity.link(
        _person_id(request.id or ""),
        patient,
        _text(args, "actor"),
        _text(args, "reason"),
        parse_if_match(request),
    )
    return Result(200, _outcome_parameters(out))


async def _unlink(services: Services, identity: IdentityService, request: Request) -> Result:
    args = _parameters(request)
    patient = await identity.patient_ref(_text(args, "patient"))
    out = await identity.unlink(
        request.id or "", patient, _text(args, "actor"), _text(args, "reason"), parse_if_match(request)
    )
    return Result(200, _outcome_parameters(out))


async def _merge(services: Services, identity: IdentityService, request: Request) -> Result:
    args = _parameters(request)
    source = _person_id(_text(args, "source"))
    out = await identity.merge(
        request.id or "", source, _text(args, "actor"), _text(args, "reason"), parse_if_match(request)
    )
    return Result(200, _outcome_parameters(out))


async def _unmerge(services: Services, identity: IdentityService, request: Request) -> Result:
    args = _parameters(request)
    source = _person_id(_text(args, "source"))
    out = await identity.unmerge(
        request.id or "", source, _text(args, "actor"), _text(args, "reason"), parse_if_match(request)
    )
    return Result(200, _outcome_parameters(out))


def _server(request: Request) -> str:
    return request.base_url.rsplit("/mpi/fhir", 1)[0]


async def _locate(services: Services, identity: IdentityService, request: Request) -> Result:
    found = await identity.locate(request.id or "")
    parameter = []
    for place in found:
        part: list[dict[str, Any]] = [{"name": "tenant", "valueString": place.tenant}]
        for patient, assurance in zip(place.patients, place.assurance, strict=True):
            url = patient_url(_server(request), place.tenant, patient)
            part.append({"name": "patient", "valueReference": {"reference": url}})
            part.append({"name": "assurance", "valueCode": assurance})
        parameter.append({"name": "organisation", "part": part})
    return Result(200, {"resourceType": "Parameters", "parameter": parameter})


async def _patients(services: Services, identity: IdentityService, request: Request) -> Result:
    person = request.id or ""
    rows = await identity.members(person)
    if not rows:
        await identity.locate(person)  # 404 for an unknown Person
    entries = []
    for row in rows:
        tenant = await services.store.tenant_by_key(row.tid)
        stored = None if tenant is None else await services.store.read(tenant, "Patient", row.patient)
        if tenant is None or stored is None or stored.body is None or stored.deleted:
            continue
        entries.append(
            {
                "fullUrl": patient_url(_server(request), tenant.name, row.patient),
                "resource": orjson.loads(stored.body),
                "search": {"mode": "match"},
            }
        )
    bundle: dict[str, Any] = {"resourceType": "Bundle", "type": "searchset", "total": len(entries)}
    if entries:
        bundle["entry"] = entries
    return Result(200, bundle)


async def _audit(services: Services, identity: IdentityService, request: Request) -> Result:
    rows = await identity.history(request.id or "")
    parameter = [
        {
            "name": "entry",
            "part": [
                {"name": "id", "valueInteger": a.aid},
                {"name": "when", "valueInstant": _time(a.at_ms)},
                {"name": "actor", "valueString": a.actor},
                {"name": "action", "valueCode": a.action},
                {"name": "person", "valueString": a.person},
                *([{"name": "other", "valueString": a.other}] if a.other else []),
                {"name": "reason", "valueString": a.reason},
                *([{"name": "undoneBy", "valueInteger": a.undone_by}] if a.undone_by else []),
            ],
        }
        for a in rows
    ]
    return Result(200, {"resourceType": "Parameters", "parameter": parameter})


def _int(args: dict[str, Any], name: str, default: int | None = None) -> int:
    value = args.get(name, default)
    try:
        return int(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise error("CW-8005", f"'{name}' must be a whole number") from None


async def _review(services: Services, identity: IdentityService, request: Request) -> Result:
    args = _parameters(request)
    state = args.get("state", "open")
    items = await identity.reviews(str(state), _int(args, "after", 0), min(_int(args, "_count", 50), 500))
    parameter = []
    for item in items:
        _, left, right = await identity.review(item.item)
        part: list[dict[str, Any]] = [
            {"name": "item", "valueInteger": item.item},
            {"name": "person", "valueReference": {"reference": f"Person/{item.person}"}},
            {"name": "weight", "valueDecimal": round(item.weight, 3)},
            {"name": "state", "valueCode": item.state},
            {"name": "created", "valueInstant": _time(item.created_ms)},
        ]
        names = {t.key: t.name for t in await services.store.tenants()}
        for label, row in (("record", left), ("matched", right)):
            if row is not None:
                url = patient_url(_server(request), names.get(row.tid, str(row.tid)), row.patient)
                part.append({"name": label, "valueReference": {"reference": url}})
        parameter.append({"name": "item", "part": part})
    return Result(200, {"resourceType": "Parameters", "parameter": parameter})


async def _review_compare(services: Services, identity: IdentityService, request: Request) -> Result:
    args = _parameters(request)
    item, left, right = await identity.review(_int(args, "item"))
    parameter: list[dict[str, Any]] = [
        {"name": "item", "valueInteger": item.item},
        {"name": "state", "valueCode": item.state},
        {"name": "person", "valueReference": {"reference": f"Person/{item.person}"}},
    ]
    for label, row in (("record", left), ("matched", right)):
        if row is None:
            continue
        tenant = await services.store.tenant_by_key(row.tid)
        stored = None if tenant is None else await services.store.read(tenant, "Patient", row.patient)
        part: list[dict[str, Any]] = [
            {"name": "tenant", "valueString": tenant.name if tenant else str(row.tid)}
        ]
        if stored is not None and stored.body is not None and not stored.deleted:
            part.append({"name": "patient", "resource": orjson.loads(stored.body)})
        parameter.append({"name": label, "part": part})
    if left is not None and right is not None:
        s = await identity.explain(left, right)
        parameter.append({"name": "weight", "valueDecimal": round(s.weight, 3)})
        parameter.append({"name": "modelVersion", "valueString": s.model_version})
        for c in s.contributions:
            part = [
                {"name": "field", "valueCode": c.field},
                {"name": "weight", "valueDecimal": round(c.weight, 3)},
            ]
            if c.level:
                part.append({"name": "level", "valueCode": c.level})
            if c.note:
                part.append({"name": "note", "valueString": c.note})
            parameter.append({"name": "contribution", "part": part})
        parameter.extend({"name": "rule", "valueCode": code} for code in s.rules)
        parameter.append({"name": "explanation", "valueString": s.explain()})
    return Result(200, {"resourceType": "Parameters", "parameter": parameter})


async def _review_decide(services: Services, identity: IdentityService, request: Request) -> Result:
    args = _parameters(request)
    out = await identity.decide(
        _int(args, "item"), _text(args, "decision"), _text(args, "actor"), _text(args, "reason")
    )
    return Result(200, _outcome_parameters(out))


async def _match(services: Services, identity: IdentityService, request: Request) -> Result:
    return await match(services, request)


# (method, shape, type, operation) -> handler
_OPERATIONS: dict[tuple[str, str, str | None, str], Handler] = {
    ("POST", "type/id/$op", "Person", "link"): _link,
    ("POST", "type/id/$op", "Person", "unlink"): _unlink,
    ("POST", "type/id/$op", "Person", "merge"): _merge,
    ("POST", "type/id/$op", "Person", "unmerge"): _unmerge,
    ("GET", "type/id/$op", "Person", "locate"): _locate,
    ("GET", "type/id/$op", "Person", "patients"): _patients,
    ("GET", "type/id/$op", "Person", "audit"): _audit,
    ("GET", "$op", None, "review"): _review,
    ("GET", "$op", None, "review-compare"): _review_compare,
    ("POST", "$op", None, "review-decide"): _review_decide,
    ("POST", "type/$op", "Patient", "match"): _match,
}
_READS = frozenset({"GET", "HEAD"})
_SEARCHES = frozenset({"_search", "type/_search"})
_CANONICAL = "https://careweave.org/fhir/OperationDefinition/"

IDENTITY_OPERATIONS: dict[str, str] = {
    "link": _CANONICAL + "Person-link",
    "unlink": _CANONICAL + "Person-unlink",
    "merge": _CANONICAL + "Person-merge",
    "unmerge": _CANONICAL + "Person-unmerge",
    "locate": _CANONICAL + "Person-locate",
    "patients": _CANONICAL + "Person-patients",
    "audit": _CANONICAL + "Person-audit",
    "review": _CANONICAL + "mpi-review",
    "review-compare": _CANONICAL + "mpi-review-compare",
    "review-decide": _CANONICAL + "mpi-review-decide",
    "match": "http://hl7.org/fhir/OperationDefinition/Patient-match",
}
"""Canonical URL of every operation served at /mpi/fhir (one per row of ``_OPERATIONS``)."""


def _operation_entries(level: str, type_: str | None) -> list[dict[str, str]]:
    names = sorted({op for (_, shape, t, op) in _OPERATIONS if shape == level and t == type_})
    return [{"name": name, "definition": IDENTITY_OPERATIONS[name]} for name in names]


def identity_capabilities(services: Services, base_url: str) -> dict[str, Any]:
    """The CapabilityStatement of the identity space (rule 1): Person read, vread, search and
    history, Patient ``$match``, the MPI operations; no write interaction."""
    registry = services.search_params
    person: dict[str, Any] = {
        "type": "Person",
        "profile": "http://hl7.org/fhir/StructureDefinition/Person",
        "interaction": [
            {"code": code} for code in ("read", "vread", "search-type", "history-instance", "history-type")
        ],
        "versioning": "versioned",
        "readHistory": True,
        "updateCreate": False,
        "conditionalCreate": False,
        "conditionalRead": "full-support",
        "conditionalUpdate": False,
        "conditionalDelete": "not-supported",
        "searchParam": [
            {"name": p.code, "definition": p.url, "type": p.type}
            for p in registry.for_type("Person")
            if is_supported("Person", p.code, registry)
        ],
        "operation": _operation_entries("type/id/$op", "Person"),
    }
    patient = {
        "type": "Patient",
        "profile": "http://hl7.org/fhir/StructureDefinition/Patient",
        "operation": _operation_entries("type/$op", "Patient"),
    }
    return {
        "resourceType": "CapabilityStatement",
        "status": "active",
        "date": services.started_at,
        "publisher": "careweave",
        "kind": "instance",
        "software": {"name": "careweave", "version": services.software_version},
        "implementation": {
            "description": "careweave master patient index: the identity space (Persons), read-only; "
            "Persons change only through the MPI operations",
            "url": base_url,
        },
        "fhirVersion": FHIR_VERSION,
        "format": ["application/fhir+json", "json"],
        "rest": [
            {
                "mode": "server",
                "resource": [person, patient],
                "interaction": [{"code": "search-system"}, {"code": "history-system"}],
                "operation": _operation_entries("$op", None),
            }
        ],
    }


async def dispatch_identity(services: Services, request: Request, shape: str | None = None) -> Result:
    """Serve a request to /mpi/fhir (module rules); errors come back as OperationOutcome."""
    if shape is None:
        where = route(request.path)
        shape, request = where.shape, routed(request, where)
    try:
        identity = services.identity
        if identity is None:
            raise error("CW-8010", "the master patient index is not running on this server")
        if shape.endswith("$op"):
            handler = _OPERATIONS.get((request.method, shape, request.type, request.operation or ""))
            if handler is None:
                raise error("CW-1012", f"no MPI operation ${request.operation} for {request.method} here")
            return await handler(services, identity, request)
        if shape == "metadata":
            if request.method not in _READS:
                raise error("CW-8009", "the identity space changes only through its operations")
            return Result(200, identity_capabilities(services, request.base_url))
        if request.type is not None and request.type != "Person":
            raise error("CW-1004", f"the identity space holds Persons only, not {request.type}")
        if request.method in _READS or (request.method == "POST" and shape in _SEARCHES):
            return await dispatch(services, request, shape)
        raise error("CW-8009", "the identity space changes only through its operations ($link, $merge, ...)")
    except CareweaveError as exc:
        return error_result(exc)
    except Exception:
        log.exception("unexpected error in %s /mpi/fhir/%s", request.method, request.path.split("?")[0])
        return error_result(error("CW-1000", "internal error; the request was not completed"))
