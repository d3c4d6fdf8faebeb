"""Subscriptions end to end in one process: writes through the FHIR API, the dispatcher following the
change log, the delivery worker POSTing to a real webhook receiver (uvicorn on 127.0.0.1).

Specs: https://hl7.org/fhir/R4/subscription.html and the Subscriptions R5 Backport IG v1.1.0
(https://hl7.org/fhir/uv/subscriptions-backport/STU1.1/), notifications, handshake, errors.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import orjson
import pytest

from careweave.events.channels.base import EVENT_ID_HEADER
from careweave.events.numbering import event_numbers, events_since_start
from careweave.events.signing import SIGNATURE_HEADER, verify_signature
from careweave.settings import Settings
from careweave.store.sql import events as events_sql
from careweave.system import System
from tests.events.conftest import DISCHARGE, discharge_topic_basic, subscription
from tests.events.receiver import Receiver

pytestmark = pytest.mark.anyio

SECRET = "test-events-secret"
LOINC = "http://loinc.org"


OBS_TOPIC = "https://careweave.org/fhir/SubscriptionTopic/observation-written"


def observation_topic() -> dict[str, Any]:
    """A built-in topic (R4B/R5 JSON, given in settings): any Observation created or updated."""
    return {
        "resourceType": "SubscriptionTopic",
        "url": OBS_TOPIC,
        "status": "active",
        "resourceTrigger": [{"resource": "Observation", "supportedInteraction": ["create", "update"]}],
    }


def topic_subscription(
    endpoint: str, status: str = "requested", content: str = "id-only", code: str | None = "1234-5"
) -> dict[str, Any]:
    filters = (f"Observation?code={LOINC}|{code}",) if code else ()
    resource = subscription(
        criteria=OBS_TOPIC, filters=filters, content=content, endpoint=endpoint, status=status
    )
    del resource["id"]
    return resource


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    topics = tmp_path / "topics.json"
    topics.write_bytes(orjson.dumps([observation_topic()]))
    return Settings(
        data_dir=tmp_path / "data",
        sqlite_synchronous="NORMAL",
        base_url="http://fhir.test",
        events_retry_first_s=0.2,
        events_retry_cap_s=0.5,
        events_give_up_s=60.0,
        events_poll_ms=100,
        events_secret=SECRET,
        events_topics=str(topics),
    )


@pytest.fixture
async def running(system: System) -> AsyncIterator[System]:
    assert system.events is not None
    stop = asyncio.Event()
    task = asyncio.create_task(system.events.run(stop))
    try:
        yield system
    finally:
        stop.set()
        await asyncio.wait_for(task, 10)


async def wait_for(check: Callable[[], Any], timeout: float = 15.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if asyncio.iscoroutine(value):
            value = await value
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting")
        await asyncio.sleep(0.05)


def observation(code: str = "1234-5", value: float = 1.0) -> dict[str, Any]:
    return {
        "resourceType": "Observation",
        "status": "final",
        "code": {"coding": [{"system": LOINC, "code": code}]},
        "valueQuantity": {"value": value, "unit": "mmol/L"},
    }


def classic(endpoint: str, status: str = "requested", payload: bool = True) -> dict[str, Any]:
    channel: dict[str, Any] = {
        "type": "rest-hook",
        "endpoint": endpoint,
        "header": ["Authorization: Bearer x"],
    }
    if payload:
        channel["payload"] = "application/fhir+json"
    return {
        "resourceType": "Subscription",
        "status": status,
        "reason": "test",
        "criteria": f"Observation?code={LOINC}|1234-5",
        "channel": channel,
    }


def notifications(receiver: Receiver, kind: str = "event-notification") -> list[dict[str, Any]]:
    out = []
    for r in list(receiver.received):
        if r.status != 200 or not r.body:
            continue
        bundle = orjson.loads(r.body)
        params = bundle["entry"][0]["resource"]["parameter"]
        if any(p["name"] == "type" and p["valueCode"] == kind for p in params):
            out.append(bundle)
    return out


def numbers_seen(receiver: Receiver) -> list[int]:
    """Event numbers of the notifications taken (2xx), in arrival order, from the header every
    notification carries (classic R4 ones have no Bundle to read them from)."""
    out = []
    for r in list(receiver.received):
        header = r.headers.get("x-careweave-event-numbers")
        if 200 <= r.status < 300 and header:
            out.extend(int(n) for n in header.split(","))
    return out


async def create(client: Any, resource: dict[str, Any]) -> dict[str, Any]:
    r = await client.post(f"/fhir/{resource['resourceType']}", json=resource)
    assert r.status_code == 201, r.text
    return dict(r.json())


async def status_of(client: Any, sid: str) -> str:
    r = await client.get(f"/fhir/Subscription/{sid}")
    return str(r.json()["status"])


async def test_handshake_activates_and_events_arrive_signed_in_order(running, client, receiver) -> None:
    sub = await create(client, topic_subscription(receiver.url, content="full-resource"))
    await wait_for(lambda: notifications(receiver, "handshake"))
    await wait_for(lambda: _is(status_of(client, sub["id"]), "active"))
    first = await create(client, observation())
    await create(client, observation(code="other"))  # does not match the criteria
    await create(client, observation(value=2.0))
    await wait_for(lambda: len(numbers_seen(receiver)) >= 2)
    await asyncio.sleep(0.3)
    bundles = notifications(receiver)
    assert [event_numbers(b) for b in bundles] == [(1,), (2,)]
    assert [events_since_start(b) for b in bundles] == [1, 2]
    focus = bundles[0]["entry"][1]
    assert focus["fullUrl"] == f"http://fhir.test/fhir/Observation/{first['id']}"
    assert focus["resource"]["id"] == first["id"]  # full-resource
    assert bundles[0]["type"] == "history"
    assert {"name": "topic", "valueCanonical": OBS_TOPIC} in bundles[0]["entry"][0]["resource"]["parameter"]
    hits = [r for r in receiver.received if r.body and orjson.loads(r.body)["id"] == bundles[0]["id"]]
    assert hits[0].headers[EVENT_ID_HEADER.lower()] == bundles[0]["id"]
    check = verify_signature(
        hits[0].headers[SIGNATURE_HEADER.lower()], hits[0].body, [SECRET.encode()], now_s=int(time.time())
    )
    assert check.ok, check.reason
    # the status writes were careweave's own: nobody is notified of them, and they happened once
    history = (await client.get(f"/fhir/Subscription/{sub['id']}/_history")).json()
    assert [e["resource"]["status"] for e in history["entry"]] == ["active", "requested"]


async def test_classic_r4_rest_hook_puts_the_resource_or_posts_nothing(running, client, receiver) -> None:
    """R4 subscription-channel-type rest-hook: "The channel is executed by making a post to the URI.
    If a payload is included, the URL is interpreted as the service base, and an update (PUT) is
    made." No handshake in R4: a requested classic subscription is made active at once."""
    with_payload = await create(client, classic(receiver.url))
    without = await create(client, classic(receiver.url + "/bare", payload=False))
    for sid in (with_payload["id"], without["id"]):
        await wait_for(lambda sid=sid: _is(status_of(client, sid), "active"))
    assert receiver.received == []
    made = await create(client, observation())
    await wait_for(lambda: len(receiver.received) >= 2)
    by_path = {r.path: r for r in receiver.received}
    put = by_path[f"/hook/Observation/{made['id']}"]
    assert put.method == "PUT" and put.headers["authorization"] == "Bearer x"
    body = orjson.loads(put.body)
    assert (body["id"], body["meta"]["versionId"]) == (made["id"], "1")
    assert put.headers["content-type"].startswith("application/fhir+json")
    assert put.headers["x-careweave-event-numbers"] == "1"
    bare = by_path["/hook/bare"]
    assert (bare.method, bare.body) == ("POST", b"")
    check = verify_signature(
        bare.headers[SIGNATURE_HEADER.lower()], b"", [SECRET.encode()], now_s=int(time.time())
    )
    assert check.ok


async def _is(value: Any, expected: Any) -> bool:
    return bool(await value == expected)


async def _has_len(value: Any, n: int) -> bool:
    return len(await value) == n


async def test_receiver_down_then_back_gets_every_event_in_order(running, client, receiver) -> None:
    sub = await create(client, classic(receiver.url))
    await wait_for(lambda: _is(status_of(client, sub["id"]), "active"))
    for i in range(5):
        await create(client, observation(value=float(i)))
    await wait_for(lambda: len(numbers_seen(receiver)) >= 5)
    receiver.stop()
    for i in range(5, 15):
        await create(client, observation(value=float(i)))
    await asyncio.sleep(2.0)  # retries fail meanwhile: connection refused
    receiver.start()
    await wait_for(lambda: set(numbers_seen(receiver)) >= set(range(1, 16)), timeout=20)
    seen = numbers_seen(receiver)
    first_arrivals = list(dict.fromkeys(seen))
    assert first_arrivals == list(range(1, 16))  # in order, none missing
    assert await status_of(client, sub["id"]) == "active"


async def test_a_subscriber_that_always_fails_ends_in_error_and_is_replayable(
    settings, definitions, receiver, tmp_path
) -> None:
    from dataclasses import replace

    import httpx

    from careweave.system import build_system

    system = build_system(replace(settings, events_give_up_s=1.5), definitions)
    stop = asyncio.Event()
    assert system.events is not None
    task = asyncio.create_task(system.events.run(stop))
    try:
        transport = httpx.ASGITransport(app=system.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            receiver.fail_with(503, times=10_000)
            sub = await create(client, classic(receiver.url, status="active"))
            for i in range(3):
                await create(client, observation(value=float(i)))
            await wait_for(lambda: _is(status_of(client, sub["id"]), "error"), timeout=20)
            resource = (await client.get(f"/fhir/Subscription/{sub['id']}")).json()
            assert "gave up" in resource["error"] or "no success" in resource["error"]
            tenant = await system.store.tenant("default")
            assert tenant is not None
            row = await system.store.sql_read(lambda sql: events_sql.subscription(sql, tenant.key, sub["id"]))
            assert row is not None
            dead = await system.store.sql_read(
                lambda sql: events_sql.list_deliveries(sql, tenant.key, skey=row.skey, state="dead")
            )
            assert [(d.kind, d.first_number) for d in dead] == [("event", 1), ("event", 2), ("event", 3)]
            tried = await system.store.sql_read(lambda sql: events_sql.attempts(sql, dead[0].did))
            assert len(tried) >= 2 and all(not ok and status == 503 for _, _, ok, status, _, _ in tried)
            # a fourth event while in error goes straight to the dead-letter list
            await create(client, observation(value=9.0))

            async def listed() -> list[Any]:
                r = await client.get(f"/fhir/Subscription/{sub['id']}/$dead-letters")
                assert r.status_code == 200, r.text
                return list(r.json()["parameter"])

            await wait_for(lambda: _has_len(listed(), 4))
            first = (await listed())[0]["part"]
            shown = [{p["name"]: p for p in a["part"]} for a in first if a["name"] == "attempt"]
            assert len(shown) == len(tried) >= 2  # every recorded attempt, visible to the operator
            assert [a["number"]["valueInteger"] for a in shown] == list(range(1, len(tried) + 1))
            assert all(a["status"]["valueInteger"] == 503 and not a["ok"]["valueBoolean"] for a in shown)
            everywhere = (await client.get("/fhir/Subscription/$dead-letters")).json()["parameter"]
            assert len(everywhere) == 4
            # the receiver is mended; an operator replays: everything arrives, in order
            with receiver._lock:
                receiver._failures.clear()
            r = await client.post(f"/fhir/Subscription/{sub['id']}/$replay")
            assert r.status_code == 200, r.text
            assert r.json()["parameter"] == [{"name": "replayed", "valueInteger": 4}]
            await wait_for(lambda: set(numbers_seen(receiver)) >= {1, 2, 3, 4})
            assert list(dict.fromkeys(numbers_seen(receiver))) == [1, 2, 3, 4]
            assert await status_of(client, sub["id"]) == "active"
            assert await listed() == []
    finally:
        stop.set()
        await asyncio.wait_for(task, 10)
        await system.close()


async def test_topic_subscription_with_filter_notifies_id_only(running, client, receiver) -> None:
    r = await client.put("/fhir/Basic/encounter-discharge", json=discharge_topic_basic())
    assert r.status_code in (200, 201), r.text
    for pid in ("p1", "p2"):
        r = await client.put(f"/fhir/Patient/{pid}", json={"resourceType": "Patient", "id": pid})
        assert r.status_code in (200, 201)
    resource = subscription(
        filters=("Encounter?patient=Patient/p1",), endpoint=receiver.url, status="requested"
    )
    del resource["id"]
    sub = await create(client, resource)
    await wait_for(lambda: _is(status_of(client, sub["id"]), "active"))
    enc = {
        "resourceType": "Encounter",
        "status": "in-progress",
        "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "IMP"},
        "subject": {"reference": "Patient/p1"},
    }
    e1 = await create(client, enc)
    e2 = await create(client, {**enc, "subject": {"reference": "Patient/p2"}})
    for made in (e1, e2):
        r = await client.put(f"/fhir/Encounter/{made['id']}", json={**made, "status": "finished"})
        assert r.status_code == 200
    await wait_for(lambda: numbers_seen(receiver))
    await asyncio.sleep(0.3)
    bundles = notifications(receiver)
    assert len(bundles) == 1
    params = bundles[0]["entry"][0]["resource"]["parameter"]
    assert {"name": "topic", "valueCanonical": DISCHARGE} in params
    entry = bundles[0]["entry"][1]
    assert entry["fullUrl"].endswith(f"/Encounter/{e1['id']}") and "resource" not in entry
    assert entry["request"] == {"method": "PUT", "url": f"Encounter/{e1['id']}"}


async def test_a_subscription_careweave_cannot_serve_is_refused(client) -> None:
    bad = classic("https://example.org/hook")
    bad["channel"]["header"] = ["X-Careweave-Signature: forged"]
    r = await client.post("/fhir/Subscription", json=bad)
    assert r.status_code == 422
    assert "CW-6001" in r.text
    email = classic("mailto:someone@example.org")
    email["channel"]["type"] = "email"
    r = await client.post("/fhir/Subscription", json=email)
    assert r.status_code == 422 and "does not deliver" in r.text


async def test_subscriptions_see_only_their_own_tenant(running, client, receiver) -> None:
    await running.store.create_tenant("trust-b")
    sub = await create(client, classic(receiver.url, status="active"))
    r = await client.post("/t/trust-b/fhir/Observation", json=observation())
    assert r.status_code == 201
    other = await client.post("/t/trust-b/fhir/Subscription", json=classic(receiver.url, status="active"))
    assert other.status_code == 201
    mine = await create(client, observation())
    await wait_for(lambda: numbers_seen(receiver))
    await asyncio.sleep(0.5)
    # trust-b's write reached neither subscription, nor did default's write reach trust-b's
    assert [(r.method, r.path, r.headers["x-careweave-subscription"]) for r in receiver.received] == [
        ("PUT", f"/hook/Observation/{mine['id']}", sub["id"])
    ]


async def test_a_quiet_subscription_gets_heartbeats(running, client, receiver) -> None:
    resource = topic_subscription(receiver.url, status="active")
    resource["channel"]["extension"] = [
        {
            "url": "http://hl7.org/fhir/uv/subscriptions-backport/StructureDefinition/backport-heartbeat-period",
            "valueUnsignedInt": 1,
        }
    ]
    await create(client, resource)
    beats = await wait_for(lambda: notifications(receiver, "heartbeat"), timeout=10)
    assert event_numbers(beats[0]) == () and events_since_start(beats[0]) == 0
