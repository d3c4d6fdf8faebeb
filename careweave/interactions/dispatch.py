"""FHIR REST URL -> interaction, and errors -> OperationOutcome, in one place.

Rules:
1. :data:`HANDLERS` binds a handler to every row of ``surface.SURFACE``, the whole REST surface;
   the CapabilityStatement is generated from that table, so it cannot drift from what is served.
2. URL shapes are those of the FHIR REST spec, relative to the service base: ``type``,
   ``type/id``, ``type/id/_history/vid``, ``type/_search``, ``$op``, ``type/$op``, ``type/id/$op``...
   Batch and transaction entries are routed by the same table.
3. :func:`dispatch` never raises for anything a client sent: every failure becomes an
   OperationOutcome with the category's status. Unexpected exceptions become 500 with no detail
   of the data (it is logged, without the body).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace

from careweave.errors import CareweaveError, error
from careweave.interactions.capabilities import capabilities
from careweave.interactions.context import Services
from careweave.interactions.create import create
from careweave.interactions.delete import conditional_delete, delete
from careweave.interactions.history import history
from careweave.interactions.operations import OPERATIONS
from careweave.interactions.patch import patch
from careweave.interactions.read import read, vread
from careweave.interactions.request import Request
from careweave.interactions.result import Result, error_result
from careweave.interactions.search import search_compartment, search_system, search_type
from careweave.interactions.transaction import bundle
from careweave.interactions.update import conditional_update, update

__all__ = ["HANDLERS", "Route", "dispatch", "route", "routed"]

log = logging.getLogger("careweave.interactions")

Handler = Callable[[Services, Request], Awaitable[Result]]

HANDLERS: dict[tuple[str, str], Handler] = {
    ("GET", "metadata"): capabilities,
    ("GET", ""): search_system,
    ("POST", ""): bundle,
    ("POST", "_search"): search_system,
    ("GET", "type/id/compartment"): search_compartment,
    ("GET", "_history"): history,
    ("POST", "type"): create,
    ("GET", "type"): search_type,
    ("POST", "type/_search"): search_type,
    ("PUT", "type"): conditional_update,
    ("DELETE", "type"): conditional_delete,
    ("GET", "type/_history"): history,
    ("GET", "type/id"): read,
    ("PUT", "type/id"): update,
    ("PATCH", "type/id"): patch,
    ("DELETE", "type/id"): delete,
    ("GET", "type/id/_history"): history,
    ("GET", "type/id/_history/vid"): vread,
}


@dataclass(slots=True)
class Route:
    """The FHIR URL shape of a path relative to the service base, and the parts it names."""

    shape: str
    type: str | None = None
    id: str | None = None
    version: str | None = None
    operation: str | None = None
    compartment: str | None = None


def route(path: str) -> Route:
    """Parse a path relative to the service base (``Patient/1/_history/2``) into a :class:`Route`."""
    segments = [s for s in path.split("/") if s]
    n = len(segments)
    if n == 0:
        return Route("")
    first = segments[0]
    if first.startswith("$"):
        return Route("$op" if n == 1 else "?", operation=first[1:])
    if first in ("metadata", "_history", "_search") and n == 1:
        return Route(first)
    if n == 1:
        return Route("type", first)
    second = segments[1]
    if n == 2 and second in ("_search", "_history"):
        return Route(f"type/{second}", first)
    if n == 2 and second.startswith("$"):
        return Route("type/$op", first, operation=second[1:])
    if n == 2:
        return Route("type/id", first, second)
    third = segments[2]
    if n == 3 and third == "_history":
        return Route("type/id/_history", first, second)
    if n == 3 and third.startswith("$"):
        return Route("type/id/$op", first, second, operation=third[1:])
    if n == 3:
        return Route("type/id/compartment", first, second, compartment=third)
    if n == 4 and third == "_history":
        return Route("type/id/_history/vid", first, second, version=segments[3])
    return Route("?")


def routed(request: Request, where: Route) -> Request:
    """The request with the parts of its route filled in."""
    return replace(
        request,
        type=where.type,
        id=where.id,
        version=where.version,
        operation=where.operation,
        compartment=where.compartment,
    )


def _operation_handler(shape: str, request: Request) -> Handler:
    level = {"$op": "system", "type/$op": "type", "type/id/$op": "instance"}[shape]
    op = OPERATIONS.get(request.operation or "")
    if op is None or level not in op.levels:
        raise error("CW-1012", f"the operation ${request.operation} is not supported at {level} level")
    if op.types is not None and level != "system" and request.type not in op.types:
        raise error("CW-1012", f"the operation ${request.operation} is not defined on {request.type}")
    if request.method not in op.methods:
        raise error("CW-1013", f"${op.name} does not take {request.method}")
    return op.handler


def _handler(shape: str, request: Request) -> Handler:
    if shape.endswith("$op"):
        return _operation_handler(shape, request)
    found = HANDLERS.get((request.method, shape))
    if found is not None:
        return found
    if any(s == shape for _, s in HANDLERS) or shape in ("", "type/id/_history/vid"):
        raise error("CW-1013", f"{request.method} is not allowed on this URL")
    raise error("CW-1012", f"no FHIR endpoint at /{request.path}")


async def dispatch(services: Services, request: Request, shape: str | None = None) -> Result:
    """Run the interaction a request names; errors come back as OperationOutcome results.

    ``shape`` is the route's shape when the caller has routed the request already (its type, id,
    version, operation and compartment filled in); otherwise the request's path is routed here.
    """
    try:
        if shape is None:
            where = route(request.path)
            shape, request = where.shape, routed(request, where)
        handler = _handler(shape, request)
        return await handler(services, request)
    except CareweaveError as exc:
        if exc.category.value == "fault":
            log.error("internal error %s: %s", exc.code, exc.diagnostics)
        return error_result(exc)
    except Exception:
        log.exception("unexpected error in %s %s", request.method, request.path.split("?")[0])
        return error_result(error("CW-1000", "internal error; the request was not completed"))
