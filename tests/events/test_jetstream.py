"""The NATS JetStream channel against the real server at 127.0.0.1:4222 (JetStream enabled; another
URL in CAREWEAVE_TEST_NATS).

Marked ``nats``: skipped when the server is not there, but failing instead when the environment
sets CAREWEAVE_REQUIRE_SERVICES (as CI does). Each test uses its own stream and subject prefix
and deletes the stream afterwards."""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
from collections.abc import AsyncIterator

import pytest

from careweave.events.channels.base import EVENT_ID_HEADER, EVENT_NUMBERS_HEADER, Delivery
from careweave.events.channels.jetstream import (
    JetStreamChannel,
    StreamMisconfigured,
    StreamSpec,
    ensure_stream,
    stream_problems,
    subject_for,
    subject_token,
)
from careweave.events.signing import SIGNATURE_HEADER, verify_signature

pytestmark = [pytest.mark.anyio, pytest.mark.nats]

URL = os.environ.get("CAREWEAVE_TEST_NATS", "nats://127.0.0.1:4222")
NOW = 1_717_243_200.0


@pytest.fixture
async def js() -> AsyncIterator[object]:
    import nats

    async def quiet(exc: Exception) -> None:
        return None

    host, _, port = URL.removeprefix("nats://").partition(":")
    try:  # a refused port fails at once; nats-py alone would retry a refused first connection for ever
        _, writer = await asyncio.wait_for(asyncio.open_connection(host, int(port or 4222)), 2)
        writer.close()
        nc = await asyncio.wait_for(
            nats.connect(URL, connect_timeout=2, allow_reconnect=False, error_cb=quiet), 5)
    except Exception as exc:
        if os.environ.get("CAREWEAVE_REQUIRE_SERVICES"):
            pytest.fail(f"NATS is required here but {URL} is unreachable: {exc!r}")
        pytest.skip(f"NATS not reachable at {URL}")
    try:
        yield nc.jetstream()
    finally:
        await nc.close()


@pytest.fixture
async def spec(js) -> AsyncIterator[StreamSpec]:
    tag = secrets.token_hex(4)
    made = StreamSpec(name=f"CWTEST_{tag}", subject_prefix=f"cwtest{tag}", duplicate_window_s=60,
                      max_age_s=600)
    try:
        yield made
    finally:
        with contextlib.suppress(Exception):
            await js.delete_stream(made.name)


def _delivery(**kwargs) -> Delivery:
    base = dict(id=f"evt-{secrets.token_hex(6)}", tenant="trust-a", subscription_id="sub.1",
                body=b'{"resourceType":"Bundle"}', event_numbers=(1, 2), signing_secret=b"k", timeout_s=5.0)
    return Delivery(**{**base, **kwargs})


async def _fetch(js, spec: StreamSpec, subject: str, n: int):
    sub = await js.pull_subscribe(subject, stream=spec.name)
    try:
        return await sub.fetch(n, timeout=2)
    finally:
        await sub.unsubscribe()


async def test_the_stream_is_made_durable(js, spec) -> None:
    info = await ensure_stream(js, spec)
    assert info.config.storage == "file"
    assert info.config.subjects == [f"{spec.subject_prefix}.>"]
    assert info.config.duplicate_window == 60
    again = await ensure_stream(js, spec)  # an existing, fitting stream is kept
    assert again.config.name == spec.name and stream_problems(again, spec) == []


async def test_a_misconfigured_stream_is_refused(js, spec) -> None:
    from nats.js.api import StorageType, StreamConfig

    await js.add_stream(StreamConfig(name=spec.name, subjects=[f"{spec.subject_prefix}.>"],
                                     storage=StorageType.MEMORY))
    with pytest.raises(StreamMisconfigured) as raised:
        await ensure_stream(js, spec)
    assert any("not file" in p for p in raised.value.problems)


async def test_publish_waits_for_the_ack_and_carries_the_headers(js, spec) -> None:
    await ensure_stream(js, spec)
    channel = JetStreamChannel(js, spec, clock=lambda: NOW)
    delivery = _delivery()
    result = await channel.deliver(delivery)
    assert result.ok
    subject = subject_for(spec, "trust-a", "sub.1")
    assert subject == f"{spec.subject_prefix}.trust-a.sub%2E1"  # the dot cannot split the subject
    [msg] = await _fetch(js, spec, subject, 1)
    assert msg.data == delivery.body
    assert msg.headers["Nats-Msg-Id"] == delivery.id
    assert msg.headers[EVENT_ID_HEADER] == delivery.id
    assert msg.headers[EVENT_NUMBERS_HEADER] == "1,2"
    assert verify_signature(msg.headers[SIGNATURE_HEADER], msg.data, [b"k"], now_s=int(NOW)).ok
    await msg.ack()


async def test_a_redelivery_is_dropped_by_the_broker(js, spec) -> None:
    await ensure_stream(js, spec)
    channel = JetStreamChannel(js, spec)
    delivery = _delivery()
    assert (await channel.deliver(delivery)).ok
    assert (await channel.deliver(delivery)).ok  # acknowledged as a duplicate: delivered
    assert (await channel.deliver(_delivery())).ok
    info = await js.stream_info(spec.name)
    assert info.state.messages == 2


async def test_no_stream_is_a_retryable_failure(js, spec) -> None:
    channel = JetStreamChannel(js, spec)  # the stream was never made
    result = await channel.deliver(_delivery(timeout_s=1.0))
    assert not result.ok and result.retryable


async def test_subscriptions_and_tenants_get_their_own_subjects(js, spec) -> None:
    await ensure_stream(js, spec)
    channel = JetStreamChannel(js, spec)
    for tenant, sub in (("trust-a", "s1"), ("trust-a", "s2"), ("trust-b", "s1")):
        assert (await channel.deliver(_delivery(tenant=tenant, subscription_id=sub))).ok
    assert len(await _fetch(js, spec, f"{spec.subject_prefix}.trust-a.>", 5)) == 2
    assert len(await _fetch(js, spec, subject_for(spec, "trust-b", "s1"), 5)) == 1


def test_subject_tokens() -> None:
    assert subject_token("abc-1") == "abc-1"
    assert subject_token("a.b*c>d e%") == "a%2Eb%2Ac%3Ed%20e%25"
    assert subject_token("") == "%00"
