"""update: PUT [base]/[type]/[id], and conditional update PUT [base]/[type]?criteria."""

from __future__ import annotations

from careweave.errors import error
from careweave.interactions.common import (
    check_id,
    check_type,
    criteria_plan,
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

__all__ = ["conditional_update", "update"]


async def update(services: Services, request: Request) -> Result:
    type_ = check_type(services, request.type)
    id_ = check_id(request.id)
    resource = parse_body(request, type_)
    if "id" not in resource:
        raise error("CW-1009", "an update needs the resource id in the body", expression=["id"])
    if resource["id"] != id_:
        raise error(
            "CW-1008",
            f"the body has id {resource['id']!r} but the URL has {id_!r}",
            expression=[f"{type_}.id"],
        )
    if_match = parse_if_match(request)
    prepared = await prepare(services, request, resource)
    outcome = await write(
        services, request, type_, lambda tx: writes.update(tx, prepared, id_, if_match), resource
    )
    assert outcome.stored is not None
    return stored_result(request, outcome.stored, 201 if outcome.created else 200, write=True)


async def conditional_update(services: Services, request: Request) -> Result:
    type_ = check_type(services, request.type)
    plan = await criteria_plan(services, request.tenant, type_, list(request.params), request.base_url)
    resource = parse_body(request, type_)
    body_id = resource.get("id")
    new_id = body_id if isinstance(body_id, str) else services.new_id()
    to_validate = {**resource, "id": new_id}
    prepared = await prepare(services, request, to_validate)
    if body_id is None:
        prepared = writes.Prepared(prepared.type, resource, prepared.index)
    outcome = await write(
        services, request, type_, lambda tx: writes.conditional_update(tx, prepared, plan, new_id), resource
    )
    assert outcome.stored is not None
    return stored_result(request, outcome.stored, 201 if outcome.created else 200, write=True)
