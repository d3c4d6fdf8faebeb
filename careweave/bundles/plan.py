"""Batch and transaction Bundles, pure: entries, their processing order, reference rewriting.

Rules (FHIR R4 http.html#transaction, #trules, bundle.html#references):
1. A transaction processes its entries in the order DELETE, POST, PUT and PATCH, then GET and HEAD
   (:data:`ORDER`), whatever their order in the Bundle; the response lists them in request order.
2. An entry's ``fullUrl`` (``urn:uuid:...``, ``urn:oid:...``, an absolute URL, or relative
   ``Type/id``) names it inside the Bundle; every reference to it, in any resource of the Bundle,
   is rewritten to the ``Type/id`` the server gives it.
3. A conditional reference (``Patient?identifier=...``) is resolved to the one resource it matches.
4. Everything here is pure: no storage, no clock; the caller resolves searches and assigns ids.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

from careweave.errors import error
from careweave.fhir.model import is_valid_id, parse_reference

__all__ = [
    "ORDER",
    "BundleEntry",
    "conditional_references",
    "parse_bundle",
    "references_in",
    "rewrite_references",
]

ORDER = {"DELETE": 0, "POST": 1, "PUT": 2, "PATCH": 2, "GET": 3, "HEAD": 3}
_CONDITIONAL = re.compile(r"[A-Z][A-Za-z]+\?")


@dataclass(slots=True)
class BundleEntry:
    index: int
    method: str
    url: str  # request.url as given (relative to the base)
    path: str  # url without the query
    query: list[tuple[str, str]]
    full_url: str | None
    resource: dict[str, Any] | None
    if_match: str | None = None
    if_none_exist: str | None = None
    if_none_match: str | None = None
    if_modified_since: str | None = None
    type: str | None = None  # from the url
    id: str | None = None  # from the url (or assigned)
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def where(self) -> str:
        return f"Bundle.entry[{self.index}]"

    @property
    def conditional(self) -> bool:
        return bool(self.query) and self.method in ("PUT", "DELETE", "PATCH")


def _fail(code: str, index: int | None, text: str) -> Exception:
    where = [f"Bundle.entry[{index}]"] if index is not None else ["Bundle"]
    prefix = f"entry {index}: " if index is not None else ""
    return error(code, prefix + text, expression=where)


def parse_bundle(bundle: Mapping[str, Any], base_url: str) -> tuple[str, list[BundleEntry]]:
    """(``transaction`` | ``batch``, entries); CW-1011 / CW-1015 for a malformed Bundle."""
    if bundle.get("resourceType") != "Bundle":
        raise _fail("CW-1015", None, "the body must be a Bundle")
    kind = bundle.get("type")
    if kind not in ("transaction", "batch"):
        raise _fail("CW-1011", None, f"Bundle.type must be transaction or batch, not {kind!r}")
    raw = bundle.get("entry") or []
    if not isinstance(raw, list):
        raise _fail("CW-1015", None, "Bundle.entry must be an array")
    entries = [_entry(i, item, base_url) for i, item in enumerate(raw)]
    if kind == "transaction":
        seen: dict[str, int] = {}
        for e in entries:
            if e.full_url:
                if e.full_url in seen:
                    raise _fail(
                        "CW-1011", e.index, f"fullUrl {e.full_url} is used by entry {seen[e.full_url]} too"
                    )
                seen[e.full_url] = e.index
    return kind, entries


def _entry(index: int, item: Any, base_url: str) -> BundleEntry:
    if not isinstance(item, dict):
        raise _fail("CW-1015", index, "an entry must be an object")
    request = item.get("request")
    if not isinstance(request, dict):
        raise _fail("CW-1011", index, "entry.request (method and url) is required")
    method, url = request.get("method"), request.get("url")
    if method not in ORDER or not isinstance(url, str) or not url:
        raise _fail(
            "CW-1011", index, "entry.request needs a method (GET, HEAD, POST, PUT, PATCH, DELETE) and a url"
        )
    if url.startswith(base_url.rstrip("/") + "/") and base_url:
        url = url[len(base_url.rstrip("/")) + 1 :]
    path, _, query = url.partition("?")
    resource = item.get("resource")
    if resource is not None and not isinstance(resource, dict):
        raise _fail("CW-1015", index, "entry.resource must be a resource")
    if method in ("POST", "PUT") and resource is None:
        raise _fail("CW-1011", index, f"a {method} entry needs a resource")
    full_url = item.get("fullUrl") if isinstance(item.get("fullUrl"), str) else None
    segments = [s for s in path.split("/") if s]
    entry = BundleEntry(
        index=index,
        method=method,
        url=url,
        path=path,
        query=parse_qsl(query, keep_blank_values=True),
        full_url=full_url,
        resource=resource,
        if_match=request.get("ifMatch"),
        if_none_exist=request.get("ifNoneExist"),
        if_none_match=request.get("ifNoneMatch"),
        if_modified_since=request.get("ifModifiedSince"),
        type=segments[0] if segments else None,
        id=segments[1] if len(segments) > 1 and not segments[1].startswith(("$", "_")) else None,
    )
    if (
        method in ("POST", "PUT")
        and resource is not None
        and entry.type is not None
        and (resource.get("resourceType") != entry.type)
    ):
        raise _fail(
            "CW-1006", index, f"the resource is a {resource.get('resourceType')} but the url is {url}"
        )
    if method == "PUT" and not entry.query and (entry.id is None or not is_valid_id(entry.id)):
        raise _fail("CW-1005", index, f"PUT {url} needs Type/id with a valid id")
    return entry


def references_in(value: Any) -> Iterator[tuple[dict[str, Any], str]]:
    """Every (holder, key) whose value is a reference string: ``Reference.reference`` anywhere in
    the resource (contained resources included)."""
    if isinstance(value, dict):
        ref = value.get("reference")
        if isinstance(ref, str):
            yield value, "reference"
        for item in value.values():
            if isinstance(item, (dict, list)):
                yield from references_in(item)
    elif isinstance(value, list):
        for item in value:
            yield from references_in(item)


def conditional_references(resource: Mapping[str, Any]) -> list[str]:
    """The conditional references (``Type?criteria``) a resource holds."""
    return sorted({holder[key] for holder, key in references_in(resource) if _CONDITIONAL.match(holder[key])})


def rewrite_references(resource: dict[str, Any], mapping: Mapping[str, str], base_url: str) -> None:
    """Rewrite, in place, references naming a Bundle entry (by fullUrl) or a resolved conditional
    reference to the ``Type/id`` in ``mapping``. An absolute reference to this server's base that
    names another entry's ``Type/id`` fullUrl is matched too."""
    base = base_url.rstrip("/")
    for holder, key in references_in(resource):
        ref = holder[key]
        target = mapping.get(ref)
        if target is None and base and ref.startswith(base + "/"):
            target = mapping.get(ref[len(base) + 1 :])
        if target is None:
            parsed = parse_reference(ref)
            if parsed is not None and parsed.version is None:
                target = mapping.get(f"{parsed.type}/{parsed.id}")
        if target is not None:
            holder[key] = target
