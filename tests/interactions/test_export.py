"""Bulk Data $export (FHIR Bulk Data Access 2.0): kick-off, polling, manifest, files, cancel."""

from __future__ import annotations

import asyncio

import orjson
import pytest

from tests.search.conftest import put

pytestmark = pytest.mark.anyio

ASYNC = {"Prefer": "respond-async", "Accept": "application/fhir+json"}


@pytest.fixture
async def data(client):
    await put(client, {"resourceType": "Organization", "id": "gp", "name": "GP"})
    for p in ("a", "b", "c"):
        await put(client, {"resourceType": "Patient", "id": p})
        for i in range(3):
            await put(client, {"resourceType": "Observation", "id": f"{p}{i}", "status": "final",
                               "code": {"coding": [{"system": "http://loinc.org",
                                                    "code": "8480-6" if i else "29463-7"}]},
                               "subject": {"reference": f"Patient/{p}"}})
    await put(client, {"resourceType": "Group", "id": "g", "type": "person", "actual": True,
                       "member": [{"entity": {"reference": "Patient/a"}},
                                  {"entity": {"reference": "Patient/c"}}]})


@pytest.fixture
async def runner(system):
    stop = asyncio.Event()
    task = asyncio.create_task(system.jobs.run(stop))
    yield
    stop.set()
    system.jobs.wake()
    await task


async def _complete(client, kickoff) -> dict:
    assert kickoff.status_code == 202, kickoff.text
    status_url = kickoff.headers["content-location"].replace("http://testserver", "")
    for _ in range(200):
        r = await client.get(status_url)
        if r.status_code == 200:
            assert r.headers["content-type"].startswith("application/json")
            return r.json()
        assert r.status_code == 202
        assert "x-progress" in r.headers and r.headers["retry-after"]
        await asyncio.sleep(0.05)
    raise AssertionError("the export did not finish")


async def _files(client, manifest) -> dict[str, list[dict]]:
    out = {}
    for item in manifest["output"]:
        r = await client.get(item["url"].replace("http://testserver", ""))
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("application/fhir+ndjson")
        lines = [orjson.loads(line) for line in r.content.splitlines()]
        assert len(lines) == item["count"]
        out[item["type"]] = lines
    return out


async def test_system_export(client, data, runner):
    manifest = await _complete(client, await client.get("/fhir/$export", headers=ASYNC))
    assert manifest["requiresAccessToken"] is False and manifest["transactionTime"]
    assert manifest["request"].endswith("/fhir/$export")
    files = await _files(client, manifest)
    assert {t: len(v) for t, v in files.items()} == {
        "Group": 1, "Observation": 9, "Organization": 1, "Patient": 3}


async def test_patient_and_group_export_with_type_and_filter(client, data, runner):
    patient = await _complete(client, await client.get(
        "/fhir/Patient/$export?_type=Patient,Observation,Organization", headers=ASYNC))
    files = await _files(client, patient)
    assert set(files) == {"Patient", "Observation"}  # Organization is not in the compartment
    group = await _complete(client, await client.get(
        "/fhir/Group/g/$export?_typeFilter=Observation%3Fcode%3D8480-6", headers=ASYNC))
    files = await _files(client, group)
    assert sorted(p["id"] for p in files["Patient"]) == ["a", "c"]
    assert sorted(o["id"] for o in files["Observation"]) == ["a1", "a2", "c1", "c2"]


async def test_since_and_post_kickoff(client, data, runner):
    stamp = (await client.get("/fhir/Group/g")).json()["meta"]["lastUpdated"]
    await asyncio.sleep(0.01)
    await put(client, {"resourceType": "Patient", "id": "late"})
    body = {"resourceType": "Parameters", "parameter": [
        {"name": "_since", "valueInstant": stamp}, {"name": "_type", "valueString": "Patient"}]}
    manifest = await _complete(client, await client.post(
        "/fhir/$export", json=body, headers={**ASYNC, "content-type": "application/fhir+json"}))
    files = await _files(client, manifest)
    assert [p["id"] for p in files["Patient"]] == ["late"]


async def test_kickoff_errors_and_cancel(client, data, system):
    assert (await client.get("/fhir/$export")).status_code == 400  # no Prefer: respond-async
    assert (await client.get("/fhir/$export?_outputFormat=text/csv",
                             headers=ASYNC)).status_code == 400
    assert (await client.get("/fhir/$export?_type=Nope", headers=ASYNC)).status_code == 400
    assert (await client.get("/fhir/Group/none/$export", headers=ASYNC)).status_code == 404
    kickoff = await client.get("/fhir/$export", headers=ASYNC)
    status_url = kickoff.headers["content-location"].replace("http://testserver", "")
    assert (await client.get(status_url)).status_code == 202  # no runner: still queued
    assert (await client.delete(status_url)).status_code == 202
    assert (await client.get(status_url)).status_code == 404
    assert (await client.get("/fhir/$export-poll-status?_jobId=999")).status_code == 404


async def test_exports_are_per_tenant(system, client, data, runner):
    await system.store.create_tenant("other")
    kickoff = await client.get("/fhir/$export", headers=ASYNC)
    manifest = await _complete(client, kickoff)
    job = kickoff.headers["content-location"].split("_jobId=")[1]
    assert (await client.get(f"/t/other/fhir/$export-poll-status?_jobId={job}")).status_code == 404
    url = manifest["output"][0]["url"].replace("http://testserver/fhir", "/t/other/fhir")
    assert (await client.get(url)).status_code == 404


async def test_an_export_resumes_after_a_restart(system, client, data):
    kickoff = await client.get("/fhir/$export?_type=Observation,Patient", headers=ASYNC)
    job = int(kickoff.headers["content-location"].split("_jobId=")[1])
    tenant = await system.store.tenant("default")
    # as if a previous run had claimed the job and finished Observation before the process died
    await system.store.claim_job(tenant, ("export",))
    running = next(j for j in await system.store.jobs(tenant, "export") if j.jid == job)
    assert running.state == "running"
    await system.jobs.run_once()  # its lease has not run out: another process may be running it
    assert next(j for j in await system.store.jobs(tenant, "export") if j.jid == job).done == 0
    system.jobs.lease_ms = 0  # ... and now it has: this process takes the job over
    await system.jobs.run_once()
    manifest = await _complete(client, kickoff)
    assert {o["type"]: o["count"] for o in manifest["output"]} == {"Observation": 9, "Patient": 3}


async def test_export_then_load_into_another_tenant_round_trips(system, client, runner, tmp_path):
    from careweave.generate import DEMO, generate
    from careweave.interactions.loading import load_paths

    generate(DEMO, tmp_path / "gen")
    source = await system.store.tenant("default")
    await load_paths(system.services, source, [tmp_path / "gen" / "ndjson"])
    manifest = await _complete(client, await client.get("/fhir/$export", headers=ASYNC))
    folder = tmp_path / "export"
    folder.mkdir()
    for item in manifest["output"]:
        r = await client.get(item["url"].replace("http://testserver", ""))
        (folder / f"{item['type']}.ndjson").write_bytes(r.content)
    target = await system.store.create_tenant("copy")
    report = await load_paths(system.services, target, [folder])
    assert report.rejected == 0 and report.read == sum(o["count"] for o in manifest["output"])

    def content(body: bytes) -> bytes:
        resource = orjson.loads(body)
        resource["meta"] = {k: v for k, v in resource.get("meta", {}).items()
                            if k not in ("versionId", "lastUpdated")}
        if not resource["meta"]:
            del resource["meta"]
        return orjson.dumps(resource, option=orjson.OPT_SORT_KEYS)

    for item in manifest["output"]:
        r = await client.get(item["url"].replace("http://testserver", ""))
        for line in r.content.splitlines():
            original = orjson.loads(line)
            copied = await system.store.read(target, original["resourceType"], original["id"])
            assert copied is not None and content(copied.body) == content(line)
