"""A real webhook receiver for tests and benchmarks: uvicorn on 127.0.0.1 in a thread.

It records every request (method, path, headers, body), answers 200 unless told to fail
(``fail_with(status, times)``) or to be slow (``delay_s``), and can be stopped and started again
on the same port (``stop()`` / ``start()``), as a subscriber's endpoint goes down and comes back.
"""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections import deque
from dataclasses import dataclass
from typing import Any

import uvicorn


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass(frozen=True)
class Received:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    status: int  # what the receiver answered


class Receiver:
    def __init__(self, port: int | None = None) -> None:
        self.port = port or free_port()
        self.received: list[Received] = []
        self.delay_s = 0.0
        self._failures: deque[tuple[int, tuple[tuple[str, str], ...]]] = deque()
        self._lock = threading.Lock()
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    def fail_with(self, status: int, times: int = 1, headers: tuple[tuple[str, str], ...] = ()) -> None:
        with self._lock:
            self._failures.extend([(status, headers)] * times)

    def _answer(self) -> tuple[int, tuple[tuple[str, str], ...]]:
        with self._lock:
            return self._failures.popleft() if self._failures else (200, ())

    async def app(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        if self.delay_s:
            await asyncio.sleep(self.delay_s)
        status, extra = self._answer()
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        self.received.append(Received(scope["method"], scope["path"], headers, body, status))
        response_headers = [(k.encode(), v.encode()) for k, v in extra]
        await send({"type": "http.response.start", "status": status, "headers": response_headers})
        await send({"type": "http.response.body", "body": b""})

    def start(self) -> Receiver:
        config = uvicorn.Config(self.app, host="127.0.0.1", port=self.port, log_level="error",
                                lifespan="off", ws="none", interface="asgi3", timeout_graceful_shutdown=1,
                                access_log=False)
        server = uvicorn.Server(config)
        thread = threading.Thread(target=server.run, name="webhook-receiver", daemon=True)
        thread.start()
        deadline = time.monotonic() + 10
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"the receiver did not start on port {self.port}")
            time.sleep(0.01)
        self._server, self._thread = server, thread
        return self

    def stop(self) -> None:
        if self._server is not None and self._thread is not None:
            self._server.should_exit = True
            self._thread.join(10)
        self._server = self._thread = None
