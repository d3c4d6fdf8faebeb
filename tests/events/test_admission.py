"""Subscriptions refused when written (FHIR R4 http.html#create: 400 for a resource that is not
valid, 422 for one that breaks the server's business rules): a valid Subscription careweave cannot
serve answers 422 with CW-6001 issues, checked against the tenant's own topics and search
parameters (searchparameter.html; Subscriptions R5 Backport IG v1.1.0 subscriptions.html)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from tests.events.conftest import DISCHARGE, discharge_topic_basic, subscription
from tests.events.test_delivery import (  # noqa: F401  (fixtures)
    classic,
    create,
    numbers_seen,
    running,
    settings,
    wait_for,
)

pytestmark = pytest.mark.anyio

BIRTH_PLACE = {
    "resourceType": "SearchParameter",
    "id": "birthplace",
    "status": "active",
    "url": "http://example.org/fhir/SearchParameter/patient-birthplace",
    "name": "birthplace",
    "description": "The town of birth",
    "code": "birthplace",
    "base": ["Patient"],
    "type": "string",
    "expression": "Patient.extension('http://hl7.org/fhir/StructureDefinition/patient-birthPlace').value.city",
}


def patient(town: str) -> dict[str, Any]:
    return {
        "resourceType": "Patient",
        "extension": [
            {
                "url": "http://hl7.org/fhir/StructureDefinition/patient-birthPlace",
                "valueAddress": {"city": town},
            }
        ],
    }


async def test_an_invalid_subscription_is_400_a_valid_one_careweave_cannot_serve_is_422(client) -> None:
    invalid = classic("https://example.org/hook")
    invalid["status"] = 7  # not R4
    r = await client.post("/fhir/Subscription", json=invalid)
    assert r.status_code == 400 and "CW-6001" not in r.text
    forged = classic("https://example.org/hook")
    forged["channel"]["header"] = ["X-Careweave-Signature: forged"]
    email = classic("mailto:someone@example.org")
    email["channel"]["type"] = "email"
    bad_criteria = classic("https://example.org/hook")
    bad_criteria["criteria"] = "Observation?no-such-parameter=1"
    for resource, text in (
        (forged, "set by the server"),
        (email, "does not deliver"),
        (bad_criteria, "no-such-parameter"),
    ):
        r = await client.post("/fhir/Subscription", json=resource)
        assert r.status_code == 422, r.text
        assert r.json()["resourceType"] == "OperationOutcome" and text in r.text
        assert "CW-6001" in r.text
    r = await client.put("/fhir/Subscription/s1", json={**bad_criteria, "id": "s1"})
    assert r.status_code == 422
    assert (await client.get("/fhir/Subscription/s1")).status_code == 404  # nothing stored


async def test_an_unknown_topic_is_refused_and_a_known_one_accepted(client) -> None:
    resource = subscription(status="requested")
    del resource["id"]
    r = await client.post("/fhir/Subscription", json=resource)
    assert r.status_code == 422 and DISCHARGE in r.text and "CW-6001" in r.text
    r = await client.put("/fhir/Basic/encounter-discharge", json=discharge_topic_basic())
    assert r.status_code == 201, r.text
    r = await client.post("/fhir/Subscription", json=resource)
    assert r.status_code == 201, r.text
    # a filter the topic does not allow is refused (canFilterBy)
    unfit = {**resource, "_criteria": subscription(filters=("Encounter?status=finished",))["_criteria"]}
    r = await client.post("/fhir/Subscription", json=unfit)
    assert r.status_code == 422 and "CW-6001" in r.text
    # turning off a subscription is never refused for its topic
    off = subscription(criteria="https://example.org/gone", status="off")
    r = await client.put("/fhir/Subscription/sub-1", json=off)
    assert r.status_code == 201, r.text


@pytest.mark.usefixtures("running")
async def test_criteria_on_the_tenants_custom_parameter_are_served(system, client, receiver) -> None:
    await system.store.create_tenant("other")
    r = await client.post("/fhir/SearchParameter", json=BIRTH_PLACE)
    assert r.status_code == 201, r.text
    jobs = asyncio.Event()
    runner = asyncio.create_task(system.jobs.run(jobs))
    try:

        async def ready() -> bool:
            status = (await client.get("/fhir/$reindex")).json()
            states = [
                p["valueCode"] for j in status.get("parameter", ()) for p in j["part"] if p["name"] == "state"
            ]
            return bool(states) and all(s == "done" for s in states)

        await wait_for(ready)
    finally:
        jobs.set()
        system.jobs.wake()
        await runner
    resource = classic(receiver.url, status="requested")
    resource["criteria"] = "Patient?birthplace=leeds"
    r = await client.post("/t/other/fhir/Subscription", json=resource)
    assert r.status_code == 422 and "birthplace" in r.text  # not a parameter of that tenant
    sub = await create(client, resource)
    await create(client, patient("York"))
    leeds = await create(client, patient("Leeds"))
    await wait_for(lambda: numbers_seen(receiver))
    await asyncio.sleep(0.3)
    assert [(q.method, q.path) for q in receiver.received] == [("PUT", f"/hook/Patient/{leeds['id']}")]
    assert receiver.received[0].headers["x-careweave-subscription"] == sub["id"]
