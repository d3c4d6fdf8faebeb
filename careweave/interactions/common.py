"""Helpers shared by the interactions: body parsing, checks, results for stored versions."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar
from urllib.parse import parse_qsl

import orjson

from careweave.errors import CareweaveError, Issue, error
from careweave.fhir.model import is_valid_id
from careweave.interactions.context import Services
from careweave.interactions.request import Request
from careweave.interactions.result import Result, information
from careweave.interactions.searchparams import after_commit, effects_of
from careweave.search.params import SearchContext, parse_search
from careweave.search.plan import QueryPlan
from careweave.store.base import StoredResource, Tenant, Transaction
from careweave.store.writes import Prepared

T = TypeVar("T")

__all__ = [
    "check_id",
    "check_type",
    "criteria_plan",
    "etag",
    "parse_body",
    "parse_if_match",
    "prepare",
    "stored_result",
    "write",
]


def check_type(services: Services, type_: str | None) -> str:
    if type_ is None or type_ not in services.resource_types:
        raise error("CW-1004", f"unknown resource type {type_!r}")
    return type_


def check_id(id_: str | None) -> str:
    if id_ is None or not is_valid_id(id_):
        raise error("CW-1005", f"{id_!r} is not a valid FHIR id ([A-Za-z0-9-.], 1 to 64 characters)")
    return id_


def parse_body(request: Request, expected_type: str | None = None) -> dict[str, Any]:
    """The request body as a FHIR resource: JSON object with a resourceType (checked against URL)."""
    if not request.body or not request.body.strip():
        raise error("CW-1007", "the request has no body")
    try:
        resource = orjson.loads(request.body)
    except orjson.JSONDecodeError as exc:
        raise error("CW-1001", f"the body is not valid JSON: {exc}") from None
    if not isinstance(resource, dict):
        raise error("CW-1015", "the body must be a JSON object (a FHIR resource)")
    rtype = resource.get("resourceType")
    if not isinstance(rtype, str):
        raise error("CW-1015", "the body has no resourceType", expression=["resourceType"])
    if expected_type is not None and rtype != expected_type:
        raise error(
            "CW-1006",
            f"the body is a {rtype} but the URL is for {expected_type}",
            expression=["resourceType"],
        )
    return resource


async def prepare(services: Services, request: Request, resource: dict[str, Any]) -> Prepared:
    """Validate (every issue at once) and index a resource about to be stored."""
    issues = services.validate(resource, request.tenant)
    check = services.check_subscription  # [events] needs the tenant's search parameters and topics
    if check is not None and resource["resourceType"] == "Subscription" and not _refused(issues):
        issues = issues + await check(resource, request.tenant)
    errors = [i for i in issues if i.is_error]
    if errors:
        # only profile issues (tenant setting validate_profiles) or a Subscription careweave cannot
        # serve (CW-6001): 422; any base R4 issue: 400
        code = next((c for c in ("CW-3002", "CW-6001") if all(i.details == c for i in errors)), "CW-3001")
        raise CareweaveError(code, f"{len(errors)} validation error(s)", issues)
    indexer = (await services.search.of(request.tenant)).indexer
    return Prepared(resource["resourceType"], resource, indexer.index(resource))


def _refused(issues: list[Issue]) -> bool:
    return any(i.is_error for i in issues)


async def write(
    services: Services,
    request: Request,
    type_: str,
    fn: Callable[[Transaction], T],
    resource: dict[str, Any] | None,
) -> T:
    """Run a write in the store, with the side effects writes of ``type_`` have (custom search
    parameters for SearchParameter) in the same transaction."""
    effect = effects_of(services, type_, resource)
    if effect is None:
        done = await services.store.write(request.tenant, fn)
        services.wake_events()
        return done

    def with_effect(tx: Transaction) -> T:
        outcome = fn(tx)
        effect(tx, outcome)
        return outcome

    result = await services.store.write(request.tenant, with_effect)
    services.wake_events()
    after_commit(services, request.tenant, type_)
    return result


def etag(version: int) -> str:
    return f'W/"{version}"'


def parse_if_match(request: Request) -> int | None:
    raw = request.header("if-match")
    if raw is None:
        return None
    text = raw.strip()
    if text.startswith("W/"):
        text = text[2:]
    text = text.strip('"')
    try:
        return int(text)
    except ValueError:
        raise error("CW-1014", f'If-Match must be an ETag like W/"3", not {raw!r}') from None


def location(request: Request, stored: StoredResource) -> str:
    return f"{request.base_url}/{stored.type}/{stored.id}/_history/{stored.version}"


def stored_result(request: Request, stored: StoredResource, status: int, *, write: bool = False) -> Result:
    """The response for a stored version, honouring ``Prefer: return=`` on writes."""
    result = Result(
        status=status,
        body=stored.body,
        etag=etag(stored.version),
        last_modified_ms=stored.updated_ms,
    )
    if write:
        result.location = location(request, stored)
        prefer = request.prefer("return")
        if prefer == "minimal":
            result.body = None
        elif prefer == "OperationOutcome":
            result.body = information(f"{stored.type}/{stored.id} version {stored.version} stored")
    return result


async def criteria_plan(
    services: Services,
    tenant: Tenant,
    type_: str,
    query: str | list[tuple[str, str]],
    request_base: str = "",
) -> QueryPlan:
    """Search criteria of a conditional operation; unknown parameters are an error here."""
    items = parse_qsl(query, keep_blank_values=True) if isinstance(query, str) else query
    items = [(k, v) for k, v in items if k not in ("_format", "_pretty")]
    if not items:
        raise error("CW-2006", "a conditional operation needs search criteria")
    registry = (await services.search.of(tenant)).registry
    ctx = SearchContext(registry, services.resource_types, request_base, services.expand)
    parsed = parse_search((type_,), items, ctx, count=2, max_count=services.max_count)
    if parsed.ignored:
        raise error(
            "CW-5001",
            f"unsupported search parameter(s) in the conditional criteria: {', '.join(parsed.ignored)}",
        )
    return parsed.plan
