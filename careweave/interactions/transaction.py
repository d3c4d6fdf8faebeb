"""batch and transaction: POST [base] with a Bundle (http.html#transaction).

Rules:
1. A batch runs each entry on its own, as if it were its own HTTP request (same routing, same
   rules), and answers a status per entry; one entry failing does not affect the others.
2. A transaction is atomic. Outside the writer: conditional creates, updates and deletes and
   conditional references are resolved by search, POST entries get their ids, references to
   entries' fullUrls are rewritten, and every resource is validated and indexed. Then one write
   job re-runs every conditional search it relied on (if any answer changed, a concurrent write got
   in: the whole transaction is retried) and stores everything in the order DELETE, POST,
   PUT/PATCH. GET entries run after the commit. Any failure stores nothing and answers an
   OperationOutcome naming the failing entry (Bundle.entry[n]) with that entry's status.
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

import orjson

from careweave.bundles.plan import (
    ORDER,
    BundleEntry,
    conditional_references,
    parse_bundle,
    rewrite_references,
)
from careweave.errors import CareweaveError, error
from careweave.fhir.fhirpatch import apply_fhirpath_patch, is_fhirpath_patch
from careweave.fhir.model import format_instant
from careweave.interactions.common import check_id, check_type, criteria_plan, parse_body, prepare
from careweave.interactions.context import Services
from careweave.interactions.patch import apply_json_patch
from careweave.interactions.request import Request
from careweave.interactions.result import STATUS, Result, operation_outcome
from careweave.interactions.searchparams import after_commit, effects_of
from careweave.search.plan import QueryPlan
from careweave.store import writes
from careweave.store.base import StoredResource, Transaction

__all__ = ["bundle"]

_ATTEMPTS = 3
_REASONS = {
    200: "OK",
    201: "Created",
    204: "No Content",
    304: "Not Modified",
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    406: "Not Acceptable",
    409: "Conflict",
    410: "Gone",
    412: "Precondition Failed",
    413: "Payload Too Large",
    415: "Unsupported Media Type",
    422: "Unprocessable Entity",
    500: "Internal Server Error",
    503: "Service Unavailable",
}


class _Retry(Exception):
    """A conditional decision no longer holds inside the transaction: start again."""


@dataclass(slots=True)
class _Step:
    entry: BundleEntry
    targets: list[tuple[str, str]] = field(default_factory=list)  # DELETE targets
    id: str | None = None
    prepared: writes.Prepared | None = None
    exists: StoredResource | None = None  # POST with ifNoneExist that matched
    expected_version: int | None = None  # PATCH: the version the patch was applied to
    client_if_match: int | None = None
    effect: Callable[[Transaction, Any], Any] | None = None


async def bundle(services: Services, request: Request) -> Result:
    body = parse_body(request, "Bundle")
    kind, entries = parse_bundle(body, request.base_url)
    if kind == "batch":
        return await _batch(services, request, entries)
    for _ in range(_ATTEMPTS):
        try:
            return await _transaction(services, request, entries)
        except _Retry:
            continue
    raise error("CW-9001", "the transaction kept meeting concurrent writes; try again")


# -- batch ------------------------------------------------------------------------------------
async def _dispatch(services: Services, request: Request) -> Result:
    # dispatch routes POST [base] to this module, so it is imported when first needed
    from careweave.interactions.dispatch import dispatch

    return await dispatch(services, request)


async def _batch(services: Services, request: Request, entries: list[BundleEntry]) -> Result:
    out = []
    for entry in entries:
        try:
            sub = _sub_request(request, entry)
        except CareweaveError as exc:
            out.append(_error_entry(exc))
            continue
        result = await _dispatch(services, sub)
        out.append(_response_entry(request, result, entry))
    return Result(200, {"resourceType": "Bundle", "type": "batch-response", "entry": out})


def _sub_request(request: Request, entry: BundleEntry) -> Request:
    headers = {
        k: v
        for k, v in (
            ("if-match", entry.if_match),
            ("if-none-exist", entry.if_none_exist),
            ("if-none-match", entry.if_none_match),
            ("if-modified-since", entry.if_modified_since),
            ("prefer", request.header("prefer")),
        )
        if v
    }
    body = None
    if entry.resource is not None:
        body, content_type = (
            _patch_body(entry)
            if entry.method == "PATCH"
            else (orjson.dumps(entry.resource), "application/fhir+json")
        )
        headers["content-type"] = content_type
    return Request(
        tenant=request.tenant,
        method=entry.method,
        params=tuple(entry.query),
        body=body,
        headers=headers,
        base_url=request.base_url,
        path=entry.path,
    )


def _patch_body(entry: BundleEntry) -> tuple[bytes, str]:
    resource = entry.resource or {}
    if resource.get("resourceType") == "Binary":
        try:
            data = base64.b64decode(resource.get("data", ""), validate=True)
        except ValueError:
            raise error("CW-2010", f"entry {entry.index}: the Binary patch is not base64") from None
        return data, str(resource.get("contentType", "application/json-patch+json"))
    return orjson.dumps(resource), "application/fhir+json"


def _status(code: int) -> str:
    return f"{code} {_REASONS.get(code, '')}".strip()


def _response_entry(request: Request, result: Result, entry: BundleEntry) -> dict[str, Any]:
    response: dict[str, Any] = {"status": _status(result.status)}
    if result.location:
        response["location"] = result.location
    if result.etag:
        response["etag"] = result.etag
    if result.last_modified_ms is not None:
        response["lastModified"] = format_instant(result.last_modified_ms)
    out: dict[str, Any] = {"response": response}
    body = result.body
    if isinstance(body, bytes):
        body = orjson.loads(body) if body else None
    if isinstance(body, dict):
        if body.get("resourceType") == "OperationOutcome" and result.status >= 400:
            response["outcome"] = body
        elif entry.method in ("GET", "HEAD") or request.prefer("return") != "minimal":
            out["resource"] = body
    return out


def _error_entry(exc: CareweaveError) -> dict[str, Any]:
    status = STATUS[exc.category]
    return {"response": {"status": _status(status), "outcome": operation_outcome(exc.all_issues())}}


# -- transaction ------------------------------------------------------------------------------
def _failed(entry: BundleEntry, exc: CareweaveError) -> CareweaveError:
    """The transaction's error: the entry's own, located at Bundle.entry[n]."""
    issues = [i for i in exc.all_issues()]
    where = entry.where
    located = tuple(
        type(i)(
            i.severity,
            i.code,
            f"entry {entry.index} ({entry.method} {entry.url}): {i.diagnostics}",
            (where, *i.expression),
            i.details,
        )
        for i in issues
    )
    return CareweaveError(exc.code, f"entry {entry.index} failed: {exc.diagnostics}", located)


async def _ids(services: Services, request: Request, plan: QueryPlan, limit: int) -> list[tuple[str, str]]:
    page = await services.store.search(request.tenant, replace(plan, count=limit, sort=()))
    return [(r.type, r.id) for r in page.matches]


async def _transaction(services: Services, request: Request, entries: list[BundleEntry]) -> Result:
    checks: list[tuple[QueryPlan, list[tuple[str, str]]]] = []
    mapping: dict[str, str] = {}
    steps: dict[int, _Step] = {}
    ordered = sorted(entries, key=lambda e: (ORDER[e.method], e.index))
    for entry in ordered:
        try:
            if entry.method in ("GET", "HEAD"):
                continue
            steps[entry.index] = await _resolve(services, request, entry, checks, mapping)
        except CareweaveError as exc:
            raise _failed(entry, exc) from None
    for ref in sorted({r for e in entries if e.resource for r in conditional_references(e.resource)}):
        type_, _, query = ref.partition("?")
        plan = await criteria_plan(
            services, request.tenant, check_type(services, type_), query, request.base_url
        )
        found = await _ids(services, request, plan, 2)
        if len(found) != 1:
            code = "CW-2005" if found else "CW-2001"
            raise error(
                code, f"the conditional reference {ref} matches {len(found)} resources", expression=["Bundle"]
            )
        checks.append((plan, found))
        mapping[ref] = f"{found[0][0]}/{found[0][1]}"
    for entry in ordered:
        step = steps.get(entry.index)
        if step is None or entry.method == "DELETE":
            continue
        try:
            await _prepare(services, request, step, mapping)
        except CareweaveError as exc:
            raise _failed(entry, exc) from None
    results = await services.store.write(request.tenant, _write_job(checks, ordered, steps))
    services.wake_events()
    if any(s.effect is not None for s in steps.values()):
        after_commit(services, request.tenant, "SearchParameter")
    return Result(200, await _response(services, request, entries, steps, results))


async def _resolve(
    services: Services,
    request: Request,
    entry: BundleEntry,
    checks: list[tuple[QueryPlan, list[tuple[str, str]]]],
    mapping: dict[str, str],
) -> _Step:
    type_ = check_type(services, entry.type)
    step = _Step(entry)
    if entry.method == "DELETE":
        if entry.query:
            plan = await criteria_plan(services, request.tenant, type_, entry.query, request.base_url)
            found = await _ids(services, request, plan, 3)
            if len(found) > 1 and not request.tenant.setting("conditional_delete_multiple", False):
                raise error("CW-2005", "the conditional delete matches more than one resource")
            checks.append((plan, found))
            step.targets = found
        else:
            step.targets = [(type_, check_id(entry.id))]
        step.effect = effects_of(services, type_, None)
        return step
    if entry.method == "POST":
        step.id = services.new_id()
        if entry.if_none_exist:
            plan = await criteria_plan(services, request.tenant, type_, entry.if_none_exist, request.base_url)
            found = await _ids(services, request, plan, 2)
            if len(found) > 1:
                raise error("CW-2005", "ifNoneExist matches more than one resource")
            checks.append((plan, found))
            if found:
                step.id = found[0][1]
                step.exists = await services.store.read(request.tenant, type_, step.id)
    elif entry.query:  # conditional PUT or PATCH
        plan = await criteria_plan(services, request.tenant, type_, entry.query, request.base_url)
        found = await _ids(services, request, plan, 2)
        if len(found) > 1:
            raise error("CW-2005", "the conditional criteria match more than one resource")
        checks.append((plan, found))
        body_id = (entry.resource or {}).get("id")
        if found:
            if body_id is not None and body_id != found[0][1] and entry.method == "PUT":
                raise error("CW-2008", f"the criteria match {found[0][1]}, the body has {body_id}")
            step.id = found[0][1]
        elif entry.method == "PATCH":
            raise error("CW-2001", "nothing matches the conditional patch criteria")
        else:
            step.id = body_id if isinstance(body_id, str) else services.new_id()
    else:
        step.id = check_id(entry.id)
        if entry.method == "PUT" and (entry.resource or {}).get("id") != step.id:
            raise error("CW-1008", f"the resource id does not match {entry.url}")
    if entry.if_match:
        step.client_if_match = _version(entry.if_match)
    if entry.full_url:
        mapping[entry.full_url] = f"{type_}/{step.id}"
    return step


def _version(tag: str) -> int:
    text = tag.strip()
    text = text[2:] if text.startswith("W/") else text
    try:
        return int(text.strip('"'))
    except ValueError:
        raise error("CW-1014", f'ifMatch must be an ETag like W/"3", not {tag!r}') from None


async def _prepare(services: Services, request: Request, step: _Step, mapping: dict[str, str]) -> None:
    entry = step.entry
    assert step.id is not None
    type_ = entry.type or ""
    if step.exists is not None:
        return  # ifNoneExist matched: nothing to store
    if entry.method == "PATCH":
        current = await services.store.read(request.tenant, type_, step.id)
        if current is None or current.body is None or current.deleted:
            raise error("CW-2001", f"{type_}/{step.id} is not known")
        step.expected_version = current.version
        document = orjson.loads(current.body)
        patch = entry.resource or {}
        if is_fhirpath_patch(patch):
            resource = apply_fhirpath_patch(services.engine, services.model, document, patch)
        else:
            resource = apply_json_patch(document, orjson.loads(_patch_body(entry)[0]))
    else:
        resource = dict(entry.resource or {})
        resource["id"] = step.id
    rewrite_references(resource, mapping, request.base_url)
    step.prepared = await prepare(services, request, resource)
    step.effect = effects_of(services, type_, resource)


def _write_job(
    checks: list[tuple[QueryPlan, list[tuple[str, str]]]],
    ordered: list[BundleEntry],
    steps: dict[int, _Step],
) -> Callable[[Transaction], dict[int, Any]]:
    def run(tx: Transaction) -> dict[int, Any]:
        for plan, expected in checks:
            if sorted(tx.search_ids(plan, len(expected) + 1)) != sorted(expected):
                raise _Retry()
        results: dict[int, Any] = {}
        for entry in ordered:
            step = steps.get(entry.index)
            if step is None:
                continue
            try:
                results[entry.index] = _write_entry(tx, step)
            except CareweaveError as exc:
                if exc.code == "CW-2004" and step.client_if_match is None and (entry.method == "PATCH"):
                    raise _Retry() from None
                raise _failed(entry, exc) from None
        return results

    return run


def _write_entry(tx: Transaction, step: _Step) -> Any:
    entry = step.entry
    if entry.method == "DELETE":
        outcomes = [writes.delete(tx, t, i) for t, i in step.targets]
        if step.effect is not None:
            step.effect(tx, outcomes)
        return outcomes
    if step.exists is not None:
        return writes.Outcome(step.exists, created=False, changed=False)
    assert step.prepared is not None and step.id is not None
    if entry.method == "POST":
        outcome = writes.create(tx, step.prepared, step.id)
    elif entry.method == "PATCH":
        version = step.client_if_match if step.client_if_match is not None else step.expected_version
        outcome = writes.update(tx, step.prepared, step.id, version, method="PATCH")
    else:
        outcome = writes.update(tx, step.prepared, step.id, step.client_if_match)
    if step.effect is not None:
        step.effect(tx, outcome)
    return outcome


async def _response(
    services: Services,
    request: Request,
    entries: list[BundleEntry],
    steps: dict[int, _Step],
    results: dict[int, Any],
) -> dict[str, Any]:
    out = []
    for entry in entries:
        if entry.method in ("GET", "HEAD"):
            result = await _dispatch(services, _sub_request(request, entry))
            out.append(_response_entry(request, result, entry))
            continue
        outcome = results.get(entry.index)
        if isinstance(outcome, list):  # DELETE
            deleted = [o.stored for o in outcome if o.changed and o.stored is not None]
            response: dict[str, Any] = {"status": _status(204)}
            if len(deleted) == 1:
                response["etag"] = f'W/"{deleted[0].version}"'
            out.append({"response": response})
            continue
        assert outcome is not None and outcome.stored is not None
        stored = outcome.stored
        status = 201 if outcome.created else 200
        response = {
            "status": _status(status),
            "location": f"{stored.type}/{stored.id}/_history/{stored.version}",
            "etag": f'W/"{stored.version}"',
            "lastModified": format_instant(stored.updated_ms),
        }
        item: dict[str, Any] = {
            "fullUrl": f"{request.base_url}/{stored.type}/{stored.id}",
            "response": response,
        }
        prefer = request.prefer("return")
        if prefer == "representation" and stored.body is not None:
            item["resource"] = orjson.Fragment(stored.body)
        elif prefer == "OperationOutcome":
            response["outcome"] = operation_outcome([])
        out.append(item)
    return {"resourceType": "Bundle", "type": "transaction-response", "entry": out}
