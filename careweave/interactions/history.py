"""history: instance, type and system level (http.html#history), with _since, _count, paging."""

from __future__ import annotations

from typing import Any

from careweave.errors import error
from careweave.fhir.model import format_instant, parse_instant
from careweave.interactions.bundle import history_entry, link
from careweave.interactions.common import check_id, check_type
from careweave.interactions.context import Services
from careweave.interactions.paging import open_cursor, seal_cursor
from careweave.interactions.request import Request
from careweave.interactions.result import Result
from careweave.store.base import HistoryQuery

__all__ = ["history"]


def _count(services: Services, request: Request) -> int:
    raw = request.param("_count")
    if raw is None:
        return services.default_count
    try:
        value = int(raw)
    except ValueError:
        raise error("CW-1011", f"_count must be a whole number, not {raw!r}") from None
    if value < 0:
        raise error("CW-1011", "_count must not be negative")
    return min(value, services.max_count)


def _since(request: Request) -> int | None:
    raw = request.param("_since")
    if raw is None:
        return None
    ms = parse_instant(raw)
    if ms is None:
        raise error("CW-1011", f"_since must be an instant with a time zone, not {raw!r}")
    return ms


async def history(services: Services, request: Request) -> Result:
    type_ = check_type(services, request.type) if request.type is not None else None
    id_ = check_id(request.id) if request.id is not None else None
    if id_ is not None and type_ is not None:
        current = await services.store.read(request.tenant, type_, id_)
        if current is None:
            raise error("CW-2001", f"{type_}/{id_} is not known")
    count = _count(services, request)
    before = None
    token = request.param("_cursor")
    if token is not None:
        before = open_cursor(services.cursor_secret, request.tenant.name, token)
        if not isinstance(before, int):
            raise error("CW-5003", "the paging cursor is not a history cursor")
    page = await services.store.history(
        request.tenant,
        HistoryQuery(type_, id_, _since(request), None, count, before),
    )
    path = "/".join(p for p in (type_, id_, "_history") if p)
    kept = [(k, v) for k, v in request.params if k in ("_since", "_count")]
    links = [link("self", request.base_url, path, [*kept, *([("_cursor", token)] if token else [])])]
    if page.next_before_seq is not None:
        cursor = seal_cursor(services.cursor_secret, request.tenant.name, page.next_before_seq)
        links.append(link("next", request.base_url, path, [*kept, ("_cursor", cursor)]))
    bundle: dict[str, Any] = {"resourceType": "Bundle", "type": "history"}
    if page.total is not None:
        bundle["total"] = page.total
    bundle["link"] = links
    bundle["entry"] = [history_entry(request.base_url, e) for e in page.entries]
    if page.entries:
        bundle["meta"] = {"lastUpdated": format_instant(max(e.updated_ms for e in page.entries))}
    return Result(200, bundle)
