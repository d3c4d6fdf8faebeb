"""Building history and searchset Bundles from stored versions, without re-parsing their JSON."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from urllib.parse import urlencode

import orjson

from careweave.fhir.model import format_instant
from careweave.store.base import StoredResource

__all__ = ["history_entry", "link", "search_entry"]

_STATUS = {"POST": "201 Created", "PUT": "200 OK", "PATCH": "200 OK", "DELETE": "204 No Content"}


def link(relation: str, base: str, path: str, params: Sequence[tuple[str, str]]) -> dict[str, str]:
    url = f"{base}/{path}" if path else base
    if params:
        url += "?" + urlencode(list(params))
    return {"relation": relation, "url": url}


def history_entry(base: str, stored: StoredResource) -> dict[str, Any]:
    ref = f"{stored.type}/{stored.id}"
    method = stored.method or "PUT"
    entry: dict[str, Any] = {"fullUrl": f"{base}/{ref}"}
    if stored.body is not None:
        entry["resource"] = orjson.Fragment(stored.body)
    entry["request"] = {"method": method, "url": stored.type if method == "POST" else ref}
    status = "201 Created" if method == "PUT" and stored.version == 1 else _STATUS[method]
    entry["response"] = {
        "status": status,
        "etag": f'W/"{stored.version}"',
        "lastModified": format_instant(stored.updated_ms),
    }
    return entry


def search_entry(base: str, stored: StoredResource, mode: str = "match") -> dict[str, Any]:
    return {
        "fullUrl": f"{base}/{stored.type}/{stored.id}",
        "resource": orjson.Fragment(stored.body or b"{}"),
        "search": {"mode": mode},
    }
