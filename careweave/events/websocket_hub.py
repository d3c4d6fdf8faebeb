"""The websocket channel's endpoint: ``[base]/$subscription-ws``, plain ASGI (backport IG v1.1.0,
channels.html#websockets).

Rules:
1. A client gets a token from ``$get-ws-binding-token``, connects and sends
   ``bind-with-token <token>``; a frame that does not bind (bad, expired, another tenant's
   token) is answered with an OperationOutcome and close code 1008 (CW-6002). A bound
   connection gets a ``handshake`` Bundle per subscription at once, then its notifications.
2. :class:`WebsocketHub` is also the delivery worker's ``websocket`` channel: a notification is
   delivered when at least one bound connection of that subscription took it; with none bound
   it is a retryable failure (the queue keeps it, in order). Binding makes the subscription's
   waiting notifications due at once.
3. Only the process holding the sockets can deliver on them: each ``careweave serve`` process runs
   a delivery worker for its websocket clients (the whole in-process worker, or one for the
   websocket channel alone when delivery runs in ``careweave worker`` processes), which leases
   only the subscriptions bound here (:meth:`WebsocketHub.bound_pairs`; worker.py rule 5).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid as uuidlib
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import orjson

from careweave.events.channels.base import Delivery, DeliveryResult
from careweave.events.channels.websocket import Bound, Refused, read_client_frame, refusal_text
from careweave.events.notification import StatusInfo, notification_bundle, render_json
from careweave.events.render import tenant_base
from careweave.events.subscription import read_subscription
from careweave.store.base import Store, Tenant
from careweave.store.sql import events as events_sql

__all__ = ["WS_PATH", "WebsocketHub"]

WS_PATH = "$subscription-ws"

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]


def _refusal(refused: Refused) -> str:
    """The channel module's OperationOutcome, with careweave's code (CW-6002) on its issue."""
    outcome = orjson.loads(refusal_text(refused))
    for issue in outcome["issue"]:
        issue["details"] = {
            "coding": [{"system": "https://careweave.org/fhir/CodeSystem/issue", "code": "CW-6002"}]
        }
    return orjson.dumps(outcome).decode()


def _now() -> int:
    return time.time_ns() // 1_000_000


class WebsocketHub:
    def __init__(
        self,
        store: Store,
        secret: bytes,
        base_url: str,
        tenant_of: Callable[[str], Awaitable[Tenant | None]],
        *,
        on_bind: Callable[[Tenant, str], Awaitable[None]] | None = None,
        clock: Callable[[], int] = _now,
    ) -> None:
        self._store = store
        self._secret = secret
        self._base_url = base_url
        self._tenant_of = tenant_of
        self._on_bind = on_bind
        self._clock = clock
        self._bound: dict[tuple[str, str], set[asyncio.Queue[str | None]]] = {}
        self._tids: dict[str, int] = {}  # tenant name -> key, for the bound pairs

    def bound_pairs(self) -> list[tuple[int, str]]:
        """(tenant key, subscription id) of every subscription with a client bound here."""
        return [(self._tids[name], sid) for (name, sid), queues in self._bound.items() if queues]

    @staticmethod
    def tenant_name(path: str) -> str | None:
        """The tenant a websocket path is for (None: not the websocket endpoint)."""
        if path == f"/fhir/{WS_PATH}":
            return "default"
        parts = path.split("/")
        if len(parts) == 5 and parts[1] == "t" and parts[3] == "fhir" and parts[4] == WS_PATH:
            return parts[2]
        return None

    # -- the channel ------------------------------------------------------------------------------------
    async def deliver(self, delivery: Delivery) -> DeliveryResult:
        queues = self._bound.get((delivery.tenant, delivery.subscription_id))
        if not queues:
            return DeliveryResult(False, error="no websocket client is bound", retryable=True)
        text = delivery.body.decode()
        for queue in list(queues):
            queue.put_nowait(text)
        return DeliveryResult(True)

    # -- the endpoint -----------------------------------------------------------------------------------
    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        name = self.tenant_name(scope.get("path", ""))
        message = await receive()
        if message["type"] != "websocket.connect":
            return
        tenant = await self._tenant_of(name) if name is not None else None
        if tenant is None:
            await send({"type": "websocket.close", "code": 1008})
            return
        await send({"type": "websocket.accept"})
        outbox: asyncio.Queue[str | None] = asyncio.Queue()
        keys: list[tuple[str, str]] = []
        writer = asyncio.create_task(self._write(outbox, send))
        try:
            await self._read(tenant, receive, outbox, keys)
        finally:
            for key in keys:
                queues = self._bound.get(key, set())
                queues.discard(outbox)
                if not queues:
                    self._bound.pop(key, None)
            outbox.put_nowait(None)
            with contextlib.suppress(Exception):
                await writer

    async def _write(self, outbox: asyncio.Queue[str | None], send: Send) -> None:
        while True:
            text = await outbox.get()
            if text is None:
                return
            if text.startswith("\0close:"):
                await send({"type": "websocket.send", "text": text[len("\0close:") :]})
                await send({"type": "websocket.close", "code": 1008})
                return
            await send({"type": "websocket.send", "text": text})

    async def _read(
        self, tenant: Tenant, receive: Receive, outbox: asyncio.Queue[str | None], keys: list[tuple[str, str]]
    ) -> None:
        while True:
            message = await receive()
            if message["type"] == "websocket.disconnect":
                return
            if message["type"] != "websocket.receive":
                continue
            text = message.get("text") or (message.get("bytes") or b"").decode("utf-8", "replace")
            found = read_client_frame(text, self._secret, tenant=tenant.name, now_ms=self._clock())
            if isinstance(found, Refused):
                outbox.put_nowait("\0close:" + _refusal(found))
                return
            await self._bind(tenant, found, outbox, keys)

    async def _bind(
        self, tenant: Tenant, bound: Bound, outbox: asyncio.Queue[str | None], keys: list[tuple[str, str]]
    ) -> None:
        for sid in bound.grant.subscription_ids:
            handshake = await self._handshake(tenant, sid)
            if handshake is None:
                continue
            outbox.put_nowait(handshake)
            key = (tenant.name, sid)
            self._tids[tenant.name] = tenant.key
            self._bound.setdefault(key, set()).add(outbox)
            keys.append(key)
            if self._on_bind is not None:
                await self._on_bind(tenant, sid)

    async def _handshake(self, tenant: Tenant, sid: str) -> str | None:
        stored = await self._store.read(tenant, "Subscription", sid)
        if stored is None or stored.body is None:
            return None
        spec, _ = read_subscription(orjson.loads(stored.body))
        if spec is None or spec.channel.type != "websocket":
            return None
        row = await self._store.sql_read(lambda sql: events_sql.subscription(sql, tenant.key, sid))
        info = StatusInfo(sid, spec.status, "handshake", spec.topic, row.last_number if row else 0)
        bundle = notification_bundle(
            info,
            (),
            content=spec.channel.content,
            base_url=tenant_base(self._base_url, tenant.name),
            bundle_id=str(uuidlib.uuid4()),
            timestamp_ms=self._clock(),
        )
        return render_json(bundle).decode()
