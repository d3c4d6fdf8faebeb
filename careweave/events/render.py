"""Notification bodies from the queue: a delivery (or a range of events) -> notification Bundle JSON.

Rules:
1. A body depends only on what is stored: the delivery's id (Bundle.id), its creation time
   (Bundle.timestamp), its kind and event numbers, the events' stored versions (read with vread,
   so ``full-resource`` carries the version that triggered, not a later one) and the
   subscription's channel settings. A retry sends the same notification.
2. ``events-since-subscription-start`` is the delivery's last event number: the count when the
   notification was made.
3. The service base is absolute: ``base_url`` + ``/fhir`` for the default tenant, ``/t/<name>/fhir``
   for others.
4. Classic R4 subscriptions on rest-hook follow R4 itself (:func:`classic_request`); on the other
   channels (websocket, mailbox, NATS), which R4 does not define that way, they get the backport's
   notification Bundles like topic-based ones.
5. Additional context (the topic's notificationShape, found when the event was queued: dispatch.py
   rule 6) is given as ``additional-context`` references and entries (``GET Type/id``), with the
   resources, at the versions found then, for ``full-resource`` payloads.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson

from careweave.events.mpi_feed import MPI_TOPIC, reference_focus
from careweave.events.notification import (
    ContextItem,
    EventInfo,
    ResourceRef,
    StatusInfo,
    notification_bundle,
    render_json,
)
from careweave.events.subscription import SubscriptionSpec
from careweave.store.base import Store, Tenant
from careweave.store.sql.events import DeliveryRow, EventRow

__all__ = ["KIND_TYPES", "classic_request", "event_infos", "render_delivery", "tenant_base"]

KIND_TYPES = {"event": "event-notification", "handshake": "handshake", "heartbeat": "heartbeat"}


def tenant_base(base_url: str, tenant: str) -> str:
    base = base_url.rstrip("/")
    return f"{base}/fhir" if tenant == "default" else f"{base}/t/{tenant}/fhir"


async def event_infos(
    store: Store, tenant: Tenant, rows: Sequence[EventRow], content: str
) -> list[EventInfo]:
    out = []
    for row in rows:
        resource = None
        if content == "full-resource" and row.interaction != "delete":
            resource = await _version(store, tenant, row.type, row.id, row.version)
        ref = ResourceRef(row.type, row.id, row.version)
        context = await _context(store, tenant, row.context, content)
        out.append(EventInfo(row.number, row.ts_ms, ref, row.interaction, resource, context))
    return out


async def _version(store: Store, tenant: Tenant, type_: str, id_: str, version: int) -> dict[str, Any] | None:
    stored = await store.vread(tenant, type_, id_, version)
    if stored is None or stored.body is None:
        return None
    found: dict[str, Any] = orjson.loads(stored.body)
    return found


async def _context(store: Store, tenant: Tenant, stored: str | None, content: str) -> tuple[ContextItem, ...]:
    """Rule 5: the event's additional context (``empty`` payloads carry none)."""
    if not stored or content == "empty":
        return ()
    items = []
    for text in stored.split():
        type_, id_, version = text.split("/")
        ref = ResourceRef(type_, id_, int(version))
        resource = (
            await _version(store, tenant, type_, id_, int(version)) if content == "full-resource" else None
        )
        items.append(ContextItem(ref, resource))
    return tuple(items)


async def render_delivery(
    store: Store,
    tenant: Tenant,
    spec: SubscriptionSpec,
    status: str,
    delivery: DeliveryRow,
    rows: Sequence[EventRow],
    service_base: str,
) -> bytes:
    """The body of one queued notification (rules 1-3); ``service_base`` is the tenant's
    (:func:`tenant_base`)."""
    content = spec.channel.content
    infos = await event_infos(store, tenant, rows, content) if delivery.kind == "event" else []
    info = StatusInfo(
        subscription_id=spec.id,
        status=status,
        type=KIND_TYPES[delivery.kind],
        topic=spec.topic,
        events_since_start=delivery.last_number,
    )
    bundle = notification_bundle(
        info,
        infos,
        content=content,
        base_url=service_base,
        bundle_id=delivery.uuid,
        timestamp_ms=delivery.created_ms,
    )
    if spec.topic == MPI_TOPIC:
        bundle = reference_focus(bundle)
    return render_json(bundle)


async def classic_request(
    store: Store, tenant: Tenant, spec: SubscriptionSpec, rows: Sequence[EventRow]
) -> tuple[str, str, bytes]:
    """A classic R4 rest-hook notification (R4 subscription-channel-type: "The channel is executed
    by making a post to the URI. If a payload is included, the URL is interpreted as the service
    base, and an update (PUT) is made"): (method, URL, body). Without a payload, a POST with no
    body; with one, a PUT of the version that triggered to ``[endpoint]/[type]/[id]``."""
    endpoint = spec.channel.endpoint or ""
    if spec.channel.content == "empty" or not rows:
        return "POST", endpoint, b""
    row = rows[-1]
    stored = await store.vread(tenant, row.type, row.id, row.version)
    if stored is None or stored.body is None:
        return "POST", endpoint, b""
    return "PUT", f"{endpoint.rstrip('/')}/{row.type}/{row.id}", stored.body
