"""patch: PATCH [base]/[type]/[id] with JSON Patch (RFC 6902) or FHIRPath Patch (http.html#patch).

The patch is applied to the current version outside the writer, then stored only if that version
is still current (optimistic concurrency; retried a few times when another write came first, unless
the client gave If-Match, in which case a changed version is the client's 412).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jsonpatch
import orjson

from careweave.errors import CareweaveError, error
from careweave.fhir.fhirpatch import apply_fhirpath_patch
from careweave.interactions.common import (
    check_id,
    check_type,
    parse_body,
    parse_if_match,
    prepare,
    stored_result,
    write,
)
from careweave.interactions.context import Services
from careweave.interactions.request import Request
from careweave.interactions.result import Result
from careweave.store import writes
from careweave.store.base import Transaction

__all__ = ["apply_json_patch", "patch"]

_ATTEMPTS = 5


def _json_patch(request: Request) -> list[dict[str, Any]]:
    try:
        operations = orjson.loads(request.body or b"")
    except orjson.JSONDecodeError as exc:
        raise error("CW-1001", f"the JSON Patch document is not valid JSON: {exc}") from None
    if not isinstance(operations, list) or not all(isinstance(op, dict) for op in operations):
        raise error("CW-2010", "a JSON Patch document is an array of operation objects")
    return operations


def apply_json_patch(document: dict[str, Any], operations: list[dict[str, Any]]) -> dict[str, Any]:
    try:
        result = jsonpatch.JsonPatch(operations).apply(document)
    except jsonpatch.JsonPatchTestFailed as exc:
        raise error("CW-2009", f"a JSON Patch test failed: {exc}") from None
    except jsonpatch.InvalidJsonPatch as exc:
        raise error("CW-2010", f"the JSON Patch document is invalid: {exc}") from None
    except (jsonpatch.JsonPatchException, jsonpatch.JsonPointerException) as exc:
        raise error("CW-2009", f"the JSON Patch cannot be applied: {exc}") from None
    except (TypeError, KeyError, IndexError, ValueError) as exc:
        raise error("CW-2009", f"the JSON Patch cannot be applied: {exc}") from None
    if not isinstance(result, dict):
        raise error("CW-2009", "the patched document is not a resource")
    return result


def _update(prepared: writes.Prepared, id_: str, version: int) -> Callable[[Transaction], writes.Outcome]:
    def run(tx: Transaction) -> writes.Outcome:
        return writes.update(tx, prepared, id_, version, method="PATCH")

    return run


def _patcher(services: Services, request: Request) -> Callable[[dict[str, Any]], dict[str, Any]]:
    """The function that patches a resource, from the request's patch document."""
    content_type = (request.header("content-type") or "").split(";")[0].strip().lower()
    if content_type == "application/json-patch+json":
        operations = _json_patch(request)

        def json_patch(doc: dict[str, Any]) -> dict[str, Any]:
            return apply_json_patch(doc, operations)

        return json_patch
    if content_type in ("application/fhir+json", "application/json", "application/json+fhir"):
        parameters = parse_body(request, "Parameters")

        def fhirpath_patch(doc: dict[str, Any]) -> dict[str, Any]:
            return apply_fhirpath_patch(services.engine, services.model, doc, parameters)

        return fhirpath_patch
    raise error(
        "CW-1002",
        "PATCH takes a JSON Patch (application/json-patch+json) or a FHIRPath Patch "
        "(a Parameters resource, application/fhir+json)",
    )


async def patch(services: Services, request: Request) -> Result:
    type_ = check_type(services, request.type)
    id_ = check_id(request.id)
    apply = _patcher(services, request)
    if_match = parse_if_match(request)
    for _ in range(_ATTEMPTS):
        current = await services.store.read(request.tenant, type_, id_)
        if current is None:
            raise error("CW-2001", f"{type_}/{id_} is not known")
        if current.deleted or current.body is None:
            raise error("CW-2002", f"{type_}/{id_} was deleted")
        if if_match is not None and if_match != current.version:
            raise error(
                "CW-2004",
                f"If-Match asks for version {if_match}; the current version is {current.version}",
            )
        patched = apply(orjson.loads(current.body))
        if patched.get("resourceType") != type_ or patched.get("id") != id_:
            raise error("CW-2009", "a patch must not change the resourceType or id")
        prepared = await prepare(services, request, patched)
        try:
            outcome = await write(services, request, type_, _update(prepared, id_, current.version), patched)
        except CareweaveError as exc:
            if exc.code == "CW-2004" and if_match is None:
                continue  # another write came first: apply the patch to the new version
            raise
        assert outcome.stored is not None
        return stored_result(request, outcome.stored, 200, write=True)
    raise error("CW-9001", f"{type_}/{id_} is being changed by others; try again")
