"""Websocket notifications when delivery runs in ``careweave worker`` processes: each
``careweave serve`` (its in-process worker turned off) delivers to the clients bound to it, and
only to those; the worker process dispatches. Real processes, real websocket clients.

Backport IG v1.1.0 channels.html#websockets (bind-with-token, handshake, then notifications)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
import websockets

from careweave.events.numbering import event_numbers
from tests.events.test_crash import ENV, _worker
from tests.support import ServerProcess

pytestmark = [pytest.mark.anyio, pytest.mark.slow]

BACKPORT = "http://hl7.org/fhir/uv/subscriptions-backport/StructureDefinition/"
TOPIC = "https://careweave.org/fhir/SubscriptionTopic/observation-written"


def ws_subscription() -> dict[str, Any]:
    content = {"extension": [{"url": BACKPORT + "backport-payload-content", "valueCode": "id-only"}]}
    return {
        "resourceType": "Subscription",
        "status": "requested",
        "reason": "websocket across processes",
        "criteria": TOPIC,
        "channel": {"type": "websocket", "payload": "application/fhir+json", "_payload": content},
    }


async def bind(client: httpx.AsyncClient, sid: str) -> Any:
    r = await client.post(f"/fhir/Subscription/{sid}/$get-ws-binding-token")
    assert r.status_code == 200, r.text
    params = {p["name"]: p for p in r.json()["parameter"]}
    ws = await websockets.connect(params["websocket-url"]["valueUrl"].replace("http://", "ws://"))
    await ws.send(f"bind-with-token {params['token']['valueString']}")
    handshake = orjson.loads(await asyncio.wait_for(ws.recv(), 10))
    kinds = [p["valueCode"] for p in handshake["entry"][0]["resource"]["parameter"] if p["name"] == "type"]
    assert kinds == ["handshake"]
    return ws


async def receive(ws: Any, n: int) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    while len(out) < n:
        bundle = orjson.loads(await asyncio.wait_for(ws.recv(), 20))
        if event_numbers(bundle):
            out.append(bundle)
    return out


async def test_each_server_delivers_to_its_own_websocket_clients(tmp_path: Path) -> None:
    topics = tmp_path / "topics.json"
    topics.write_bytes(
        orjson.dumps(
            [
                {
                    "resourceType": "SubscriptionTopic",
                    "url": TOPIC,
                    "status": "active",
                    "resourceTrigger": [{"resource": "Observation", "supportedInteraction": ["create"]}],
                }
            ]
        )
    )
    env = {**ENV, "CAREWEAVE_EVENTS_WORKER": "false", "CAREWEAVE_EVENTS_TOPICS": str(topics)}
    first = ServerProcess(tmp_path / "srv", env).start()
    second = ServerProcess(tmp_path / "srv", env).start()  # the same database
    worker = _worker(first.data_dir, {**env, "CAREWEAVE_BASE_URL": first.url}, tmp_path / "worker.log")
    sockets: list[Any] = []
    try:
        async with (
            httpx.AsyncClient(base_url=first.url, timeout=10) as one,
            httpx.AsyncClient(base_url=second.url, timeout=10) as two,
        ):
            sids = []
            for client in (one, two):
                r = await client.post("/fhir/Subscription", json=ws_subscription())
                assert r.status_code == 201, r.text
                sids.append(r.json()["id"])
            sockets = [await bind(one, sids[0]), await bind(two, sids[1])]
            made = []
            for i in range(6):
                obs = {"resourceType": "Observation", "status": "final", "code": {"text": f"r{i}"}}
                r = await (one if i % 2 else two).post("/fhir/Observation", json=obs)
                assert r.status_code == 201
                made.append(r.json()["id"])
            got = [await receive(ws, 6) for ws in sockets]
            for bundles, sid in zip(got, sids, strict=True):
                assert [event_numbers(b) for b in bundles] == [(i,) for i in range(1, 7)]
                assert [b["entry"][1]["fullUrl"].rsplit("/", 1)[1] for b in bundles] == made
                status = bundles[0]["entry"][0]["resource"]["parameter"]
                subs = [p["valueReference"]["reference"] for p in status if p["name"] == "subscription"]
                assert subs[0].endswith(f"Subscription/{sid}")
            # the first server's client leaves; its notifications wait until a client binds again
            await sockets[0].close()
            await asyncio.sleep(0.3)
            obs = {"resourceType": "Observation", "status": "final", "code": {"text": "late"}}
            r = await two.post("/fhir/Observation", json=obs)
            late = r.json()["id"]
            assert [b["entry"][1]["fullUrl"].rsplit("/", 1)[1] for b in await receive(sockets[1], 1)] == [
                late
            ]
            sockets[0] = await bind(two, sids[0])  # now through the other server
            again = await receive(sockets[0], 1)
            assert event_numbers(again[0]) == (7,)
    finally:
        for ws in sockets:
            await ws.close()
        worker.terminate()
        worker.wait(10)
        first.stop()
        second.stop()
