"""A lean HTTP/1.1 client for rest-hook deliveries, on asyncio streams, and the channel built on it.

Why: a webhook POST through httpx costs about 0.8 ms of CPU on the reference machine, more than
everything else a notification needs together; this client does the same exchange for a small
fraction of it, which is what lets one worker process reach its notifications-per-second goal.
:class:`~careweave.events.channels.resthook.RestHookChannel` (httpx) stays for callers that want it.

Rules:
1. ``http`` and ``https`` (the default SSL context: certificates and host names verified) only.
   One request at a time per connection; connections are kept alive per origin (scheme, host,
   port), at most ``max_idle`` idle ones each, unless the server says ``Connection: close`` or
   speaks HTTP/1.0.
2. The response body is read (Content-Length, chunked, or until the connection closes) and
   dropped: receivers answer with a status. Redirects are not followed (3xx is a retryable
   failure, see :func:`~careweave.events.channels.base.classify_status`).
3. The whole exchange has one deadline (``delivery.timeout_s``); a timeout or a transport error is
   a retryable failure and the connection is discarded. A request written on a kept-alive
   connection that the server had already closed (no byte of a response) is sent once more on a
   new connection: a notification may then arrive twice, which receivers handle (at least once).
4. Header names and values come from :func:`~careweave.events.channels.base.delivery_headers`
   (validated when the Subscription was read); CR and LF are refused here again.
"""

from __future__ import annotations

import asyncio
import ssl
import time
from collections.abc import Callable, Sequence
from urllib.parse import urlsplit

from careweave.events.channels.base import Delivery, DeliveryResult, classify_status, delivery_headers
from careweave.events.channels.resthook import retry_after

__all__ = ["FastRestHookChannel", "HookClient", "HookResponse"]

_MAX_LINE = 65_536
_MAX_HEADERS = 200

Origin = tuple[str, str, int]
Stream = tuple[asyncio.StreamReader, asyncio.StreamWriter]


class HookResponse:
    __slots__ = ("headers", "status")

    def __init__(self, status: int, headers: dict[str, str]) -> None:
        self.status = status
        self.headers = headers


class _Stale(Exception):
    """A kept-alive connection the server had closed: nothing of a response came back."""


class HookClient:
    def __init__(self, *, max_idle: int = 32, ssl_context: ssl.SSLContext | None = None) -> None:
        self._idle: dict[Origin, list[Stream]] = {}
        self._max_idle = max_idle
        self._ssl = ssl_context

    async def post(
        self,
        url: str,
        body: bytes,
        headers: Sequence[tuple[str, str]],
        timeout_s: float,
        method: str = "POST",
    ) -> HookResponse:
        """Send ``body`` to ``url`` (POST, or PUT); raises OSError, TimeoutError or ValueError."""
        if method not in ("POST", "PUT"):
            raise ValueError(f"unsupported method {method}")
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"not an http(s) URL: {url!r}")
        port = parts.port or (443 if parts.scheme == "https" else 80)
        origin = (parts.scheme, parts.hostname, port)
        target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        host = parts.hostname if parts.port is None else f"{parts.hostname}:{port}"
        if ":" in parts.hostname and not parts.hostname.startswith("["):
            host = f"[{parts.hostname}]" if parts.port is None else f"[{parts.hostname}]:{port}"
        request = _request(method, target, host, body, headers)
        async with asyncio.timeout(timeout_s):
            while True:
                stream, reused = await self._connection(origin)
                try:
                    response, keep = await _exchange(stream, request, reused)
                except _Stale:
                    _close(stream)
                    continue
                except BaseException:
                    _close(stream)
                    raise
                if keep:
                    self._release(origin, stream)
                else:
                    _close(stream)
                return response

    async def _connection(self, origin: Origin) -> tuple[Stream, bool]:
        idle = self._idle.get(origin)
        while idle:
            stream = idle.pop()
            if not stream[0].at_eof() and not stream[1].is_closing():
                return stream, True
            _close(stream)
        scheme, host, port = origin
        context = None
        if scheme == "https":
            context = self._ssl or ssl.create_default_context()
        reader, writer = await asyncio.open_connection(host, port, ssl=context, limit=_MAX_LINE)
        return (reader, writer), False

    def _release(self, origin: Origin, stream: Stream) -> None:
        idle = self._idle.setdefault(origin, [])
        if len(idle) < self._max_idle:
            idle.append(stream)
        else:
            _close(stream)

    async def aclose(self) -> None:
        for streams in self._idle.values():
            for stream in streams:
                _close(stream)
        self._idle.clear()


def _request(method: str, target: str, host: str, body: bytes, headers: Sequence[tuple[str, str]]) -> bytes:
    lines = [f"{method} {target} HTTP/1.1", f"Host: {host}", f"Content-Length: {len(body)}"]
    for name, value in headers:
        if any(c in name + value for c in "\r\n\0"):
            raise ValueError("a header contains CR, LF or NUL")
        if name.lower() not in ("host", "content-length", "connection", "transfer-encoding"):
            lines.append(f"{name}: {value}")
    head = "\r\n".join(lines) + "\r\n\r\n"
    return head.encode("latin-1") + body


async def _exchange(stream: Stream, request: bytes, reused: bool) -> tuple[HookResponse, bool]:
    reader, writer = stream
    writer.write(request)
    try:
        await writer.drain()
        line = await reader.readline()
    except (ConnectionResetError, BrokenPipeError):
        if reused:
            raise _Stale() from None
        raise
    if not line:
        if reused:
            raise _Stale()
        raise ConnectionResetError("the server closed the connection without a response")
    version, status = _status_line(line)
    headers = await _headers(reader)
    keep = version == "HTTP/1.1" and headers.get("connection", "").lower() != "close"
    if status in (204, 304) or 100 <= status < 200:
        return HookResponse(status, headers), keep
    if "chunked" in headers.get("transfer-encoding", "").lower():
        await _chunked(reader)
    elif "content-length" in headers:
        length = int(headers["content-length"])
        if length < 0:
            raise ValueError("negative Content-Length")
        await reader.readexactly(length)
    else:
        await reader.read()  # the body runs to the end of the connection
        keep = False
    return HookResponse(status, headers), keep


def _status_line(line: bytes) -> tuple[str, int]:
    parts = line.decode("latin-1").split(" ", 2)
    if len(parts) < 2 or not parts[0].startswith("HTTP/1.") or not parts[1].isdigit():
        raise ValueError("not an HTTP/1.x response")
    return parts[0], int(parts[1])


async def _headers(reader: asyncio.StreamReader) -> dict[str, str]:
    headers: dict[str, str] = {}
    for _ in range(_MAX_HEADERS):
        line = await reader.readline()
        if line in (b"\r\n", b"\n", b""):
            return headers
        name, _, value = line.decode("latin-1").partition(":")
        headers[name.strip().lower()] = value.strip()
    raise ValueError("too many response headers")


async def _chunked(reader: asyncio.StreamReader) -> None:
    while True:
        size_line = await reader.readline()
        size = int(size_line.split(b";", 1)[0].strip() or b"0", 16)
        if size == 0:
            await _headers(reader)  # trailers
            return
        await reader.readexactly(size + 2)


def _close(stream: Stream) -> None:
    stream[1].close()


class FastRestHookChannel:
    """The rest-hook :class:`~careweave.events.channels.base.Channel` over :class:`HookClient`:
    the same rules as ``RestHookChannel`` (status classes, Retry-After, no redirects)."""

    def __init__(self, client: HookClient, *, clock: Callable[[], float] = time.time) -> None:
        self._client = client
        self._clock = clock

    async def deliver(self, delivery: Delivery) -> DeliveryResult:
        if not delivery.endpoint or not delivery.endpoint.startswith(("http://", "https://")):
            return DeliveryResult(False, error="the subscription has no http(s) endpoint", retryable=False)
        now = self._clock()
        try:
            headers = delivery_headers(delivery, int(now))
            if not delivery.body:
                headers = [(k, v) for k, v in headers if k.lower() != "content-type"]
            response = await self._client.post(
                delivery.endpoint, delivery.body, headers, delivery.timeout_s, delivery.method
            )
        except TimeoutError:
            return DeliveryResult(False, error="timed out", retryable=True)
        except ValueError as exc:
            return DeliveryResult(False, error=f"bad endpoint or response: {exc}", retryable=True)
        except (OSError, asyncio.IncompleteReadError, ssl.SSLError) as exc:
            return DeliveryResult(False, error=f"{type(exc).__name__}: {exc}", retryable=True)
        ok, retryable = classify_status(response.status)
        error = None if ok else f"HTTP {response.status}"
        wait = retry_after(response.headers.get("retry-after"), now) if not ok else None
        return DeliveryResult(ok, response.status, error, retryable, wait)
