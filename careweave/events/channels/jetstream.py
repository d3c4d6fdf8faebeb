"""The NATS JetStream channel: notifications published to a durable stream, one subject each.

Rules:
1. One stream (:class:`StreamSpec`, default ``CAREWEAVE_EVENTS``) holds every tenant's
   notifications on subjects ``<prefix>.<tenant>.<subscription>`` (default prefix
   ``careweave``); a consumer takes one tenant (``careweave.trust-a.>``) or one subscription.
   Subject tokens are escaped (:func:`subject_token`), so an id with a dot cannot spill into
   another subscription's subject.
2. The stream keeps messages in files (``storage=file``): a publish is acknowledged by the server
   only once the message is stored, and the channel waits for that acknowledgement. No
   acknowledgement (timeout, no stream for the subject) is a retryable failure.
3. ``Nats-Msg-Id`` is the delivery id: the server drops a second publish of the same id inside
   the stream's duplicate window (and acknowledges it as a duplicate, which counts as delivered).
   The other careweave headers (event id, numbers, source, signature) travel as NATS headers.
4. :func:`ensure_stream` creates the stream or checks an existing one (file storage, our subjects,
   a duplicate window); it raises :class:`StreamMisconfigured` rather than change one it did not
   make.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import nats.errors
import nats.js.errors
from nats.js import JetStreamContext
from nats.js.api import DiscardPolicy, RetentionPolicy, StorageType, StreamConfig, StreamInfo

from careweave.events.channels.base import Delivery, DeliveryResult, delivery_headers

__all__ = [
    "JetStreamChannel",
    "StreamMisconfigured",
    "StreamSpec",
    "ensure_stream",
    "stream_config",
    "stream_problems",
    "subject_for",
    "subject_token",
]

_UNSAFE = frozenset(".*>%") | frozenset(" \t\r\n\0")


@dataclass(frozen=True, slots=True)
class StreamSpec:
    name: str = "CAREWEAVE_EVENTS"
    subject_prefix: str = "careweave"
    duplicate_window_s: float = 600.0  # a retry within ten minutes of a lost ack is dropped
    max_age_s: float = 14 * 86_400.0  # notifications kept for replay this long
    replicas: int = 1

    @property
    def subjects(self) -> list[str]:
        return [f"{self.subject_prefix}.>"]


class StreamMisconfigured(Exception):
    """The stream exists but would not keep notifications safely (rule 4)."""

    def __init__(self, name: str, problems: list[str]) -> None:
        super().__init__(f"stream {name}: " + "; ".join(problems))
        self.problems = problems


def subject_token(value: str) -> str:
    """One subject token: ``.``, ``*``, ``>``, ``%`` and white space as ``%XX`` (rule 1)."""
    if not value:
        return "%00"
    return "".join(f"%{ord(c):02X}" if c in _UNSAFE else c for c in value)


def subject_for(spec: StreamSpec, tenant: str, subscription_id: str) -> str:
    return f"{spec.subject_prefix}.{subject_token(tenant)}.{subject_token(subscription_id)}"


def stream_config(spec: StreamSpec) -> StreamConfig:
    return StreamConfig(
        name=spec.name,
        description="careweave subscription notifications",
        subjects=spec.subjects,
        retention=RetentionPolicy.LIMITS,
        storage=StorageType.FILE,
        discard=DiscardPolicy.OLD,
        max_age=spec.max_age_s,
        duplicate_window=spec.duplicate_window_s,
        num_replicas=spec.replicas,
    )


def stream_problems(info: StreamInfo, spec: StreamSpec) -> list[str]:
    """Why an existing stream does not fit ``spec``; empty when it does (rule 4)."""
    config = info.config
    problems = []
    if config.storage != StorageType.FILE:
        problems.append(f"storage is {config.storage}, not file: an acknowledged publish may be lost")
    missing = [s for s in spec.subjects if s not in (config.subjects or [])]
    if missing:
        problems.append(f"it does not take the subjects {missing}")
    if not config.duplicate_window:
        problems.append("it has no duplicate window: Nats-Msg-Id cannot drop redeliveries")
    return problems


async def ensure_stream(js: JetStreamContext, spec: StreamSpec) -> StreamInfo:
    """The stream's info, creating it when it does not exist (rule 4)."""
    try:
        info = await js.stream_info(spec.name)
    except nats.js.errors.NotFoundError:
        return await js.add_stream(stream_config(spec))
    problems = stream_problems(info, spec)
    if problems:
        raise StreamMisconfigured(spec.name, problems)
    return info


class JetStreamChannel:
    """A :class:`~careweave.events.channels.base.Channel` publishing to JetStream (rules 1-3)."""

    def __init__(
        self,
        js: JetStreamContext,
        spec: StreamSpec | None = None,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._js = js
        self._spec = spec or StreamSpec()
        self._clock = clock

    async def deliver(self, delivery: Delivery) -> DeliveryResult:
        headers = dict(delivery_headers(delivery, int(self._clock())))
        headers["Nats-Msg-Id"] = delivery.id
        subject = subject_for(self._spec, delivery.tenant, delivery.subscription_id)
        try:
            await self._js.publish(
                subject,
                delivery.body,
                timeout=delivery.timeout_s,
                stream=self._spec.name,
                headers=headers,
            )
        except (nats.errors.TimeoutError, TimeoutError):
            return DeliveryResult(False, error="no acknowledgement from JetStream in time", retryable=True)
        except nats.js.errors.NoStreamResponseError:
            return DeliveryResult(False, error=f"no stream takes {subject}", retryable=True)
        except nats.errors.Error as exc:
            return DeliveryResult(False, error=f"{type(exc).__name__}: {exc}", retryable=True)
        return DeliveryResult(True)
