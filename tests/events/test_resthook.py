"""The rest-hook channel against a real HTTP receiver on 127.0.0.1: what it sends, signatures the
receiver can verify, and how failures are classified (retryable or not), including a receiver
that is down and comes back on the same port."""

from __future__ import annotations

import httpx
import pytest

from careweave.events.channels.base import (
    EVENT_ID_HEADER,
    EVENT_NUMBERS_HEADER,
    SOURCE_HEADER,
    SUBSCRIPTION_HEADER,
    Delivery,
    classify_status,
    delivery_for,
)
from careweave.events.channels.resthook import RestHookChannel, retry_after
from careweave.events.signing import SIGNATURE_HEADER, verify_signature
from careweave.events.subscription import read_subscription
from tests.events.conftest import subscription

pytestmark = pytest.mark.anyio

SECRET = b"whsec-receiver"
NOW = 1_717_243_200.0


def _delivery(url: str, **kwargs) -> Delivery:
    base = dict(id="0d6f4f0e-1111-4c1e-9f5a-000000000001", tenant="trust-a", subscription_id="sub-1",
                body=b'{"resourceType":"Bundle","type":"history"}', endpoint=url, timeout_s=5.0,
                event_numbers=(7, 8), source="urn:hl7v2:MSG00042", signing_secret=SECRET)
    return Delivery(**{**base, **kwargs})


@pytest.fixture
async def channel():
    async with httpx.AsyncClient() as client:
        yield RestHookChannel(client, clock=lambda: NOW)


async def test_delivers_what_the_subscription_asked_for(channel, receiver) -> None:
    spec, _ = read_subscription(subscription(endpoint=receiver.url, headers=("Authorization: Bearer t0k",),
                                             channel_extensions=()))
    delivery = delivery_for(spec, tenant="trust-a", delivery_id="evt-1", body=b'{"a":1}',
                            event_numbers=(3,), source="urn:hl7v2:MSG1", signing_secret=SECRET)
    result = await channel.deliver(delivery)
    assert result.ok and result.status == 200 and not result.retryable
    [got] = receiver.received
    assert (got.method, got.path, got.body) == ("POST", "/hook", b'{"a":1}')
    headers = got.headers
    assert headers["content-type"] == "application/fhir+json"
    assert headers["authorization"] == "Bearer t0k"
    assert headers[EVENT_ID_HEADER.lower()] == "evt-1"
    assert headers[SUBSCRIPTION_HEADER.lower()] == spec.id
    assert headers[EVENT_NUMBERS_HEADER.lower()] == "3"
    assert headers[SOURCE_HEADER.lower()] == "urn:hl7v2:MSG1"
    check = verify_signature(headers[SIGNATURE_HEADER.lower()], got.body, [SECRET], now_s=int(NOW) + 5)
    assert check.ok and check.timestamp_s == int(NOW)
    assert not verify_signature(headers[SIGNATURE_HEADER.lower()], got.body, [b"other"], now_s=int(NOW)).ok


async def test_unsigned_when_there_is_no_secret(channel, receiver) -> None:
    assert (await channel.deliver(_delivery(receiver.url, signing_secret=None))).ok
    assert SIGNATURE_HEADER.lower() not in receiver.received[0].headers


@pytest.mark.parametrize(("status", "retryable"), [
    (500, True), (502, True), (503, True), (408, True), (429, True),
    (400, False), (401, False), (403, False), (404, False), (410, False), (422, False),
    (301, True),  # redirects are not followed
])
async def test_failures_are_classified(channel, receiver, status, retryable) -> None:
    receiver.fail_with(status)
    result = await channel.deliver(_delivery(receiver.url))
    assert not result.ok
    assert (result.status, result.retryable) == (status, retryable)
    assert result.error == f"HTTP {status}"
    assert (await channel.deliver(_delivery(receiver.url))).ok  # the next attempt goes through


async def test_retry_after_is_reported(channel, receiver) -> None:
    receiver.fail_with(429, headers=(("Retry-After", "120"),))
    result = await channel.deliver(_delivery(receiver.url))
    assert (result.retryable, result.retry_after_s) == (True, 120.0)
    receiver.fail_with(503, headers=(("Retry-After", "Sat, 01 Jun 2024 12:01:00 GMT"),))
    assert (await channel.deliver(_delivery(receiver.url))).retry_after_s == 60.0


async def test_a_receiver_that_is_down_then_back(channel, receiver) -> None:
    receiver.stop()
    down = await channel.deliver(_delivery(receiver.url))
    assert not down.ok and down.retryable and down.status is None
    assert "ConnectError" in (down.error or "")
    receiver.start()  # the same port again
    back = await channel.deliver(_delivery(receiver.url))
    assert back.ok
    assert len(receiver.received) == 1


async def test_a_slow_receiver_times_out_and_is_retryable(channel, receiver) -> None:
    receiver.delay_s = 2.0
    result = await channel.deliver(_delivery(receiver.url, timeout_s=0.2))
    assert not result.ok and result.retryable and "timed out" in (result.error or "")


async def test_no_endpoint(channel) -> None:
    result = await channel.deliver(_delivery(None))
    assert not result.ok and not result.retryable


def test_classification_table() -> None:
    assert [classify_status(s) for s in (200, 201, 204, 299)] == [(True, False)] * 4
    assert classify_status(100) == (False, True)


def test_retry_after_parsing() -> None:
    assert retry_after(None, NOW) is None
    assert retry_after("soon", NOW) is None
    assert retry_after(" 30 ", NOW) == 30.0
    assert retry_after("Sat, 01 Jun 2024 11:00:00 GMT", NOW) == 0.0  # in the past: now
