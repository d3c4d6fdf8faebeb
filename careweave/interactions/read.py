"""read: GET [base]/[type]/[id] (http.html#read)."""

from __future__ import annotations

from email.utils import parsedate_to_datetime
from typing import Any

import orjson

from careweave.errors import error
from careweave.interactions.common import check_id, check_type, etag
from careweave.interactions.context import Services
from careweave.interactions.request import Request
from careweave.interactions.result import Result
from careweave.search.summary import subset

__all__ = ["read", "vread"]


async def read(services: Services, request: Request) -> Result:
    type_ = check_type(services, request.type)
    id_ = check_id(request.id)
    stored = await services.store.read(request.tenant, type_, id_)
    if stored is None:
        raise error("CW-2001", f"{type_}/{id_} is not known")
    if stored.deleted:
        gone = error("CW-2002", f"{type_}/{id_} was deleted (version {stored.version})")
        raise gone
    if _not_modified(request, stored.version, stored.updated_ms):
        return Result(304, None, etag(stored.version), stored.updated_ms)
    return Result(200, _shaped(services, request, stored.body), etag(stored.version), stored.updated_ms)


def _shaped(services: Services, request: Request, body: bytes | None) -> bytes | dict[str, Any] | None:
    """The stored bytes, or the subset ``_summary`` / ``_elements`` ask for."""
    if not request.params or body is None:
        return body
    summary = request.param("_summary")
    elements = request.param("_elements")
    if summary is None and elements is None:
        return body
    if summary is not None and summary not in ("true", "text", "data", "false"):
        raise error("CW-1011", "_summary on a read is one of true, text, data, false")
    wanted = tuple(e.strip() for e in (elements or "").split(",") if e.strip())
    return subset(services.model, orjson.loads(body), summary, wanted)


def _not_modified(request: Request, version: int, updated_ms: int) -> bool:
    """If-None-Match (ETag) wins over If-Modified-Since (RFC 9110 section 13.2.2)."""
    if_none_match = request.header("if-none-match")
    if if_none_match is not None:
        tags = {t.strip() for t in if_none_match.split(",")}
        return "*" in tags or etag(version) in tags
    since = request.header("if-modified-since")
    if since is not None:
        try:
            since_ms = int(parsedate_to_datetime(since).timestamp() * 1000)
        except (TypeError, ValueError):
            return False  # an unparseable date is ignored, as RFC 9110 says
        return updated_ms // 1000 * 1000 <= since_ms
    return False


async def vread(services: Services, request: Request) -> Result:
    type_ = check_type(services, request.type)
    id_ = check_id(request.id)
    try:
        version = int(request.version or "")
    except ValueError:
        raise error("CW-2003", f"{type_}/{id_} has no version {request.version!r}") from None
    stored = await services.store.vread(request.tenant, type_, id_, version)
    if stored is None:
        raise error("CW-2003", f"{type_}/{id_} has no version {version}")
    if stored.deleted:
        raise error("CW-2002", f"version {version} of {type_}/{id_} is a deletion")
    return Result(200, _shaped(services, request, stored.body), etag(stored.version), stored.updated_ms)
