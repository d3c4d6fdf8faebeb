"""Notification Bundles for R4, as the Subscriptions R5 Backport IG (v1.1.0) specifies them.

Profiles: ``backport-subscription-notification-r4`` (the Bundle) and
``backport-subscription-status-r4`` (its first entry, a Parameters resource).

Rules:
1. A notification is a Bundle of type ``history``. Its first entry is the subscription status, a
   Parameters resource with, in this order: ``subscription`` (Reference), ``topic`` (canonical;
   left out for ``empty`` payloads, where the IG says it SHOULD NOT be present), ``status``,
   ``type`` (handshake | heartbeat | event-notification | query-status | query-event),
   ``events-since-subscription-start`` (string), one ``notification-event`` per event (parts
   ``event-number`` string, ``timestamp`` instant, ``focus`` Reference, ``additional-context``
   References) and ``error`` CodeableConcepts. Its entry's request is ``GET
   Subscription/<id>/$status``, its response ``200`` (history entries carry both: bdl-3, bdl-4).
2. Payload content: ``empty`` carries no reference to any resource (no focus, no context, no
   other entries); ``id-only`` gives the focus and context references, and one entry per
   resource with ``fullUrl``, ``request`` and ``response`` but no resource; ``full-resource``
   adds the resources themselves (a deleted focus has none to add).
3. Entry requests follow the interaction that made the event: create ``POST Type`` (201), update
   ``PUT Type/id`` (200), delete ``DELETE Type/id`` (204); context resources ``GET Type/id`` (200).
4. Pure: ids and times are inputs. Bundle.id is the notification's id (the delivery id, which
   receivers de-duplicate on); event numbers are per subscription, from 1 (see ``numbering``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from careweave.fhir.model import format_instant

__all__ = [
    "NOTIFICATION_PROFILE",
    "NOTIFICATION_TYPES",
    "STATUS_PROFILE",
    "ContextItem",
    "EventInfo",
    "ResourceRef",
    "StatusInfo",
    "notification_bundle",
    "render_json",
    "status_parameters",
]

_IG = "http://hl7.org/fhir/uv/subscriptions-backport/StructureDefinition/"
STATUS_PROFILE = _IG + "backport-subscription-status-r4"
NOTIFICATION_PROFILE = _IG + "backport-subscription-notification-r4"
NOTIFICATION_TYPES = frozenset(
    {"handshake", "heartbeat", "event-notification", "query-status", "query-event"}
)
_CONTENTS = frozenset({"empty", "id-only", "full-resource"})
_REQUESTS = {"create": ("POST", "201"), "update": ("PUT", "200"), "delete": ("DELETE", "204")}


@dataclass(frozen=True, slots=True)
class ResourceRef:
    type: str
    id: str
    version: int | None = None

    def relative(self) -> str:
        return f"{self.type}/{self.id}"

    def absolute(self, base_url: str) -> str:
        base = base_url.rstrip("/")
        return f"{base}/{self.type}/{self.id}" if base else self.relative()


@dataclass(frozen=True, slots=True)
class ContextItem:
    """An additional-context resource (e.g. the Patient of an Encounter); ``resource`` for
    full-resource payloads."""

    ref: ResourceRef
    resource: Mapping[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class EventInfo:
    """One triggering event: its number, when it happened, the focus and how it changed."""

    number: int
    timestamp_ms: int
    focus: ResourceRef
    interaction: str  # create | update | delete
    resource: Mapping[str, Any] | None = None  # the focus content (full-resource)
    context: tuple[ContextItem, ...] = ()

    def __post_init__(self) -> None:
        if self.number < 1:
            raise ValueError("event numbers start at 1")
        if self.interaction not in _REQUESTS:
            raise ValueError(f"interaction must be one of {sorted(_REQUESTS)}")


@dataclass(frozen=True, slots=True)
class StatusInfo:
    """The subscription's state for the status entry. ``errors`` are (system, code) pairs."""

    subscription_id: str
    status: str  # requested | active | error | off
    type: str  # one of NOTIFICATION_TYPES
    topic: str | None = None
    events_since_start: int | None = None
    errors: tuple[tuple[str, str], ...] = ()

    def __post_init__(self) -> None:
        if self.type not in NOTIFICATION_TYPES:
            raise ValueError(f"type must be one of {sorted(NOTIFICATION_TYPES)}")


def status_parameters(
    status: StatusInfo,
    events: Sequence[EventInfo],
    *,
    content: str,
    base_url: str,
    parameters_id: str,
) -> dict[str, Any]:
    """The ``backport-subscription-status-r4`` Parameters resource (rule 1)."""
    subscription = ResourceRef("Subscription", status.subscription_id).absolute(base_url)
    params: list[dict[str, Any]] = [{"name": "subscription", "valueReference": {"reference": subscription}}]
    if status.topic is not None and content != "empty":
        params.append({"name": "topic", "valueCanonical": status.topic})
    params.append({"name": "status", "valueCode": status.status})
    params.append({"name": "type", "valueCode": status.type})
    if status.events_since_start is not None:
        since = str(status.events_since_start)
        params.append({"name": "events-since-subscription-start", "valueString": since})
    params.extend(_event_parameter(event, content, base_url) for event in events)
    params.extend(
        {"name": "error", "valueCodeableConcept": {"coding": [{"system": system, "code": code}]}}
        for system, code in status.errors
    )
    return {
        "resourceType": "Parameters",
        "id": parameters_id,
        "meta": {"profile": [STATUS_PROFILE]},
        "parameter": params,
    }


def _event_parameter(event: EventInfo, content: str, base_url: str) -> dict[str, Any]:
    parts: list[dict[str, Any]] = [
        {"name": "event-number", "valueString": str(event.number)},
        {"name": "timestamp", "valueInstant": format_instant(event.timestamp_ms)},
    ]
    if content != "empty":
        parts.append({"name": "focus", "valueReference": {"reference": event.focus.absolute(base_url)}})
        parts.extend(
            {"name": "additional-context", "valueReference": {"reference": item.ref.absolute(base_url)}}
            for item in event.context
        )
    return {"name": "notification-event", "part": parts}


def notification_bundle(
    status: StatusInfo,
    events: Sequence[EventInfo] = (),
    *,
    content: str,
    base_url: str,
    bundle_id: str,
    timestamp_ms: int,
) -> dict[str, Any]:
    """A notification Bundle (rules 1-3). ``bundle_id`` names the notification (a UUID); the
    status entry is ``urn:uuid:<bundle_id>``'s Parameters."""
    if content not in _CONTENTS:
        raise ValueError(f"content must be one of {sorted(_CONTENTS)}")
    parameters = status_parameters(
        status, events, content=content, base_url=base_url, parameters_id=bundle_id
    )
    entries: list[dict[str, Any]] = [
        {
            "fullUrl": f"urn:uuid:{bundle_id}",
            "resource": parameters,
            "request": {"method": "GET", "url": f"Subscription/{status.subscription_id}/$status"},
            "response": {"status": "200"},
        }
    ]
    if content != "empty":
        for event in events:
            entries.append(_focus_entry(event, content, base_url))
            entries.extend(_context_entry(item, content, base_url) for item in event.context)
    return {
        "resourceType": "Bundle",
        "id": bundle_id,
        "meta": {"profile": [NOTIFICATION_PROFILE]},
        "type": "history",
        "timestamp": format_instant(timestamp_ms),
        "entry": entries,
    }


def _focus_entry(event: EventInfo, content: str, base_url: str) -> dict[str, Any]:
    method, code = _REQUESTS[event.interaction]
    focus = event.focus
    url = focus.type if event.interaction == "create" else focus.relative()
    response: dict[str, Any] = {"status": code}
    if focus.version is not None:
        response["etag"] = f'W/"{focus.version}"'
    entry: dict[str, Any] = {"fullUrl": focus.absolute(base_url)}
    if content == "full-resource" and event.resource is not None and event.interaction != "delete":
        entry["resource"] = dict(event.resource)
    entry["request"] = {"method": method, "url": url}
    entry["response"] = response
    return entry


def _context_entry(item: ContextItem, content: str, base_url: str) -> dict[str, Any]:
    entry: dict[str, Any] = {"fullUrl": item.ref.absolute(base_url)}
    if content == "full-resource" and item.resource is not None:
        entry["resource"] = dict(item.resource)
    entry["request"] = {"method": "GET", "url": item.ref.relative()}
    entry["response"] = {"status": "200"}
    return entry


def render_json(bundle: Mapping[str, Any]) -> bytes:
    """The body of a delivery with ``application/fhir+json`` payloads."""
    return orjson.dumps(bundle)
