"""delete: DELETE [base]/[type]/[id], and conditional delete DELETE [base]/[type]?criteria."""

from __future__ import annotations

from careweave.interactions.common import check_id, check_type, criteria_plan, etag, write
from careweave.interactions.context import Services
from careweave.interactions.request import Request
from careweave.interactions.result import Result, information
from careweave.store import writes

__all__ = ["conditional_delete", "delete"]


async def delete(services: Services, request: Request) -> Result:
    type_ = check_type(services, request.type)
    id_ = check_id(request.id)
    outcome = await write(services, request, type_, lambda tx: writes.delete(tx, type_, id_), None)
    if outcome.changed and outcome.stored is not None:
        return Result(
            200,
            information(f"{type_}/{id_} deleted (version {outcome.stored.version})"),
            etag=etag(outcome.stored.version),
        )
    return Result(204)


async def conditional_delete(services: Services, request: Request) -> Result:
    type_ = check_type(services, request.type)
    plan = await criteria_plan(services, request.tenant, type_, list(request.params), request.base_url)
    multiple = request.tenant.setting("conditional_delete_multiple", False) is True
    outcomes = await write(
        services, request, type_, lambda tx: writes.conditional_delete(tx, plan, multiple), None
    )
    deleted = [o.stored for o in outcomes if o.changed and o.stored is not None]
    if not deleted:
        return Result(204)
    names = ", ".join(f"{s.type}/{s.id}" for s in deleted)
    return Result(200, information(f"deleted {names}"))
