"""The websocket and NATS JetStream channels end to end: a real ``careweave serve`` process, a
websocket client bound with a token from ``$get-ws-binding-token`` and a JetStream consumer
(NATS at 127.0.0.1:4222, or CAREWEAVE_TEST_NATS) receive the same events, in the same order.

Backport IG v1.1.0 channels.html#websockets; careweave's NATS channel (docs/subscriptions.md)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from careweave.events.channels.jetstream import subject_for
from careweave.events.numbering import event_numbers
from careweave.events.subscription import CHANNEL_SYSTEM
from tests.support import ServerProcess

pytestmark = [pytest.mark.anyio, pytest.mark.slow, pytest.mark.nats]

NATS_URL = os.environ.get("CAREWEAVE_TEST_NATS", "nats://127.0.0.1:4222")
BACKPORT = "http://hl7.org/fhir/uv/subscriptions-backport/StructureDefinition/"
CONTENT = {"extension": [{"url": BACKPORT + "backport-payload-content", "valueCode": "id-only"}]}


async def _nats() -> Any:
    import nats

    host, _, port = NATS_URL.removeprefix("nats://").partition(":")
    try:
        _, writer = await asyncio.wait_for(asyncio.open_connection(host, int(port or 4222)), 2)
        writer.close()
        return await asyncio.wait_for(nats.connect(NATS_URL, connect_timeout=2, allow_reconnect=False), 5)
    except Exception as exc:
        if os.environ.get("CAREWEAVE_REQUIRE_SERVICES"):
            pytest.fail(f"NATS is required here but {NATS_URL} is unreachable: {exc!r}")
        pytest.skip(f"NATS not reachable at {NATS_URL}")


def _subscription(channel: dict[str, Any]) -> dict[str, Any]:
    return {
        "resourceType": "Subscription",
        "status": "requested",
        "reason": "e2e",
        "criteria": "http://hl7.org/fhir/us/core/SubscriptionTopic/patient-admission",
        "channel": channel,
    }


def _topic() -> dict[str, Any]:
    return {
        "resourceType": "SubscriptionTopic",
        "url": "https://careweave.org/fhir/SubscriptionTopic/observation-final",
        "status": "active",
        "resourceTrigger": [
            {
                "resource": "Observation",
                "supportedInteraction": ["create", "update"],
                "queryCriteria": {"current": "status=final", "resultForDelete": "test-fails"},
            }
        ],
    }


async def test_websocket_and_nats_receive_the_same_events(tmp_path: Path) -> None:
    nc = await _nats()
    topics = tmp_path / "topics.json"
    topics.write_bytes(orjson.dumps([_topic()]))
    env = {
        "CAREWEAVE_EVENTS_NATS_URL": NATS_URL,
        "CAREWEAVE_EVENTS_TOPICS": str(topics),
        "CAREWEAVE_EVENTS_RETRY_FIRST_S": "0.2",
        "CAREWEAVE_EVENTS_RETRY_CAP_S": "0.5",
    }
    server = ServerProcess(tmp_path / "srv", env).start()
    topic = _topic()["url"]
    try:
        async with httpx.AsyncClient(base_url=server.url, timeout=10) as client:
            ws_sub = _subscription(
                {"type": "websocket", "payload": "application/fhir+json", "_payload": CONTENT}
            )
            ws_sub["criteria"] = topic
            r = await client.post("/fhir/Subscription", json=ws_sub)
            assert r.status_code == 201, r.text
            ws_id = r.json()["id"]
            nats_channel = {
                "type": "rest-hook",
                "_type": {
                    "extension": [
                        {
                            "url": BACKPORT + "backport-channel-type",
                            "valueCoding": {"system": CHANNEL_SYSTEM, "code": "nats"},
                        }
                    ]
                },
                "payload": "application/fhir+json",
                "_payload": CONTENT,
            }
            nats_sub = _subscription(nats_channel)
            nats_sub["criteria"] = topic
            r = await client.post("/fhir/Subscription", json=nats_sub)
            assert r.status_code == 201, r.text
            nats_id = r.json()["id"]

            js = nc.jetstream()
            from careweave.events.channels.jetstream import StreamSpec

            subject = subject_for(StreamSpec(), "default", nats_id)
            from_nats: list[dict[str, Any]] = []

            async def on_message(msg: Any) -> None:
                from_nats.append(orjson.loads(msg.data))
                await msg.ack()

            deadline = time.monotonic() + 15
            while True:  # the server makes the stream when its worker starts
                try:
                    consumer = await js.subscribe(subject, cb=on_message)
                    break
                except Exception:
                    if time.monotonic() > deadline:
                        raise
                    await asyncio.sleep(0.2)

            r = await client.post(f"/fhir/Subscription/{ws_id}/$get-ws-binding-token")
            assert r.status_code == 200, r.text
            params = {p["name"]: p for p in r.json()["parameter"]}
            import websockets

            url = params["websocket-url"]["valueUrl"].replace("http://", "ws://")
            from_ws: list[dict[str, Any]] = []
            async with websockets.connect(url) as ws:
                await ws.send(f"bind-with-token {params['token']['valueString']}")
                handshake = orjson.loads(await asyncio.wait_for(ws.recv(), 10))
                kinds = [p for p in handshake["entry"][0]["resource"]["parameter"] if p["name"] == "type"]
                assert kinds[0]["valueCode"] == "handshake"
                made = []
                for i in range(5):
                    obs = {"resourceType": "Observation", "status": "final", "code": {"text": f"r{i}"}}
                    r = await client.post("/fhir/Observation", json=obs)
                    assert r.status_code == 201
                    made.append(r.json()["id"])
                await client.post("/fhir/Observation", json={**obs, "status": "preliminary"})  # no event
                while len(from_ws) < 5:
                    from_ws.append(orjson.loads(await asyncio.wait_for(ws.recv(), 10)))
            deadline = time.monotonic() + 10
            while len([b for b in from_nats if event_numbers(b)]) < 5 and time.monotonic() < deadline:
                await asyncio.sleep(0.05)
            await consumer.unsubscribe()

            def focus_ids(bundles: list[dict[str, Any]]) -> list[str]:
                return [b["entry"][1]["fullUrl"].rsplit("/", 1)[1] for b in bundles if event_numbers(b)]

            nats_events = [b for b in from_nats if event_numbers(b)]
            assert [event_numbers(b) for b in from_ws] == [(1,), (2,), (3,), (4,), (5,)]
            assert [event_numbers(b) for b in nats_events] == [(1,), (2,), (3,), (4,), (5,)]
            assert focus_ids(from_ws) == focus_ids(nats_events) == made
            # a forged token is refused: an OperationOutcome, then close code 1008
            async with websockets.connect(url) as ws:
                await ws.send("bind-with-token forged.token")
                refusal = orjson.loads(await asyncio.wait_for(ws.recv(), 10))
                assert refusal["resourceType"] == "OperationOutcome"
                assert refusal["issue"][0]["details"]["coding"][0]["code"] == "CW-6002"
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(ws.recv(), 5)
                assert ws.close_code == 1008
    finally:
        server.stop()
        await nc.close()
