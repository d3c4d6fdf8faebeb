"""Patient/$everything (patient-operation-everything.html)."""

from __future__ import annotations

import asyncio

import pytest

from tests.search.conftest import put

pytestmark = pytest.mark.anyio


@pytest.fixture
async def chart(client):
    await put(client, {"resourceType": "Organization", "id": "gp", "name": "GP"})
    await put(client, {"resourceType": "Practitioner", "id": "dr", "name": [{"family": "Who"}]})
    await put(client, {"resourceType": "Patient", "id": "a", "managingOrganization": {
        "reference": "Organization/gp"}})
    await put(client, {"resourceType": "Patient", "id": "b"})
    for i in range(5):
        await put(client, {"resourceType": "Observation", "id": f"a{i}", "status": "final",
                           "code": {"text": "x"}, "subject": {"reference": "Patient/a"},
                           "performer": [{"reference": "Practitioner/dr"}]})
    await put(client, {"resourceType": "Condition", "id": "ca", "subject": {"reference": "Patient/a"}})
    await put(client, {"resourceType": "Observation", "id": "b0", "status": "final",
                       "code": {"text": "x"}, "subject": {"reference": "Patient/b"}})


def _modes(bundle: dict) -> dict[str, str]:
    return {f"{e['resource']['resourceType']}/{e['resource']['id']}": e["search"]["mode"]
            for e in bundle["entry"]}


async def test_everything_for_one_patient(client, chart):
    r = await client.get("/fhir/Patient/a/$everything")
    assert r.status_code == 200
    modes = _modes(r.json())
    assert {k for k, v in modes.items() if v == "match"} == {
        "Patient/a", "Condition/ca", *(f"Observation/a{i}" for i in range(5))}
    assert {k for k, v in modes.items() if v == "include"} == {"Organization/gp", "Practitioner/dr"}
    assert "Observation/b0" not in modes


async def test_everything_type_filter_since_and_paging(client, chart):
    only = _modes((await client.get("/fhir/Patient/a/$everything?_type=Condition")).json())
    assert only == {"Condition/ca": "match"}
    first = (await client.get("/fhir/Patient/a/$everything?_count=3")).json()
    seen = [e["resource"]["id"] for e in first["entry"] if e["search"]["mode"] == "match"]
    url = next(link["url"] for link in first["link"] if link["relation"] == "next")
    while url:
        page = (await client.get(url.replace("http://testserver", ""))).json()
        seen += [e["resource"]["id"] for e in page["entry"] if e["search"]["mode"] == "match"]
        nxt = [link["url"] for link in page["link"] if link["relation"] == "next"]
        url = nxt[0] if nxt else ""
    assert sorted(seen) == sorted(["a", "ca", "a0", "a1", "a2", "a3", "a4"])
    await asyncio.sleep(0.01)
    await put(client, {"resourceType": "Condition", "id": "ca2", "subject": {"reference": "Patient/a"}})
    stamp = (await client.get("/fhir/Condition/ca2")).json()["meta"]["lastUpdated"]
    since = _modes((await client.get("/fhir/Patient/a/$everything",
                                     params={"_since": stamp})).json())
    # _since is inclusive: the new Condition is in; the fixture's writes, 10 ms older, are not
    assert {k for k, v in since.items() if v == "match"} == {"Condition/ca2"}


async def test_everything_at_type_level_and_errors(client, chart):
    modes = _modes((await client.get("/fhir/Patient/$everything?_count=100")).json())
    assert {"Patient/a", "Patient/b", "Observation/b0", "Condition/ca"} <= set(modes)
    assert (await client.get("/fhir/Patient/zz/$everything")).status_code == 404
    assert (await client.get("/fhir/Observation/a0/$everything")).status_code == 404
    assert (await client.get("/fhir/Patient/a/$everything?_since=soon")).status_code == 400
