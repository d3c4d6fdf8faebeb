"""What every delivery channel shares: the Channel protocol, a delivery, its result, its headers.

Rules:
1. A :class:`Channel` delivers one notification and reports a :class:`DeliveryResult`; it never
   retries or sleeps (the worker owns the schedule: :mod:`careweave.events.retry`) and never
   raises for a failed delivery: failures are results.
2. A delivery carries a unique ``id`` (the notification's Bundle.id): sent as
   ``X-Careweave-Event-Id`` and as JetStream's ``Nats-Msg-Id``, so receivers and the broker can
   drop a redelivered duplicate. ``X-Careweave-Event-Numbers`` lists its event numbers,
   ``X-Careweave-Source`` where the change came from (an HL7 v2 message control id, say) and
   ``X-Careweave-Signature`` signs timestamp and body (:mod:`careweave.events.signing`).
3. HTTP status classes (:func:`classify_status`): 2xx delivered; 408 and 429 retryable; any other
   4xx refused for good (retrying cannot help); anything else (3xx, 5xx) retryable.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from careweave.events.signing import SIGNATURE_HEADER, sign
from careweave.events.subscription import SubscriptionSpec

__all__ = [
    "ATTEMPT_HEADER",
    "DEFAULT_CONTENT_TYPE",
    "DEFAULT_TIMEOUT_S",
    "EVENT_ID_HEADER",
    "EVENT_NUMBERS_HEADER",
    "SOURCE_HEADER",
    "SUBSCRIPTION_HEADER",
    "Channel",
    "Delivery",
    "DeliveryResult",
    "classify_status",
    "delivery_for",
    "delivery_headers",
]

EVENT_ID_HEADER = "X-Careweave-Event-Id"
EVENT_NUMBERS_HEADER = "X-Careweave-Event-Numbers"
SOURCE_HEADER = "X-Careweave-Source"
SUBSCRIPTION_HEADER = "X-Careweave-Subscription"
ATTEMPT_HEADER = "X-Careweave-Attempt"
DEFAULT_CONTENT_TYPE = "application/fhir+json"
DEFAULT_TIMEOUT_S = 10.0


@dataclass(frozen=True, slots=True)
class Delivery:
    """One notification to send. ``headers`` are the Subscription's ``channel.header`` pairs;
    ``signing_secret`` None sends it unsigned."""

    id: str
    tenant: str
    subscription_id: str
    body: bytes
    endpoint: str | None = None
    content_type: str = DEFAULT_CONTENT_TYPE
    headers: tuple[tuple[str, str], ...] = ()
    timeout_s: float = DEFAULT_TIMEOUT_S
    event_numbers: tuple[int, ...] = ()
    source: str | None = None
    attempt: int = 1
    signing_secret: bytes | None = field(default=None, repr=False)
    method: str = "POST"  # PUT for classic R4 rest-hook payloads (subscription.html: "an update (PUT)")


@dataclass(frozen=True, slots=True)
class DeliveryResult:
    ok: bool
    status: int | None = None  # the HTTP status, when there was a response
    error: str | None = None
    retryable: bool = False
    retry_after_s: float | None = None  # what the receiver asked for (Retry-After)


class Channel(Protocol):
    async def deliver(self, delivery: Delivery) -> DeliveryResult:
        """Send once; report, never raise, for a failed delivery (rule 1)."""
        ...


def classify_status(status: int) -> tuple[bool, bool]:
    """(delivered, retryable) for an HTTP status (rule 3)."""
    if 200 <= status < 300:
        return True, False
    if status in (408, 429):
        return False, True
    if 400 <= status < 500:
        return False, False
    return False, True


def _clean(value: str) -> str:
    return "".join(c for c in value if c not in "\r\n\0")


def delivery_headers(delivery: Delivery, now_s: int) -> list[tuple[str, str]]:
    """The headers every channel sends (rule 2), the subscription's own first."""
    out = list(delivery.headers)
    out.append(("Content-Type", delivery.content_type))
    out.append((EVENT_ID_HEADER, delivery.id))
    out.append((SUBSCRIPTION_HEADER, delivery.subscription_id))
    out.append((ATTEMPT_HEADER, str(delivery.attempt)))
    if delivery.event_numbers:
        out.append((EVENT_NUMBERS_HEADER, ",".join(str(n) for n in delivery.event_numbers)))
    if delivery.source:
        out.append((SOURCE_HEADER, _clean(delivery.source)))
    if delivery.signing_secret is not None:
        out.append((SIGNATURE_HEADER, sign(delivery.signing_secret, delivery.body, now_s)))
    return out


def delivery_for(
    spec: SubscriptionSpec,
    *,
    tenant: str,
    delivery_id: str,
    body: bytes,
    event_numbers: tuple[int, ...] = (),
    source: str | None = None,
    attempt: int = 1,
    signing_secret: bytes | None = None,
) -> Delivery:
    """A delivery for a subscription's channel: its endpoint, payload type, headers and timeout."""
    channel = spec.channel
    return Delivery(
        id=delivery_id,
        tenant=tenant,
        subscription_id=spec.id,
        body=body,
        endpoint=channel.endpoint,
        content_type=channel.payload or DEFAULT_CONTENT_TYPE,
        headers=channel.headers,
        timeout_s=float(channel.timeout_s) if channel.timeout_s else DEFAULT_TIMEOUT_S,
        event_numbers=event_numbers,
        source=source,
        attempt=attempt,
        signing_secret=signing_secret,
    )
