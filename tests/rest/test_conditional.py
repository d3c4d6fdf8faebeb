"""Conditional create, update and delete (http.html#ccreate, #cond-update, #cdelete)."""

from __future__ import annotations

import asyncio

import httpx
import pytest

pytestmark = pytest.mark.anyio

JSON = {"content-type": "application/fhir+json"}
NHS = "https://fhir.nhs.uk/Id/nhs-number"


def patient(nhs: str, family: str = "Smith", **extra: object) -> dict:
    return {
        "resourceType": "Patient",
        "identifier": [{"system": NHS, "value": nhs}],
        "name": [{"family": family}],
        **extra,
    }


async def test_conditional_create_zero_one_many(client: httpx.AsyncClient) -> None:
    cond = {"If-None-Exist": f"identifier={NHS}|9434765919"}
    first = await client.post("/fhir/Patient", json=patient("9434765919"), headers={**JSON, **cond})
    assert first.status_code == 201
    second = await client.post("/fhir/Patient", json=patient("9434765919", "Other"), headers={**JSON, **cond})
    assert second.status_code == 200
    assert second.json()["id"] == first.json()["id"]
    assert second.json()["name"][0]["family"] == "Smith"  # nothing was written
    # make two matches, then a conditional create must fail with 412
    await client.post("/fhir/Patient", json=patient("9434765919"), headers=JSON)
    many = await client.post("/fhir/Patient", json=patient("9434765919"), headers={**JSON, **cond})
    assert many.status_code == 412
    assert many.json()["resourceType"] == "OperationOutcome"


async def test_conditional_create_by_id_and_system_less_token(client: httpx.AsyncClient) -> None:
    r = await client.put("/fhir/Patient/p7", json=patient("9000000009", id="p7"), headers=JSON)
    assert r.status_code == 201
    by_id = await client.post("/fhir/Patient", json=patient("1"), headers={**JSON, "If-None-Exist": "_id=p7"})
    assert by_id.status_code == 200 and by_id.json()["id"] == "p7"
    any_system = await client.post(
        "/fhir/Patient",
        json=patient("9000000009"),
        headers={**JSON, "If-None-Exist": "identifier=9000000009"},
    )
    assert any_system.status_code == 200 and any_system.json()["id"] == "p7"
    no_system = await client.post(
        "/fhir/Patient",
        json=patient("9000000009"),
        headers={**JSON, "If-None-Exist": "identifier=|9000000009"},
    )
    assert no_system.status_code == 201  # |code means "no system": ours has one


async def test_concurrent_conditional_creates_never_duplicate(client: httpx.AsyncClient) -> None:
    cond = {"If-None-Exist": f"identifier={NHS}|9000000025"}
    results = await asyncio.gather(
        *[
            client.post("/fhir/Patient", json=patient("9000000025"), headers={**JSON, **cond})
            for _ in range(20)
        ]
    )
    assert sorted(r.status_code for r in results).count(201) == 1
    ids = {r.json()["id"] for r in results}
    assert len(ids) == 1
    found = (await client.get(f"/fhir/Patient?identifier={NHS}|9000000025")).json()
    assert len(found["entry"]) == 1


async def test_conditional_update_rules(client: httpx.AsyncClient) -> None:
    url = f"/fhir/Patient?identifier={NHS}|9000000033"
    # no match, no id: create
    r = await client.put(url, json=patient("9000000033"), headers=JSON)
    assert r.status_code == 201
    pid = r.json()["id"]
    # one match, no id: update that one
    r = await client.put(url, json=patient("9000000033", "Brown"), headers=JSON)
    assert r.status_code == 200
    assert r.json()["id"] == pid and r.json()["meta"]["versionId"] == "2"
    # one match, matching id: update
    r = await client.put(url, json=patient("9000000033", "Green", id=pid), headers=JSON)
    assert r.status_code == 200 and r.json()["meta"]["versionId"] == "3"
    # one match, another id: 400
    r = await client.put(url, json=patient("9000000033", id="other"), headers=JSON)
    assert r.status_code == 400
    # no match, id provided and new: update as create
    r = await client.put(
        f"/fhir/Patient?identifier={NHS}|9111231130",
        json=patient("9111231130", id="fresh"),
        headers=JSON,
    )
    assert r.status_code == 201 and r.json()["id"] == "fresh"
    # no match, id provided that exists: 409
    r = await client.put(
        f"/fhir/Patient?identifier={NHS}|1111111111",
        json=patient("1111111111", id="fresh"),
        headers=JSON,
    )
    assert r.status_code == 409
    # several matches: 412
    await client.post("/fhir/Patient", json=patient("9000000033"), headers=JSON)
    r = await client.put(url, json=patient("9000000033"), headers=JSON)
    assert r.status_code == 412


async def test_conditional_delete(client: httpx.AsyncClient) -> None:
    await client.post("/fhir/Patient", json=patient("9434765870"), headers=JSON)
    r = await client.delete(f"/fhir/Patient?identifier={NHS}|9434765870")
    assert r.status_code == 200
    found = (await client.get(f"/fhir/Patient?identifier={NHS}|9434765870")).json()
    assert found["entry"] == []
    none = await client.delete(f"/fhir/Patient?identifier={NHS}|9434765870")
    assert none.status_code == 204
    for _ in range(2):
        await client.post("/fhir/Patient", json=patient("9434765870"), headers=JSON)
    many = await client.delete(f"/fhir/Patient?identifier={NHS}|9434765870")
    assert many.status_code == 412
    assert len((await client.get(f"/fhir/Patient?identifier={NHS}|9434765870")).json()["entry"]) == 2


async def test_conditional_without_criteria_or_unknown_param(client: httpx.AsyncClient) -> None:
    assert (await client.delete("/fhir/Patient")).status_code == 400
    r = await client.post("/fhir/Patient", json=patient("1"), headers={**JSON, "If-None-Exist": "nonsense=1"})
    assert r.status_code == 400
    assert "nonsense" in r.json()["issue"][0]["diagnostics"]
