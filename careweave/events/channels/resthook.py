"""The rest-hook channel: POST the notification to the subscriber's endpoint (channels.html).

Rules:
1. One POST to ``delivery.endpoint`` with the body as is, ``Content-Type`` from the subscription's
   payload, the subscription's own headers and careweave's (see :mod:`.base`), within
   ``delivery.timeout_s`` (connect, read, write and pool together). Redirects are not followed.
2. The status decides (:func:`~careweave.events.channels.base.classify_status`); a timeout or a
   transport failure (refused, reset, DNS) is retryable. ``Retry-After`` (seconds or an HTTP
   date) is reported for the retry policy.
3. The HTTP client is injected (one pool for all deliveries; tests and benchmarks give their own),
   and so is the clock that stamps signatures.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from email.utils import parsedate_to_datetime

import httpx

from careweave.events.channels.base import Delivery, DeliveryResult, classify_status, delivery_headers

__all__ = ["RestHookChannel", "retry_after"]


class RestHookChannel:
    """A :class:`~careweave.events.channels.base.Channel` over an ``httpx.AsyncClient``."""

    def __init__(self, client: httpx.AsyncClient, *, clock: Callable[[], float] = time.time) -> None:
        self._client = client
        self._clock = clock

    async def deliver(self, delivery: Delivery) -> DeliveryResult:
        if not delivery.endpoint:
            return DeliveryResult(False, error="the subscription has no endpoint", retryable=False)
        now = self._clock()
        headers = delivery_headers(delivery, int(now))
        try:
            response = await self._client.post(
                delivery.endpoint,
                content=delivery.body,
                headers=headers,
                timeout=httpx.Timeout(delivery.timeout_s),
                follow_redirects=False,
            )
        except httpx.TimeoutException as exc:
            return DeliveryResult(False, error=f"timed out: {type(exc).__name__}", retryable=True)
        except httpx.HTTPError as exc:
            return DeliveryResult(False, error=f"{type(exc).__name__}: {exc}", retryable=True)
        ok, retryable = classify_status(response.status_code)
        error = None if ok else f"HTTP {response.status_code}"
        wait = retry_after(response.headers.get("retry-after"), now) if not ok else None
        return DeliveryResult(ok, response.status_code, error, retryable, wait)


def retry_after(value: str | None, now_s: float) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or an HTTP date); None if absent."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        at = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, at.timestamp() - now_s)
