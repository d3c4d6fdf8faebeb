"""Custom SearchParameter resources: usable after the server reindexes by itself; per tenant;
$reindex by hand with progress (search.html 3.1.1.x, searchparameter.html)."""

from __future__ import annotations

import asyncio

import pytest

from tests.search.conftest import JSON, ids, put

pytestmark = pytest.mark.anyio

BIRTH_PLACE = {
    "resourceType": "SearchParameter", "id": "birthplace", "status": "active",
    "url": "http://example.org/fhir/SearchParameter/patient-birthplace",
    "name": "birthplace", "description": "The town of birth", "code": "birthplace",
    "base": ["Patient"], "type": "string",
    "expression": "Patient.extension('http://hl7.org/fhir/StructureDefinition/"
                  "patient-birthPlace').value.city",
}


def patient(pid: str, town: str) -> dict:
    return {"resourceType": "Patient", "id": pid, "extension": [{
        "url": "http://hl7.org/fhir/StructureDefinition/patient-birthPlace",
        "valueAddress": {"city": town}}]}


async def _until_ready(client, base: str = "/fhir") -> None:
    for _ in range(100):
        status = (await client.get(f"{base}/$reindex")).json()
        states = [p["valueCode"] for job in status.get("parameter", ())
                  for p in job["part"] if p["name"] == "state"]
        if states and all(s == "done" for s in states):
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"reindex did not finish: {status}")


@pytest.fixture
async def runner(system):
    stop = asyncio.Event()
    task = asyncio.create_task(system.jobs.run(stop))
    yield system.jobs
    stop.set()
    system.jobs.wake()
    await task


async def test_custom_parameter_indexes_existing_and_new_resources(client, runner):
    await put(client, patient("leeds-born", "Leeds"))
    await put(client, patient("york-born", "York"))
    unknown = await client.get("/fhir/Patient?birthplace=leeds")
    assert "birthplace" in unknown.text and unknown.json()["entry"][-1]["search"]["mode"] == "outcome"
    r = await client.post("/fhir/SearchParameter", json=BIRTH_PLACE, headers=JSON)
    assert r.status_code == 201, r.text
    await _until_ready(client)
    assert await ids(client, "/fhir/Patient?birthplace=leeds") == ["leeds-born"]
    await put(client, patient("leeds-too", "Leeds"))  # indexed on write
    assert await ids(client, "/fhir/Patient?birthplace=leeds") == ["leeds-born", "leeds-too"]
    from tests.search.conftest import ordered_ids
    assert await ordered_ids(client, "/fhir/Patient?_sort=-birthplace") == [
        "york-born", "leeds-born", "leeds-too"]
    cs = (await client.get("/fhir/metadata")).json()
    names = {p["name"] for r in cs["rest"][0]["resource"] if r["type"] == "Patient"
             for p in r["searchParam"]}
    assert "birthplace" in names


async def test_custom_parameters_belong_to_their_tenant(system, client, runner):
    await system.store.create_tenant("other")
    await put(client, patient("a", "Leeds"))
    await client.put("/t/other/fhir/Patient/a", json=patient("a", "Leeds"), headers=JSON)
    await client.post("/fhir/SearchParameter", json=BIRTH_PLACE, headers=JSON)
    await _until_ready(client)
    assert await ids(client, "/fhir/Patient?birthplace=leeds") == ["a"]
    other = await client.get("/t/other/fhir/Patient?birthplace=leeds")
    assert other.json()["entry"][-1]["search"]["mode"] == "outcome"  # unknown there: ignored
    strict = await client.get("/t/other/fhir/Patient?birthplace=leeds",
                              headers={"Prefer": "handling=strict"})
    assert strict.status_code == 400


async def test_unusable_definitions_are_refused(client, runner):
    clash = {**BIRTH_PLACE, "code": "name", "url": "http://example.org/sp/name"}
    assert (await client.post("/fhir/SearchParameter", json=clash, headers=JSON)).status_code == 422
    broken = {**BIRTH_PLACE, "expression": "Patient.name.where("}
    assert (await client.post("/fhir/SearchParameter", json=broken, headers=JSON)).status_code == 422
    draft = {**BIRTH_PLACE, "status": "draft"}
    assert (await client.post("/fhir/SearchParameter", json=draft, headers=JSON)).status_code == 201


async def test_retiring_or_deleting_removes_the_parameter(client, runner):
    await put(client, patient("a", "Leeds"))
    await put(client, BIRTH_PLACE)
    await _until_ready(client)
    assert await ids(client, "/fhir/Patient?birthplace=leeds") == ["a"]
    await client.delete("/fhir/SearchParameter/birthplace")
    await asyncio.sleep(0)
    gone = await client.get("/fhir/Patient?birthplace=leeds")
    assert gone.json()["entry"][-1]["search"]["mode"] == "outcome"


async def test_manual_reindex_reports_progress(client, runner):
    for i in range(5):
        await put(client, patient(f"p{i}", "Leeds"))
    r = await client.post("/fhir/$reindex", json={"resourceType": "Parameters", "parameter": [
        {"name": "type", "valueCode": "Patient"}]}, headers=JSON)
    assert r.status_code == 200
    job = {p["name"]: next(v for k, v in p.items() if k.startswith("value"))
           for p in r.json()["parameter"]}
    assert job["state"] in ("queued", "running", "done")
    await _until_ready(client)
    status = (await client.get(f"/fhir/$reindex?job={job['job']}")).json()
    values = {p["name"]: next(v for k, v in p.items() if k.startswith("value"))
              for p in status["parameter"]}
    assert values["state"] == "done" and values["processed"] == 5 and values["progress"] == 100.0
    assert await ids(client, "/fhir/Patient?_id=p3") == ["p3"]  # the index still answers
    assert (await client.get("/fhir/$reindex?job=999")).status_code == 404
