"""The limit of the HTTP stack: a bare ASGI app answering every request with the same bytes as a
careweave read (body and headers), read from the file named by BENCH_BARE_BODY."""

from __future__ import annotations

import os
from pathlib import Path

_BODY = Path(os.environ.get("BENCH_BARE_BODY", "/dev/null")).read_bytes()
_HEADERS = [
    (b"content-type", b"application/fhir+json; charset=utf-8"),
    (b"etag", b'W/"1"'),
    (b"last-modified", b"Sun, 22 Nov 2026 05:25:08 GMT"),
    (b"content-length", str(len(_BODY)).encode()),
]


async def app(scope, receive, send) -> None:
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    await send({"type": "http.response.start", "status": 200, "headers": _HEADERS})
    await send({"type": "http.response.body", "body": _BODY})
