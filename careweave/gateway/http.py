"""HL7 v2 over HTTP, and the operator's view of the inbox: a plain ASGI application.

Routes (``PREFIX`` is ``/hl7v2`` for routing by MSH-4, or ``/t/{tenant}/hl7v2`` for one tenant):

* ``POST PREFIX``: the body is one message or a batch (``Content-Type: x-application/hl7-v2+er7``;
  ``application/hl7-v2`` is accepted too). The answer, 200, is the application ACK (AA, AE or
  AR; a batch ACK for a batch), after the message was stored (the service's rules 1-2).
* ``GET PREFIX/messages?status=error,rejected&ackState=failed&_count=50&before=ID``: stored
  messages, newest first, as JSON (``next`` names the following page); ``ackState`` filters by
  the state of the enhanced-mode application ACK (pending, sent, failed, kept).
* ``GET PREFIX/messages/ID``: one message as JSON: its text, status, reason, the ACKs sent and
  the delivery attempts of its application ACK.
* ``POST PREFIX/messages/ID/$resend-ack``: send its application ACK again (a new series of
  attempts, the first awaited); 200 with the message; CW-7004 (409) when it has no application
  ACK or its facility no return address.
* ``POST PREFIX/messages/ID/$replay``: process it again; a body (same content types) replaces
  the text first (the text first received is kept as ``original``). 200 with the message when it
  is processed; an OperationOutcome (CW-7001 400, CW-7002 415) with the reason when it fails again.

Every error is an OperationOutcome with its status. There is no access control yet (the
security issue): deploy the operator routes behind the same protection as the FHIR API.
Nothing here logs a body.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable, MutableMapping
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl, unquote

from careweave.errors import CareweaveError, error
from careweave.gateway.service import ACK_STATES, ERROR, PROCESSED, REJECTED, STATUSES, Gateway
from careweave.hl7v2.charset import decode
from careweave.hl7v2.errors import Hl7v2Error
from careweave.interactions.result import STATUS, operation_outcome
from careweave.store.base import Tenant
from careweave.store.sql.hl7 import InboxRow

__all__ = ["ER7_TYPES", "Hl7v2Api"]

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]

ER7_TYPES = frozenset({"x-application/hl7-v2+er7", "application/hl7-v2", "application/hl7-v2+er7"})
log = logging.getLogger("careweave.gateway")

_ER7 = b"x-application/hl7-v2+er7"
_JSON = b"application/json"


class Hl7v2Api:
    """ASGI app for the routes above; the FHIR app hands it every ``/hl7v2`` and
    ``/t/{tenant}/hl7v2`` request."""

    def __init__(self, gateway: Gateway, *, max_body_bytes: int) -> None:
        self.gateway = gateway
        self._max_body = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            status, body, media = await self._route(scope, receive)
        except CareweaveError as exc:
            outcome = operation_outcome(exc.all_issues())
            status, body, media = STATUS[exc.category], json.dumps(outcome).encode(), b"application/fhir+json"
        headers = [(b"content-type", media), (b"content-length", str(len(body)).encode())]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    async def _route(self, scope: Scope, receive: Receive) -> tuple[int, bytes, bytes]:
        path: str = scope["path"]
        tenant_name: str | None = None
        if path.startswith("/t/"):
            tenant_name, _, path = path[3:].partition("/")
            path = "/" + path
        rest = path[len("/hl7v2") :].strip("/")
        method: str = scope["method"]
        tenant = await self._tenant(tenant_name)
        parts = rest.split("/") if rest else []
        if not parts:
            self._allow(method, "POST")
            body = await self._body(scope, receive, required=True)
            source = f"http:{(scope.get('client') or ('?', 0))[0]}"
            try:
                forced = None if tenant_name is None else tenant
                received = await self.gateway.receive(body, source, forced, wait=True)
            except Exception as exc:  # as over MLLP: the sender gets an AR and may send again
                log.error("POST /hl7v2 failed: %s", type(exc).__name__)
                return 200, self.gateway.refusal(body, exc), _ER7
            return 200, received.application, _ER7
        if parts[0] != "messages" or len(parts) > 3:
            raise error("CW-1012", f"nothing at {scope['path']}")
        if len(parts) == 1:
            self._allow(method, "GET")
            return 200, self._list(tenant, scope, await self._page(tenant, scope)), _JSON
        id = _message_id(parts[1])
        if len(parts) == 2:
            self._allow(method, "GET")
            return 200, _dumps(await self._detail(tenant, await self.gateway.message(tenant, id))), _JSON
        if unquote(parts[2]) == "$resend-ack":
            self._allow(method, "POST")
            row = await self.gateway.resend_ack(tenant, id)
            return 200, _dumps(await self._detail(tenant, row)), _JSON
        if unquote(parts[2]) != "$replay":
            raise error("CW-1012", f"nothing at {scope['path']}")
        self._allow(method, "POST")
        corrected = await self._body(scope, receive, required=False)
        row = await self.gateway.replay(tenant, id, corrected or None)
        if row.status == PROCESSED:
            return 200, _dumps(await self._detail(tenant, row)), _JSON
        code = "CW-7002" if row.status == REJECTED else "CW-7001"
        raise error(code, f"message {row.id} is {row.status} again: {row.reason or ''}")

    async def _detail(self, tenant: Tenant, row: InboxRow) -> dict[str, Any]:
        out = _detail(tenant, row)
        if row.app_ack_state in ("pending", "sent", "failed"):
            delivery = await self.gateway.ack_delivery(tenant, row.id)
            if delivery is not None:
                out["applicationAckDelivery"] = {
                    "attempts": delivery.attempts,
                    "lastAttempt": _instant(delivery.updated_ms),
                    **({"nextAttempt": _instant(delivery.next_ms)} if row.app_ack_state == "pending" else {}),
                    **({"lastError": delivery.last_error} if delivery.last_error else {}),
                }
        return out

    async def _tenant(self, name: str | None) -> Tenant:
        key = "default" if name is None else unquote(name)
        tenant = await self.gateway.services.tenants.get(key)
        if tenant is None:
            raise error("CW-4001", f"unknown tenant {key!r}")
        return tenant

    @staticmethod
    def _allow(method: str, allowed: str) -> None:
        if method != allowed:
            raise error("CW-1013", f"{method} is not allowed here (use {allowed})")

    async def _body(self, scope: Scope, receive: Receive, *, required: bool) -> bytes:
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        declared = headers.get("content-length", "")
        if declared.isdigit() and int(declared) > self._max_body:
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
        body = b"".join(chunks)
        if not body.strip():
            if required:
                raise error("CW-1007", "the request has no body: send an HL7 v2 message")
            return b""
        media = headers.get("content-type", "").split(";")[0].strip().lower()
        if media not in ER7_TYPES:
            raise error("CW-1002", f"send HL7 v2 as x-application/hl7-v2+er7, not {media or 'no type'}")
        return body

    async def _page(self, tenant: Tenant, scope: Scope) -> tuple[list[InboxRow], int, str]:
        params = dict(parse_qsl(scope.get("query_string", b"").decode("utf-8", "replace")))
        statuses = tuple(s for s in params.get("status", "").split(",") if s)
        unknown = [s for s in statuses if s not in STATUSES]
        if unknown:
            raise error("CW-1011", f"status must be among {', '.join(STATUSES)}, not {unknown[0]!r}")
        states = tuple(s for s in params.get("ackState", "").split(",") if s)
        unknown = [s for s in states if s not in ACK_STATES]
        if unknown:
            raise error("CW-1011", f"ackState must be among {', '.join(ACK_STATES)}, not {unknown[0]!r}")
        count = _number(params.get("_count", "50"), "_count")
        before = _number(params["before"], "before") if "before" in params else None
        rows = await self.gateway.messages(tenant, statuses, before, min(max(count, 1), 1000), states)
        query = (f"&status={','.join(statuses)}" if statuses else "") + (
            f"&ackState={','.join(states)}" if states else ""
        )
        return rows, min(max(count, 1), 1000), query

    @staticmethod
    def _list(tenant: Tenant, scope: Scope, page: tuple[list[InboxRow], int, str]) -> bytes:
        rows, count, filters = page
        out: dict[str, Any] = {"tenant": tenant.name, "messages": [_summary(r) for r in rows]}
        if len(rows) == count:
            out["next"] = f"{scope['path']}?_count={count}&before={rows[-1].id}{filters}"
        return _dumps(out)


def _message_id(text: str) -> int:
    if not text.isdecimal() or len(text) > 18:
        raise error("CW-7003", f"{text[:40]!r} is not a message id")
    return int(text)


def _number(text: str, name: str) -> int:
    if not text.isdecimal() or len(text) > 9:
        raise error("CW-1011", f"{name} must be a whole number")
    return int(text)


def _dumps(value: Any) -> bytes:
    return json.dumps(value, ensure_ascii=False).encode("utf-8")


def _text(data: bytes | None) -> str | None:
    if data is None:
        return None
    try:
        return decode(data)[0]
    except Hl7v2Error:
        return data.decode("latin-1")


def _instant(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _summary(row: InboxRow) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": row.id,
        "status": row.status,
        "type": row.kind,
        "sendingApplication": row.sender,
        "sendingFacility": row.facility,
        "controlId": row.control_id,
        "received": _instant(row.received_ms),
        "updated": _instant(row.updated_ms),
        "attempts": row.attempts,
    }
    if row.status in (ERROR, REJECTED) and row.reason:
        out["reason"] = row.reason
    if row.app_ack_state:
        out["applicationAckState"] = row.app_ack_state
    return out


def _detail(tenant: Tenant, row: InboxRow) -> dict[str, Any]:
    out = {"tenant": tenant.name, **_summary(row), "source": row.source, "message": _text(row.raw)}
    if row.reason:
        out["reason"] = row.reason
    if row.original is not None:
        out["original"] = _text(row.original)
    if row.reply:
        out["reply"] = _text(row.reply)
    if row.app_ack:
        out["applicationAck"] = _text(row.app_ack)
        out["applicationAckState"] = row.app_ack_state
    return out
