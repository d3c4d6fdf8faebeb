"""create: POST [base]/[type], conditional with If-None-Exist (http.html#create, #ccreate)."""

from __future__ import annotations

from careweave.interactions.common import (
    check_type,
    criteria_plan,
    parse_body,
    prepare,
    stored_result,
    write,
)
from careweave.interactions.context import Services
from careweave.interactions.request import Request
from careweave.interactions.result import Result
from careweave.store import writes

__all__ = ["create"]


async def create(services: Services, request: Request) -> Result:
    type_ = check_type(services, request.type)
    resource = parse_body(request, type_)
    # The spec: an id in the body of a create is ignored; the server assigns its own.
    new_id = services.new_id()
    resource["id"] = new_id
    prepared = await prepare(services, request, resource)
    condition = request.header("if-none-exist")
    plan = None
    if condition is not None:
        plan = await criteria_plan(services, request.tenant, type_, condition, request.base_url)
    outcome = await write(
        services, request, type_, lambda tx: writes.create(tx, prepared, new_id, plan), resource
    )
    assert outcome.stored is not None
    if not outcome.created:
        return stored_result(request, outcome.stored, 200, write=True)
    return stored_result(request, outcome.stored, 201, write=True)
