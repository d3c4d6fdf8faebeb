"""$validate at type and instance level (operation-resource-validate.html).

The answer is 200 with an OperationOutcome listing every issue whether or not the resource is valid:
the operation succeeded; the outcome says whether the content would be accepted.
"""

from __future__ import annotations

from typing import Any

import orjson

from careweave.errors import error
from careweave.interactions.common import check_type, parse_body
from careweave.interactions.context import Services
from careweave.interactions.request import Request
from careweave.interactions.result import Result, operation_outcome

__all__ = ["validate"]


def _resource_from_parameters(body: dict[str, Any]) -> tuple[dict[str, Any] | None, str | None]:
    resource, mode = None, None
    for parameter in body.get("parameter", ()):
        if not isinstance(parameter, dict):
            continue
        if parameter.get("name") == "resource" and isinstance(parameter.get("resource"), dict):
            resource = parameter["resource"]
        elif parameter.get("name") == "mode":
            mode = parameter.get("valueCode")
    return resource, mode


async def validate(services: Services, request: Request) -> Result:
    type_ = check_type(services, request.type)
    mode = request.param("mode")
    resource: dict[str, Any] | None
    if request.method == "GET" or not request.body:
        if request.id is None:
            raise error("CW-1007", "$validate at type level needs the resource in the body")
        stored = await services.store.read(request.tenant, type_, request.id)
        if stored is None or stored.body is None:
            raise error("CW-2001", f"{type_}/{request.id} is not known")
        resource = orjson.loads(stored.body)
    else:
        body = parse_body(request)
        if body.get("resourceType") == "Parameters" and type_ != "Parameters":
            resource, mode = _resource_from_parameters(body)
            if resource is None and mode != "delete":
                raise error("CW-1007", "the Parameters have no 'resource' to validate")
        else:
            resource = body
    if mode == "delete":
        return Result(200, operation_outcome([]))
    assert resource is not None
    if resource.get("resourceType") != type_:
        raise error("CW-1006", f"the resource is a {resource.get('resourceType')}, not a {type_}")
    if mode == "update" and request.id is not None and resource.get("id") != request.id:
        raise error("CW-1008", "the resource id does not match the URL")
    issues = services.validate(resource, request.tenant)
    return Result(200, operation_outcome(issues))
