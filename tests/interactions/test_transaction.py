"""Batch and transaction Bundles (http.html#transaction, #trules, bundle.html#references)."""

from __future__ import annotations

import asyncio
import time

import pytest

pytestmark = pytest.mark.anyio

JSON = {"content-type": "application/fhir+json"}
NHS = "https://fhir.nhs.uk/Id/nhs-number"


def tx(*entries: dict, kind: str = "transaction") -> dict:
    return {"resourceType": "Bundle", "type": kind, "entry": list(entries)}


def post(resource: dict, full_url: str | None = None, **request: str) -> dict:
    entry = {"resource": resource, "request": {"method": "POST", "url": resource["resourceType"],
                                               **request}}
    if full_url:
        entry["fullUrl"] = full_url
    return entry


def put(resource: dict, url: str | None = None, full_url: str | None = None, **request) -> dict:
    entry = {"resource": resource, "request": {
        "method": "PUT", "url": url or f"{resource['resourceType']}/{resource['id']}", **request}}
    if full_url:
        entry["fullUrl"] = full_url
    return entry


def patient(nhs: str = "9434765919", **extra) -> dict:
    return {"resourceType": "Patient", "identifier": [{"system": NHS, "value": nhs}],
            "name": [{"family": "Smith"}], **extra}


def obs(subject: str, **extra) -> dict:
    return {"resourceType": "Observation", "status": "final", "code": {"text": "weight"},
            "subject": {"reference": subject}, **extra}


async def run(client, bundle: dict, **headers: str):
    return await client.post("/fhir", json=bundle, headers={**JSON, **headers})


async def test_urn_uuid_references_are_rewritten(client) -> None:
    r = await run(client, tx(
        post(obs("urn:uuid:61ebe359-bfdc-4613-8bf2-c5e300945f0a"),
             "urn:uuid:0c3151bd-1cbf-4d64-b04d-cd9187a4c6e0"),
        post(patient(), "urn:uuid:61ebe359-bfdc-4613-8bf2-c5e300945f0a"),
    ))
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["type"] == "transaction-response"
    statuses = [e["response"]["status"] for e in body["entry"]]
    assert statuses == ["201 Created", "201 Created"]
    obs_loc, pat_loc = (e["response"]["location"] for e in body["entry"])
    pid = pat_loc.split("/")[1]
    stored = (await client.get("/fhir/" + obs_loc.rsplit("/_history", 1)[0])).json()
    assert stored["subject"]["reference"] == f"Patient/{pid}"


async def test_relative_and_absolute_full_urls(client) -> None:
    r = await run(client, tx(
        put({"resourceType": "Patient", "id": "rel"}, full_url="Patient/rel"),
        post(obs("http://testserver/fhir/Patient/rel")),
        post(obs("Patient/rel")),
    ))
    assert r.status_code == 200, r.text
    for entry in r.json()["entry"][1:]:
        stored = (await client.get("/fhir/" + entry["response"]["location"].split("/_history")[0]))
        assert stored.json()["subject"]["reference"] == "Patient/rel"


async def test_a_failing_entry_stores_nothing(client) -> None:
    r = await run(client, tx(
        post(patient("9000000009"), "urn:uuid:aaaaaaaa-0000-0000-0000-000000000001"),
        post({"resourceType": "Observation", "status": "not-a-status", "code": {"text": "x"}}),
        put({"resourceType": "Patient", "id": "never"}),
    ))
    assert r.status_code == 400
    issues = r.json()["issue"]
    assert any("Bundle.entry[1]" in i.get("expression", []) for i in issues)
    assert (await client.get("/fhir/_history")).json()["entry"] == []


async def test_conditional_create_in_a_transaction_points_at_the_existing(client) -> None:
    first = await client.post("/fhir/Patient", json=patient("9000000025"), headers=JSON)
    existing = first.json()["id"]
    r = await run(client, tx(
        post(patient("9000000025"), "urn:uuid:aaaaaaaa-0000-0000-0000-000000000002",
             ifNoneExist=f"identifier={NHS}|9000000025"),
        post(obs("urn:uuid:aaaaaaaa-0000-0000-0000-000000000002")),
    ))
    assert r.status_code == 200, r.text
    entries = r.json()["entry"]
    assert entries[0]["response"]["status"] == "200 OK"
    assert entries[0]["response"]["location"].startswith(f"Patient/{existing}/")
    stored = (await client.get("/fhir/" + entries[1]["response"]["location"].split("/_history")[0]))
    assert stored.json()["subject"]["reference"] == f"Patient/{existing}"


async def test_conditional_references(client) -> None:
    created = await client.post("/fhir/Patient", json=patient("9000000033"), headers=JSON)
    pid = created.json()["id"]
    r = await run(client, tx(post(obs(f"Patient?identifier={NHS}|9000000033"))))
    assert r.status_code == 200, r.text
    loc = r.json()["entry"][0]["response"]["location"].split("/_history")[0]
    assert (await client.get("/fhir/" + loc)).json()["subject"]["reference"] == f"Patient/{pid}"
    none = await run(client, tx(post(obs(f"Patient?identifier={NHS}|1111111111"))))
    assert none.status_code == 404
    await client.post("/fhir/Patient", json=patient("9000000033"), headers=JSON)
    many = await run(client, tx(post(obs(f"Patient?identifier={NHS}|9000000033"))))
    assert many.status_code == 412


async def test_conditional_update_and_delete_in_a_transaction(client) -> None:
    await client.put("/fhir/Patient/cu", json={**patient("9111231130"), "id": "cu"}, headers=JSON)
    r = await run(client, tx(
        put({**patient("9111231130"), "active": True}, url=f"Patient?identifier={NHS}|9111231130"),
        {"request": {"method": "DELETE", "url": f"Patient?identifier={NHS}|9999999999"}},
    ))
    assert r.status_code == 200, r.text
    assert r.json()["entry"][0]["response"]["location"].startswith("Patient/cu/_history/2")
    assert (await client.get("/fhir/Patient/cu")).json()["active"] is True


async def test_processing_order_delete_before_put(client) -> None:
    await client.put("/fhir/Patient/ord", json={"resourceType": "Patient", "id": "ord"},
                     headers=JSON)
    r = await run(client, tx(
        put({"resourceType": "Patient", "id": "ord", "active": True}),
        {"request": {"method": "DELETE", "url": "Patient/ord"}},
        {"request": {"method": "GET", "url": "Patient/ord"}},
    ))
    assert r.status_code == 200, r.text
    entries = r.json()["entry"]
    assert entries[1]["response"]["status"] == "204 No Content"
    assert entries[2]["resource"]["active"] is True  # GET ran last and saw the PUT
    assert (await client.get("/fhir/Patient/ord")).json()["meta"]["versionId"] == "3"


async def test_if_match_per_entry(client) -> None:
    await client.put("/fhir/Patient/im", json={"resourceType": "Patient", "id": "im"}, headers=JSON)
    stale = await run(client, tx(put({"resourceType": "Patient", "id": "im", "active": True},
                                     ifMatch='W/"7"')))
    assert stale.status_code == 412
    ok = await run(client, tx(put({"resourceType": "Patient", "id": "im", "active": True},
                                  ifMatch='W/"1"')))
    assert ok.status_code == 200


async def test_patch_in_a_transaction(client) -> None:
    await client.put("/fhir/Patient/pt", json={"resourceType": "Patient", "id": "pt"}, headers=JSON)
    fhirpath_patch = {"resourceType": "Parameters", "parameter": [{"name": "operation", "part": [
        {"name": "type", "valueCode": "add"}, {"name": "path", "valueString": "Patient"},
        {"name": "name", "valueString": "active"}, {"name": "value", "valueBoolean": True}]}]}
    r = await run(client, tx({"resource": fhirpath_patch,
                              "request": {"method": "PATCH", "url": "Patient/pt"}}))
    assert r.status_code == 200, r.text
    assert (await client.get("/fhir/Patient/pt")).json()["active"] is True


async def test_batch_runs_entries_independently(client) -> None:
    r = await run(client, tx(
        post(patient("9000000041")),
        post({"resourceType": "Observation", "status": "bogus"}),
        {"request": {"method": "GET", "url": "Patient?identifier=9000000041"}},
        {"request": {"method": "GET", "url": "Patient/nope"}},
        kind="batch"))
    assert r.status_code == 200
    entries = r.json()["entry"]
    assert r.json()["type"] == "batch-response"
    assert [e["response"]["status"][:3] for e in entries] == ["201", "400", "200", "404"]
    assert entries[1]["response"]["outcome"]["resourceType"] == "OperationOutcome"
    assert entries[2]["resource"]["type"] == "searchset"


async def test_malformed_bundles(client) -> None:
    assert (await run(client, {"resourceType": "Bundle", "type": "collection"})).status_code == 400
    assert (await run(client, tx({"resource": patient()}))).status_code == 400
    dup = tx(post(patient(), "urn:uuid:aaaaaaaa-0000-0000-0000-000000000009"),
             post(patient(), "urn:uuid:aaaaaaaa-0000-0000-0000-000000000009"))
    assert (await run(client, dup)).status_code == 400
    assert (await client.post("/fhir", json=patient(), headers=JSON)).status_code == 400


async def test_concurrent_conditional_transactions_never_duplicate(client) -> None:
    bundle = tx(post(patient("9000000068"), ifNoneExist=f"identifier={NHS}|9000000068"))
    results = await asyncio.gather(*[run(client, bundle) for _ in range(10)])
    assert all(r.status_code == 200 for r in results)
    found = (await client.get(f"/fhir/Patient?identifier={NHS}|9000000068")).json()
    assert len(found["entry"]) == 1


@pytest.mark.slow
async def test_a_synthea_sized_transaction(client) -> None:
    entries = []
    for i in range(300):
        full = f"urn:uuid:00000000-0000-0000-0000-{i:012d}"
        entries.append(post(patient(f"9{i:09d}", name=[{"family": f"Family{i}"}]), full))
        for j in range(9):
            entries.append(post(obs(full, valueQuantity={"value": j, "unit": "kg"})))
    started = time.perf_counter()
    r = await run(client, tx(*entries))
    elapsed = time.perf_counter() - started
    assert r.status_code == 200, r.text[:500]
    assert len(r.json()["entry"]) == 3000
    total = (await client.get("/fhir/Observation?_summary=count")).json()["total"]
    assert total == 2700
    print(f"3,000-entry transaction in {elapsed:.2f} s")
