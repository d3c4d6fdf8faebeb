"""Additional context in notifications: a topic's notificationShape ``include`` / ``revInclude``
(R5 SubscriptionTopic.notificationShape, as the Subscriptions R5 Backport IG v1.1.0 carries it in
R4: ``additional-context`` in the status Parameters, and entries for id-only and full-resource
payloads, payloads.html)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from careweave.events.numbering import event_numbers
from tests.events.conftest import XVER43, discharge_topic_basic, ext, subscription
from tests.events.receiver import Receiver
from tests.events.test_delivery import (  # noqa: F401  (fixtures)
    _is,
    create,
    notifications,
    running,
    settings,
    status_of,
    wait_for,
)

pytestmark = [pytest.mark.anyio, pytest.mark.usefixtures("running")]


def topic_with_context() -> dict[str, Any]:
    topic = discharge_topic_basic()
    for item in topic["extension"]:
        if item["url"] == XVER43 + "notificationShape":
            item["extension"].append(ext("revInclude", valueString="Observation:encounter"))
    return topic


def encounter(status: str) -> dict[str, Any]:
    return {
        "resourceType": "Encounter",
        "status": status,
        "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "IMP"},
        "subject": {"reference": "Patient/p1"},
    }


async def subscribe(client: Any, endpoint: str, content: str) -> str:
    resource = subscription(content=content, endpoint=endpoint, status="requested")
    del resource["id"]
    sid = (await create(client, resource))["id"]
    await wait_for(lambda: _is(status_of(client, sid), "active"))
    return sid


def context_refs(bundle: dict[str, Any]) -> list[str]:
    event = next(p for p in bundle["entry"][0]["resource"]["parameter"] if p["name"] == "notification-event")
    return [p["valueReference"]["reference"] for p in event["part"] if p["name"] == "additional-context"]


async def test_includes_and_rev_includes_travel_with_the_event(client, receiver: Receiver) -> None:
    assert (await client.put("/fhir/Basic/encounter-discharge", json=topic_with_context())).status_code == 201
    r = await client.put("/fhir/Patient/p1", json={"resourceType": "Patient", "id": "p1", "gender": "female"})
    assert r.status_code == 201
    full = await subscribe(client, receiver.url, "full-resource")
    ids = await subscribe(client, receiver.url + "/ids", "id-only")
    empty = await subscribe(client, receiver.url + "/empty", "empty")
    made = await create(client, encounter("in-progress"))
    obs = await create(
        client,
        {
            "resourceType": "Observation",
            "status": "final",
            "code": {"text": "pulse"},
            "encounter": {"reference": f"Encounter/{made['id']}"},
        },
    )
    r = await client.put(f"/fhir/Encounter/{made['id']}", json={**made, "status": "finished"})
    assert r.status_code == 200
    await wait_for(lambda: len(notifications(receiver)) >= 3)
    await asyncio.sleep(0.2)
    by_sub = {}
    for bundle in notifications(receiver):
        param = bundle["entry"][0]["resource"]["parameter"][0]
        by_sub[param["valueReference"]["reference"].rsplit("/", 1)[1]] = bundle
    base = "http://fhir.test/fhir"
    expected = [f"{base}/Patient/p1", f"{base}/Observation/{obs['id']}"]
    # full-resource: references, and the resources at the versions found when the event was queued
    bundle = by_sub[full]
    assert sorted(context_refs(bundle)) == sorted(expected)
    entries = {e["fullUrl"]: e for e in bundle["entry"][2:]}
    assert sorted(entries) == sorted(expected)
    assert entries[f"{base}/Patient/p1"]["resource"]["gender"] == "female"
    assert entries[f"{base}/Patient/p1"]["request"] == {"method": "GET", "url": "Patient/p1"}
    assert entries[expected[1]]["resource"]["id"] == obs["id"]
    # id-only: the same references and entries, without the resources
    bundle = by_sub[ids]
    assert sorted(context_refs(bundle)) == sorted(expected)
    assert all("resource" not in e for e in bundle["entry"][1:])
    assert len(bundle["entry"]) == 4
    # empty: nothing about any resource
    bundle = by_sub[empty]
    assert context_refs(bundle) == [] and len(bundle["entry"]) == 1
    # later changes to the context do not change a replay of the event
    r = await client.put("/fhir/Patient/p1", json={"resourceType": "Patient", "id": "p1", "gender": "male"})
    assert r.status_code == 200
    r = await client.get(f"/fhir/Subscription/{full}/$events?eventsSinceNumber=1")
    replayed = r.json()
    assert event_numbers(replayed) == (1,)
    patient = next(e for e in replayed["entry"] if e["fullUrl"].endswith("/Patient/p1"))
    assert patient["resource"]["gender"] == "female"
