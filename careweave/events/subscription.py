"""R4 Subscription resources, topic-based (the backport profile) or classic, read into values.

Profile: http://hl7.org/fhir/uv/subscriptions-backport/StructureDefinition/backport-subscription
(IG v1.1.0). Classic R4: https://hl7.org/fhir/R4/subscription.html.

Rules:
1. ``criteria`` that is an absolute URL or URN is a topic canonical (topic-based); anything else
   is classic R4 search criteria ``Type?query``.
2. Backport extensions read: ``backport-filter-criteria`` on ``criteria`` (any number, ANDed),
   ``backport-payload-content`` on ``channel.payload`` (``empty | id-only | full-resource``),
   ``backport-heartbeat-period``, ``backport-timeout`` and ``backport-max-count`` on ``channel``,
   and ``backport-channel-type`` on ``channel.type`` (a Coding for channels R4 does not define;
   careweave's own are in :data:`CHANNEL_SYSTEM`).
3. Payload content defaults: topic-based without the content extension, ``id-only`` (with a
   warning: the profile requires it); classic with a payload, ``full-resource`` (R4 sends the
   resource); without a payload, ``empty``.
4. ``channel.header`` values are ``Name: value``; a malformed one, or one naming a header the
   channel sets itself, is an error (no header injection, no spoofed signature).
5. Reading never raises for user data: it returns the subscription (None when it cannot be
   served) and every :class:`~careweave.errors.Issue` found.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from careweave.errors import Issue

__all__ = [
    "BACKPORT",
    "CHANNEL_SYSTEM",
    "CONTENTS",
    "RESERVED_HEADERS",
    "ChannelSpec",
    "SubscriptionSpec",
    "read_subscription",
]

BACKPORT = "http://hl7.org/fhir/uv/subscriptions-backport/StructureDefinition/"
CHANNEL_SYSTEM = "https://careweave.org/fhir/CodeSystem/subscription-channel-type"
CONTENTS = ("empty", "id-only", "full-resource")
_R4_CHANNELS = frozenset({"rest-hook", "websocket", "email", "sms", "message"})
_STATUSES = frozenset({"requested", "active", "error", "off"})
_HEADER_NAME = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+\Z")
RESERVED_HEADERS = frozenset(
    {"host", "content-length", "content-type", "transfer-encoding", "connection", "nats-msg-id"}
)
"""Headers a subscription may not set (the channel sets them); ``x-careweave-*`` is reserved too."""


@dataclass(frozen=True, slots=True)
class ChannelSpec:
    """``type``: the R4 channel type, or the code of the backport custom channel type when
    there is one (``custom_system`` then names its system)."""

    type: str
    endpoint: str | None = None
    payload: str | None = None  # MIME type, e.g. application/fhir+json
    content: str = "empty"
    headers: tuple[tuple[str, str], ...] = ()
    heartbeat_s: int | None = None
    timeout_s: int | None = None
    max_count: int | None = None
    custom_system: str | None = None


@dataclass(frozen=True, slots=True)
class SubscriptionSpec:
    """A Subscription as careweave serves it: ``topic`` (topic-based) or ``criteria`` (classic)."""

    id: str
    status: str
    channel: ChannelSpec
    topic: str | None = None
    criteria: str | None = None
    filters: tuple[str, ...] = ()
    end: str | None = None
    reason: str | None = None

    @property
    def topic_based(self) -> bool:
        return self.topic is not None


def read_subscription(resource: Mapping[str, Any]) -> tuple[SubscriptionSpec | None, list[Issue]]:
    """Read a Subscription (rules 1-5)."""
    issues: list[Issue] = []
    if resource.get("resourceType") != "Subscription":
        return None, [_error("not a Subscription resource")]
    criteria = resource.get("criteria")
    if not isinstance(criteria, str) or not criteria.strip():
        return None, [_error("Subscription.criteria is required", "Subscription.criteria")]
    criteria = criteria.strip()
    topic_based = _is_canonical(criteria)
    status = resource.get("status")
    if status not in _STATUSES:
        text = f"Subscription.status must be one of {sorted(_STATUSES)}"
        issues.append(_error(text, "Subscription.status"))
    channel = _channel(resource.get("channel"), topic_based, issues)
    filters = _filters(resource.get("_criteria"), issues)
    if filters and not topic_based:
        issues.append(_error("filter criteria need a topic-based subscription", "Subscription.criteria"))
    if channel is None or any(i.is_error for i in issues):
        return None, issues
    spec = SubscriptionSpec(
        id=str(resource.get("id", "")),
        status=str(status),
        channel=channel,
        topic=criteria if topic_based else None,
        criteria=None if topic_based else criteria,
        filters=filters,
        end=resource.get("end") if isinstance(resource.get("end"), str) else None,
        reason=resource.get("reason") if isinstance(resource.get("reason"), str) else None,
    )
    return spec, issues


def _is_canonical(criteria: str) -> bool:
    """Rule 1: a URN, or an absolute URL without a query (``url|version`` included)."""
    absolute = criteria.startswith(("http://", "https://"))
    return criteria.startswith("urn:") or (absolute and "?" not in criteria)


def _error(text: str, where: str = "") -> Issue:
    return Issue("error", "invalid", text, (where,) if where else (), "CW-6001")


def _extensions(node: Any, url: str) -> list[Mapping[str, Any]]:
    if not isinstance(node, Mapping) or not isinstance(node.get("extension"), list):
        return []
    return [e for e in node["extension"] if isinstance(e, Mapping) and e.get("url") == url]


def _ext_value(node: Any, name: str, key: str) -> Any:
    found = _extensions(node, BACKPORT + name)
    return found[0].get(key) if found else None


def _filters(criteria_element: Any, issues: list[Issue]) -> tuple[str, ...]:
    out = []
    for ext in _extensions(criteria_element, BACKPORT + "backport-filter-criteria"):
        value = ext.get("valueString")
        if isinstance(value, str) and value.strip():
            out.append(value.strip())
        else:
            issues.append(_error("backport-filter-criteria needs a valueString", "Subscription.criteria"))
    return tuple(out)


def _channel(node: Any, topic_based: bool, issues: list[Issue]) -> ChannelSpec | None:
    if not isinstance(node, Mapping):
        issues.append(_error("Subscription.channel is required", "Subscription.channel"))
        return None
    type_ = node.get("type")
    custom = _ext_value(node.get("_type"), "backport-channel-type", "valueCoding")
    custom_system = None
    if isinstance(custom, Mapping) and isinstance(custom.get("code"), str):
        type_, custom_system = custom["code"], custom.get("system")
    elif type_ not in _R4_CHANNELS:
        issues.append(_error(f"unknown channel type {type_!r}", "Subscription.channel.type"))
        return None
    endpoint = node.get("endpoint") if isinstance(node.get("endpoint"), str) else None
    if type_ == "rest-hook" and not (endpoint or "").startswith(("http://", "https://")):
        text = "a rest-hook channel needs an http(s) endpoint"
        issues.append(_error(text, "Subscription.channel.endpoint"))
    payload = node.get("payload") if isinstance(node.get("payload"), str) else None
    return ChannelSpec(
        type=str(type_),
        endpoint=endpoint,
        payload=payload,
        content=_content(node, payload, topic_based, issues),
        headers=_headers(node.get("header"), issues),
        heartbeat_s=_count(node, "backport-heartbeat-period", "valueUnsignedInt", 0, issues),
        timeout_s=_count(node, "backport-timeout", "valueUnsignedInt", 0, issues),
        max_count=_count(node, "backport-max-count", "valuePositiveInt", 1, issues),
        custom_system=custom_system if isinstance(custom_system, str) else None,
    )


def _content(node: Mapping[str, Any], payload: str | None, topic_based: bool, issues: list[Issue]) -> str:
    content = _ext_value(node.get("_payload"), "backport-payload-content", "valueCode")
    if content is not None:
        if content not in CONTENTS:
            text = f"payload content must be one of {CONTENTS}"
            issues.append(_error(text, "Subscription.channel.payload"))
            return "empty"
        return str(content)
    if topic_based:
        issues.append(
            Issue(
                "warning",
                "incomplete",
                "no backport-payload-content on channel.payload: id-only is used",
                ("Subscription.channel.payload",),
            )
        )
        return "id-only"
    return "full-resource" if payload else "empty"


def _count(node: Mapping[str, Any], name: str, key: str, least: int, issues: list[Issue]) -> int | None:
    value = _ext_value(node, name, key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < least:
        issues.append(_error(f"{name} must be an integer of at least {least}", "Subscription.channel"))
        return None
    return value


def _headers(values: Any, issues: list[Issue]) -> tuple[tuple[str, str], ...]:
    out = []
    for i, raw in enumerate(values if isinstance(values, list) else []):
        where = f"Subscription.channel.header[{i}]"
        name, sep, value = raw.partition(":") if isinstance(raw, str) else ("", "", "")
        name, value = name.strip(), value.strip()
        if not sep or not _HEADER_NAME.match(name) or any(c in value for c in "\r\n\0"):
            issues.append(_error("a channel header must be 'Name: value' on one line", where))
        elif name.lower() in RESERVED_HEADERS or name.lower().startswith("x-careweave-"):
            issues.append(_error(f"the header {name} is set by the server", where))
        else:
            out.append((name, value))
    return tuple(out)
