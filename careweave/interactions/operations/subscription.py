"""Subscription operations: the Subscriptions R5 Backport IG's ``$status``, ``$events`` and
``$get-ws-binding-token``, and careweave's own ``$dead-letters``, ``$replay``, ``$mailbox`` and
``$mailbox-ack``.

Spec: https://hl7.org/fhir/uv/subscriptions-backport/STU1.1/operations.html.

Rules:
1. ``$status`` (instance, or type level with ``id`` parameters, comma-separated or repeated, or
   every subscription of the tenant; ``status`` filters): a ``searchset`` Bundle of status
   Parameters (``type`` ``query-status``), one per subscription found, with its status and
   ``events-since-subscription-start``.
2. ``$events`` (instance): the events numbered ``eventsSinceNumber`` .. ``eventsUntilNumber``
   (defaults: the first kept and the last), at most ``max_events``, as a notification Bundle of
   type ``query-event``; ``content`` overrides the subscription's payload content.
3. ``$dead-letters`` lists notifications that gave up (instance: one subscription, each with its
   recorded attempts, oldest first, at most :data:`_MAX_ATTEMPTS`; type level: the tenant's);
   ``$replay`` (POST, instance) queues them again, oldest first, with fresh retry budgets, and
   makes an ``error`` subscription ``active`` again (optionally only the deliveries named by
   ``delivery`` parameters).
4. The mailbox channel (``backport-channel-type`` ``mailbox``): a receiver without a public endpoint
   polls ``$mailbox`` (the oldest unacknowledged notifications, at most ``_count``, in a
   ``collection`` Bundle) and acknowledges with ``$mailbox-ack`` (``id`` parameters: notification
   Bundle ids); unacknowledged ones are offered again at the next poll.
"""

from __future__ import annotations

import functools
import os
import time
import uuid as uuidlib
from typing import Any

import orjson

from careweave.errors import CareweaveError, error
from careweave.events.channels.websocket import BindingGrant, binding_token_parameters, issue_binding_token
from careweave.events.mpi_feed import MPI_TOPIC, reference_focus
from careweave.events.notification import StatusInfo, notification_bundle, status_parameters
from careweave.events.render import event_infos, render_delivery
from careweave.events.status import write_status
from careweave.events.subscription import CONTENTS, SubscriptionSpec, read_subscription
from careweave.fhir.model import format_instant
from careweave.interactions.common import parse_body
from careweave.interactions.context import Services
from careweave.interactions.request import Request
from careweave.interactions.result import Result
from careweave.store.base import Tenant, Transaction
from careweave.store.sql import events as events_sql
from careweave.store.sql.components import Sql

__all__ = [
    "SUBSCRIPTION_OPERATIONS",
    "dead_letters",
    "events",
    "get_ws_binding_token",
    "mailbox",
    "mailbox_ack",
    "replay",
    "replay_job",
    "status",
]

_MAX_EVENTS = 1000
_MAX_ATTEMPTS = 100
_ERRORS = "https://careweave.org/fhir/CodeSystem/subscription-error"
_TOKEN_SECONDS = 600


def _now() -> int:
    return time.time_ns() // 1_000_000


async def _subscription(services: Services, tenant: Tenant, sid: str) -> SubscriptionSpec:
    stored = await services.store.read(tenant, "Subscription", sid)
    if stored is None or stored.body is None:
        raise error("CW-2001", f"no Subscription/{sid}")
    spec, _ = read_subscription(orjson.loads(stored.body))
    if spec is None:
        raise error("CW-6001", f"Subscription/{sid} cannot be served")
    return spec


async def _row(services: Services, tenant: Tenant, sid: str) -> events_sql.SubscriptionRow | None:
    return await services.store.sql_read(lambda sql: events_sql.subscription(sql, tenant.key, sid))


def _params(request: Request) -> dict[str, list[str]]:
    """Operation parameters from the query string and a Parameters body (simple values only)."""
    out: dict[str, list[str]] = {}
    for name, value in request.params:
        out.setdefault(name, []).append(value)
    if request.method == "POST" and request.body and request.body.strip():
        body = parse_body(request, "Parameters")
        given = body.get("parameter", [])
        if not isinstance(given, list):
            raise error("CW-1011", "Parameters.parameter must be a list", expression=["Parameters.parameter"])
        for param in given:
            if not isinstance(param, dict) or not isinstance(param.get("name"), str):
                continue
            for key, value in param.items():
                if key.startswith("value") and isinstance(value, str | int):
                    out.setdefault(param["name"], []).append(str(value))
    return out


def _int(params: dict[str, list[str]], name: str) -> int | None:
    values = params.get(name)
    if not values:
        return None
    try:
        return int(values[0])
    except ValueError:
        raise error("CW-1011", f"{name} must be an integer") from None


# -- $status ------------------------------------------------------------------------------------------
async def status(services: Services, request: Request) -> Result:
    tenant = request.tenant
    params = _params(request)
    wanted = {c for v in params.get("status", []) for c in v.split(",") if c}
    if request.id is not None:
        ids, strict = [request.id], True
    else:
        ids = [i for v in params.get("id", []) for i in v.split(",") if i]
        strict = False
        if not ids:
            rows = await services.store.sql_read(lambda sql: events_sql.subscriptions(sql, tenant.key))
            ids = [r.sid for r in rows]
    entries = []
    for sid in dict.fromkeys(ids):
        try:
            spec = await _subscription(services, tenant, sid)
        except CareweaveError:
            if strict:
                raise
            continue  # rule 1: one entry per subscription found
        if wanted and spec.status not in wanted:
            continue
        row = await _row(services, tenant, sid)
        failed = row is not None and row.status == "error"
        info = StatusInfo(
            subscription_id=sid,
            status=spec.status,
            type="query-status",
            topic=spec.topic,
            events_since_start=row.last_number if row is not None else 0,
            errors=((_ERRORS, "delivery-failed"),) if failed else (),
        )
        parameters_id = str(uuidlib.uuid4())
        resource = status_parameters(
            info, [], content="id-only", base_url=request.base_url, parameters_id=parameters_id
        )
        entries.append(
            {"fullUrl": f"urn:uuid:{parameters_id}", "resource": resource, "search": {"mode": "match"}}
        )
    bundle = {"resourceType": "Bundle", "type": "searchset", "total": len(entries), "entry": entries}
    return Result(200, bundle)


# -- $events ------------------------------------------------------------------------------------------
async def events(services: Services, request: Request) -> Result:
    tenant, sid = request.tenant, str(request.id)
    spec = await _subscription(services, tenant, sid)
    row = await _row(services, tenant, sid)
    params = _params(request)
    content = (params.get("content") or [spec.channel.content])[0]
    if content not in CONTENTS:
        raise error("CW-1011", f"content must be one of {', '.join(CONTENTS)}")
    last = row.last_number if row is not None else 0
    since = _int(params, "eventsSinceNumber") or 1
    until = min(_int(params, "eventsUntilNumber") or last, last, since + _MAX_EVENTS - 1)
    rows = []
    if row is not None and until >= since:
        skey = row.skey
        rows = await services.store.sql_read(lambda sql: events_sql.events(sql, skey, since, until))
    infos = await event_infos(services.store, tenant, rows, content)
    info = StatusInfo(sid, spec.status, "query-event", spec.topic, last)
    bundle = notification_bundle(
        info,
        infos,
        content=content,
        base_url=request.base_url,
        bundle_id=str(uuidlib.uuid4()),
        timestamp_ms=_now(),
    )
    if spec.topic == MPI_TOPIC:
        bundle = reference_focus(bundle)
    return Result(200, bundle)


# -- $get-ws-binding-token ----------------------------------------------------------------------------
async def get_ws_binding_token(services: Services, request: Request) -> Result:
    tenant = request.tenant
    ids = [request.id] if request.id is not None else _params(request).get("id", [])
    if not ids:
        raise error("CW-1011", "name the subscriptions with id parameters")
    for sid in ids:
        spec = await _subscription(services, tenant, sid)
        if spec.channel.type != "websocket":
            raise error("CW-6003", f"Subscription/{sid} does not use the websocket channel")
    grant = BindingGrant(tenant.name, tuple(ids), _now() + _TOKEN_SECONDS * 1000)
    token = issue_binding_token(services.events_secret, grant, os.urandom(16))
    base = request.base_url
    ws = (
        ("wss://" + base[len("https://") :])
        if base.startswith("https://")
        else "ws://" + base.split("://", 1)[-1]
    )
    urls = [f"{base}/Subscription/{sid}" for sid in ids]
    return Result(200, binding_token_parameters(token, grant, f"{ws}/$subscription-ws", urls))


# -- dead letters and replay ------------------------------------------------------------------------
def _delivery_parameter(d: events_sql.DeliveryRow) -> dict[str, Any]:
    parts: list[dict[str, Any]] = [
        {"name": "delivery", "valueString": d.uuid},
        {"name": "kind", "valueCode": d.kind},
        {"name": "state", "valueCode": d.state},
        {"name": "attempts", "valueInteger": d.attempts},
    ]
    if d.kind == "event":
        parts.append({"name": "event-number", "valueString": str(d.first_number)})
    if d.last_error:
        parts.append({"name": "error", "valueString": d.last_error})
    return {"name": "notification", "part": parts}


def _attempt_parameter(
    number: int, at_ms: int, ok: bool, status: int | None, failure: str | None, duration_ms: int
) -> dict[str, Any]:
    parts: list[dict[str, Any]] = [
        {"name": "number", "valueInteger": number},
        {"name": "at", "valueInstant": format_instant(at_ms)},
        {"name": "ok", "valueBoolean": ok},
        {"name": "duration-ms", "valueInteger": duration_ms},
    ]
    if status is not None:
        parts.append({"name": "status", "valueInteger": status})
    if failure:
        parts.append({"name": "error", "valueString": failure})
    return {"name": "attempt", "part": parts}


async def dead_letters(services: Services, request: Request) -> Result:
    tenant = request.tenant
    skey = None
    if request.id is not None:
        await _subscription(services, tenant, request.id)
        row = await _row(services, tenant, request.id)
        if row is None:
            return Result(200, {"resourceType": "Parameters", "parameter": []})
        skey = row.skey
    found = await services.store.sql_read(
        lambda sql: events_sql.list_deliveries(sql, tenant.key, skey=skey, state="dead", limit=1000)
    )
    if request.id is not None:
        params = []
        for d in found:
            tried = await services.store.sql_read(
                functools.partial(events_sql.attempts, did=d.did, limit=_MAX_ATTEMPTS)
            )
            entry = _delivery_parameter(d)
            entry["part"].extend(_attempt_parameter(*a) for a in tried)
            params.append(entry)
        return Result(200, {"resourceType": "Parameters", "parameter": params})
    params = []
    subs = {
        r.skey: r.sid
        for r in await services.store.sql_read(lambda sql: events_sql.subscriptions(sql, tenant.key))
    }
    for d in found:
        entry = _delivery_parameter(d)
        entry["part"].insert(
            0,
            {
                "name": "subscription",
                "valueReference": {"reference": f"Subscription/{subs.get(d.skey, '?')}"},
            },
        )
        params.append(entry)
    return Result(200, {"resourceType": "Parameters", "parameter": params})


async def replay(services: Services, request: Request) -> Result:
    tenant, sid = request.tenant, str(request.id)
    await _subscription(services, tenant, sid)
    row = await _row(services, tenant, sid)
    if row is None:
        raise error("CW-6003", f"Subscription/{sid} has no notifications yet")
    wanted = _params(request).get("delivery", [])
    indexer = (await services.search.of(tenant)).indexer
    replayed = await services.store.sql_write_tenant(
        tenant, replay_job(row.skey, sid, wanted, _now(), indexer.index)
    )
    services.wake_events()
    return Result(
        200,
        {"resourceType": "Parameters", "parameter": [{"name": "replayed", "valueInteger": replayed}]},
    )


def replay_job(skey: int, sid: str, uuids: list[str], now_ms: int, index: Any) -> Any:
    """The write of a replay: dead -> pending, and the Subscription back to active (also the CLI's)."""

    def job(sql: Sql, tx: Transaction) -> int:
        dids: list[int] = []
        if uuids:
            dids = events_sql.delivery_ids(sql, skey, uuids)
            if not dids:
                return 0
        count = events_sql.replay(sql, skey, now_ms, dids)
        write_status(sql, tx, skey, sid, "active", error=None, index=index)
        return count

    return job


# -- mailbox --------------------------------------------------------------------------------------------
async def _mailbox_row(
    services: Services, tenant: Tenant, sid: str
) -> tuple[SubscriptionSpec, events_sql.SubscriptionRow]:
    spec = await _subscription(services, tenant, sid)
    if spec.channel.type != "mailbox":
        raise error("CW-6003", f"Subscription/{sid} does not use the mailbox channel")
    row = await _row(services, tenant, sid)
    if row is None:
        raise error("CW-6003", f"Subscription/{sid} has no mailbox yet")
    return spec, row


async def mailbox(services: Services, request: Request) -> Result:
    tenant, sid = request.tenant, str(request.id)
    spec, row = await _mailbox_row(services, tenant, sid)
    count = max(1, min(_int(_params(request), "_count") or 100, 1000))
    pending = await services.store.sql_read(
        lambda sql: events_sql.list_deliveries(sql, tenant.key, skey=row.skey, state="pending", limit=count)
    )
    entries = []
    base = request.base_url
    skey = row.skey
    for d in pending:
        first, last = d.first_number, d.last_number
        rows = await services.store.sql_read(
            functools.partial(events_sql.events, skey=skey, first=first, last=last)
        )
        body = await render_delivery(services.store, tenant, spec, row.status, d, rows, base)
        entries.append({"fullUrl": f"urn:uuid:{d.uuid}", "resource": orjson.loads(body)})
    return Result(200, {"resourceType": "Bundle", "type": "collection", "entry": entries})


async def mailbox_ack(services: Services, request: Request) -> Result:
    tenant, sid = request.tenant, str(request.id)
    _, row = await _mailbox_row(services, tenant, sid)
    ids = _params(request).get("id", [])
    if not ids:
        raise error("CW-1011", "name the notifications to acknowledge with id parameters")
    now = _now()
    done = await services.store.sql_write(lambda sql: events_sql.acknowledge(sql, row.skey, ids, now))
    return Result(
        200, {"resourceType": "Parameters", "parameter": [{"name": "acknowledged", "valueInteger": done}]}
    )


_BACKPORT_OPS = "http://hl7.org/fhir/uv/subscriptions-backport/OperationDefinition/"
_OWN_OPS = "https://careweave.org/fhir/OperationDefinition/"
_SUB = frozenset({"Subscription"})
_INSTANCE = frozenset({"instance"})
_BOTH = frozenset({"type", "instance"})
_GET_POST = frozenset({"GET", "POST"})

SUBSCRIPTION_OPERATIONS: tuple[tuple[Any, ...], ...] = (
    ("status", _BACKPORT_OPS + "backport-subscription-status", _BOTH, _SUB, _GET_POST, status),
    ("events", _BACKPORT_OPS + "backport-subscription-events", _INSTANCE, _SUB, _GET_POST, events),
    (
        "get-ws-binding-token",
        _BACKPORT_OPS + "backport-subscription-get-ws-binding-token",
        _BOTH,
        _SUB,
        _GET_POST,
        get_ws_binding_token,
    ),
    ("dead-letters", _OWN_OPS + "subscription-dead-letters", _BOTH, _SUB, frozenset({"GET"}), dead_letters),
    ("replay", _OWN_OPS + "subscription-replay", _INSTANCE, _SUB, frozenset({"POST"}), replay),
    ("mailbox", _OWN_OPS + "subscription-mailbox", _INSTANCE, _SUB, _GET_POST, mailbox),
    ("mailbox-ack", _OWN_OPS + "subscription-mailbox-ack", _INSTANCE, _SUB, frozenset({"POST"}), mailbox_ack),
)
"""(name, definition, levels, types, methods, handler): rows of ``operations.OPERATIONS``."""
