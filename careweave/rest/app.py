"""The FHIR HTTP API as a plain ASGI application.

Rules:
1. ``/fhir/...`` serves the default tenant, ``/t/{tenant}/fhir/...`` any other; an unknown tenant is
   404. Tenants are looked up per request, so one created while the server runs is served at once.
2. This layer only translates: HTTP -> :class:`Request`, :func:`dispatch`, :class:`Result` -> HTTP.
   It checks what only HTTP knows: body size (413), content types (415), Accept/_format (406).
3. Anything else goes to ``fallback`` (the UI), or 404.
4. The FHIR routes are a hand-written ASGI callable rather than a framework router: the read path
   must stay close to a bare ASGI response (see docs/benchmarks.md); the UI uses Starlette.
5. Nothing here logs a body, a query string or a header value: they may hold patient data.
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any
from urllib.parse import parse_qsl, unquote

import orjson

from careweave.errors import CareweaveError, error
from careweave.fhir.model import http_date
from careweave.identity.records import IDENTITY_TENANT
from careweave.interactions.context import Services
from careweave.interactions.dispatch import dispatch, route
from careweave.interactions.operations.mpi import dispatch_identity
from careweave.interactions.request import Request
from careweave.interactions.result import Result, error_result
from careweave.rest.negotiation import body_kind, response_type
from careweave.store.base import Tenant

__all__ = ["FhirApp"]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

log = logging.getLogger("careweave.access")

_WANTED_HEADERS = frozenset(
    {
        b"if-match",
        b"if-none-exist",
        b"if-none-match",
        b"if-modified-since",
        b"prefer",
        b"content-type",
        b"accept",
        b"host",
        b"content-length",
        b"x-forwarded-proto",
        b"x-forwarded-host",
    }
)
_BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})


class FhirApp:
    """ASGI app: FHIR REST for every tenant, a health check, and a fallback for the rest."""

    def __init__(
        self,
        services: Services,
        *,
        max_body_bytes: int,
        base_url: str = "",
        fallback: ASGIApp | None = None,
        startup: Callable[[], Awaitable[None]] | None = None,
        shutdown: Callable[[], Awaitable[None]] | None = None,
        access_log: bool = False,
        hl7v2: ASGIApp | None = None,  # [hl7] POST /hl7v2 and the error queue (careweave.gateway.http)
        websocket: ASGIApp | None = None,  # [events] the subscriptions' websocket channel
    ) -> None:
        self.services = services
        self._max_body = max_body_bytes
        self._base_url = base_url.rstrip("/")
        self._fallback = fallback
        self._startup = startup
        self._shutdown = shutdown
        self._access_log = access_log
        self._hl7v2 = hl7v2
        self._websocket = websocket  # [events]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "http":
            await self._http(scope, receive, send)
        elif kind == "lifespan":
            await self._lifespan(receive, send)
        elif kind == "websocket" and self._websocket is not None:  # [events]
            await self._websocket(scope, receive, send)
        elif self._fallback is not None:
            await self._fallback(scope, receive, send)

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                try:
                    if self._startup is not None:
                        await self._startup()
                except Exception as exc:
                    log.exception("startup failed")
                    await send({"type": "lifespan.startup.failed", "message": str(exc)})
                    return
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                if self._shutdown is not None:
                    await self._shutdown()
                await send({"type": "lifespan.shutdown.complete"})
                return

    # -- HTTP -----------------------------------------------------------------------------------
    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        path: str = scope["path"]
        if path == "/fhir" or path.startswith("/fhir/"):
            await self._fhir(scope, receive, send, None, path[5:], "/fhir")
        elif path.startswith("/t/"):
            name, _, rest = path[3:].partition("/")
            if (rest == "fhir" or rest.startswith("fhir/")) and unquote(name) != IDENTITY_TENANT:  # [mpi]
                await self._fhir(scope, receive, send, name, rest[4:], f"/t/{name}/fhir")
            elif self._hl7v2 is not None and (rest == "hl7v2" or rest.startswith("hl7v2/")):  # [hl7]
                await self._hl7v2(scope, receive, send)
            else:
                await self._not_found(scope, receive, send)
        # [events] routes (websocket binding, mailbox) go here
        # [hl7] routes (POST /hl7v2) go here
        elif self._hl7v2 is not None and (path == "/hl7v2" or path.startswith("/hl7v2/")):
            await self._hl7v2(scope, receive, send)
        # [mpi] routes (/mpi/fhir) go here
        elif path == "/mpi/fhir" or path.startswith("/mpi/fhir/"):
            await self._fhir(scope, receive, send, IDENTITY_TENANT, path[9:], "/mpi/fhir")
        elif path == "/health":
            await _send(send, 200, b'{"status":"ok"}', [(b"content-type", b"application/json")])
        else:
            await self._not_found(scope, receive, send)

    async def _not_found(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self._fallback is not None:
            await self._fallback(scope, receive, send)
            return
        result = error_result(error("CW-1012", f"nothing at {scope['path']}"))
        await self._respond(send, result, "application/fhir+json", pretty=False)

    async def _tenant(self, name: str | None) -> Tenant:
        key = "default" if name is None else unquote(name)
        tenant = await self.services.tenants.get(key)
        if tenant is None:
            raise error("CW-4001", f"unknown tenant {key!r}")
        return tenant

    async def _fhir(
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
        tenant_name: str | None,
        rest: str,
        prefix: str,
    ) -> None:
        started = time.perf_counter()
        method: str = scope["method"]
        headers = {
            k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"] if k in _WANTED_HEADERS
        }
        query = scope.get("query_string", b"")
        params = parse_qsl(query.decode("utf-8", "replace"), keep_blank_values=True) if query else []
        pretty = _param(params, "_pretty") == "true"
        media = "application/fhir+json"
        try:
            media = response_type(_param(params, "_format"), headers.get("accept"))
            tenant = await self._tenant(tenant_name)
            body = await self._body(scope, receive, headers, method)
            is_search = rest.rstrip("/").endswith("/_search")
            if body and method in _BODY_METHODS:
                kind = body_kind(headers.get("content-type"), method, is_search)
                if kind == "form":
                    params = params + parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True)
                    body = None
            path = unquote(rest.lstrip("/"))
            where = route(path)
            request = Request(
                tenant=tenant,
                method=method,
                type=where.type,
                id=where.id,
                version=where.version,
                operation=where.operation,
                compartment=where.compartment,
                params=tuple(params),
                body=body,
                headers=headers,
                base_url=self._base(scope, headers) + prefix,
                path=path,
            )
            handler = dispatch_identity if tenant.name == IDENTITY_TENANT else dispatch  # [mpi]
            result = await handler(self.services, request, where.shape)
        except CareweaveError as exc:
            result = error_result(exc)
        await self._respond(send, result, media, pretty)
        if self._access_log:
            log.info(
                "%s %s%s %d %.1fms",
                method,
                prefix,
                rest.split("?")[0],
                result.status,
                (time.perf_counter() - started) * 1000,
            )

    async def _body(
        self, scope: Scope, receive: Receive, headers: dict[str, str], method: str
    ) -> bytes | None:
        if method not in _BODY_METHODS:
            return None
        declared = headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > self._max_body:
            raise error("CW-1003", f"the body is larger than {self._max_body} bytes")
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                break
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self._max_body:
                raise error("CW-1003", f"the body is larger than {self._max_body} bytes")
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        return b"".join(chunks)

    def _base(self, scope: Scope, headers: dict[str, str]) -> str:
        if self._base_url:
            return self._base_url
        scheme = headers.get("x-forwarded-proto") or scope.get("scheme", "http")
        host = headers.get("x-forwarded-host") or headers.get("host")
        if not host:
            server = scope.get("server") or ("localhost", 80)
            host = f"{server[0]}:{server[1]}"
        return f"{scheme}://{host}{scope.get('root_path', '')}"

    async def _respond(self, send: Send, result: Result, media: str, pretty: bool) -> None:
        if result.media_type is not None:
            media = result.media_type
        headers = [(b"content-type", _CONTENT_TYPES.get(media) or f"{media}; charset=utf-8".encode())]
        if result.etag:
            headers.append((b"etag", result.etag.encode()))
        if result.last_modified_ms is not None:
            headers.append((b"last-modified", _last_modified(result.last_modified_ms // 1000)))
        if result.location:
            headers.append((b"location", result.location.encode()))
        if result.content_location:
            headers.append((b"content-location", result.content_location.encode()))
        for name, value in result.headers.items():
            headers.append((name.lower().encode(), value.encode()))
        if result.stream is not None:
            await send({"type": "http.response.start", "status": result.status, "headers": headers})
            async for chunk in result.stream:
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
            await send({"type": "http.response.body", "body": b""})
            return
        body = _encode(result.body, pretty)
        if result.status in (204, 304):
            body = b""
        await _send(send, result.status, body, headers)


_CONTENT_TYPES = {
    "application/fhir+json": b"application/fhir+json; charset=utf-8",
    "application/json": b"application/json; charset=utf-8",
}


@functools.lru_cache(maxsize=1024)
def _last_modified(seconds: int) -> bytes:
    """Last-Modified header values, memoised by the second (they repeat across reads)."""
    return http_date(seconds * 1000).encode()


def _param(params: list[tuple[str, str]], name: str) -> str | None:
    for key, value in params:
        if key == name:
            return value
    return None


def _encode(body: dict[str, Any] | bytes | None, pretty: bool) -> bytes:
    if body is None:
        return b""
    if isinstance(body, bytes):
        if not pretty:
            return body
        return orjson.dumps(orjson.loads(body), option=orjson.OPT_INDENT_2)
    raw = orjson.dumps(body)
    if pretty:
        return orjson.dumps(orjson.loads(raw), option=orjson.OPT_INDENT_2)
    return raw


async def _send(send: Send, status: int, body: bytes, headers: list[tuple[bytes, bytes]]) -> None:
    headers.append((b"content-length", str(len(body)).encode()))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
