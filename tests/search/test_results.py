"""Result parameters and search levels: _sort, paging, _include/_revinclude, _total, _summary,
_elements, system and compartment search, POST _search (search.html 3.1.1.5, 3.1.1.6)."""

from __future__ import annotations

import pytest

from tests.search.conftest import JSON, ids, ordered_ids, put

pytestmark = pytest.mark.anyio


@pytest.fixture
async def data(client):
    await put(client, {"resourceType": "Organization", "id": "org1", "name": "Leeds GP"})
    await put(client, {"resourceType": "Organization", "id": "org2", "name": "Parent Trust"})
    await client.put("/fhir/Organization/org1", json={
        "resourceType": "Organization", "id": "org1", "name": "Leeds GP",
        "partOf": {"reference": "Organization/org2"}}, headers=JSON)
    families = [("a", "Adams", "1990-01-01"), ("b", "Brown", "1970-05-05"), ("c", "Clark", None),
                ("d", "Brown", "1985-03-03"), ("e", "Evans", "1960-12-12")]
    for pid, family, born in families:
        p = {"resourceType": "Patient", "id": pid, "name": [{"family": family}],
             "managingOrganization": {"reference": "Organization/org1"},
             "text": {"status": "generated",
                      "div": f'<div xmlns="http://www.w3.org/1999/xhtml">{family} patient</div>'}}
        if born:
            p["birthDate"] = born
        await put(client, p)
        await put(client, {"resourceType": "Observation", "id": f"obs-{pid}", "status": "final",
                           "code": {"text": "weight"}, "subject": {"reference": f"Patient/{pid}"}})
    await put(client, {"resourceType": "Provenance", "id": "prov1",
                       "target": [{"reference": "Patient/a"}], "recorded": "2024-01-01T00:00:00Z",
                       "agent": [{"who": {"reference": "Organization/org1"}}]})


async def test_sort_ascending_descending_and_missing_last(client, data):
    assert await ordered_ids(client, "/fhir/Patient?_sort=birthdate") == ["e", "b", "d", "a", "c"]
    assert await ordered_ids(client, "/fhir/Patient?_sort=-birthdate") == ["a", "d", "b", "e", "c"]
    assert await ordered_ids(client, "/fhir/Patient?_sort=family,-birthdate") == ["a", "d", "b", "c", "e"]
    assert await ordered_ids(client, "/fhir/Patient?_sort=-_id") == ["e", "d", "c", "b", "a"]


async def test_paging_next_and_previous_with_sort(client, data):
    url = "/fhir/Patient?_sort=family,-birthdate&_count=2"
    pages, seen = [], []
    bundle = (await client.get(url)).json()
    while True:
        pages.append(bundle)
        seen += [e["resource"]["id"] for e in bundle["entry"]]
        nxt = [link["url"] for link in bundle["link"] if link["relation"] == "next"]
        if not nxt:
            break
        bundle = (await client.get(nxt[0].replace("http://testserver", ""))).json()
    assert seen == ["a", "d", "b", "c", "e"]
    assert not any(link["relation"] == "previous" for link in pages[0]["link"])
    prev = next(link["url"] for link in pages[2]["link"] if link["relation"] == "previous")
    back = (await client.get(prev.replace("http://testserver", ""))).json()
    assert [e["resource"]["id"] for e in back["entry"]] == ["b", "c"]


async def test_paging_is_stable_while_others_write(client, data):
    first = (await client.get("/fhir/Patient?_sort=_id&_count=2")).json()
    await put(client, {"resourceType": "Patient", "id": "aa", "name": [{"family": "New"}]})
    nxt = next(link["url"] for link in first["link"] if link["relation"] == "next")
    second = (await client.get(nxt.replace("http://testserver", ""))).json()
    assert [e["resource"]["id"] for e in first["entry"]] == ["a", "b"]
    assert [e["resource"]["id"] for e in second["entry"]] == ["c", "d"]


async def test_cursor_of_another_query_is_refused(client, data):
    first = (await client.get("/fhir/Patient?_count=1")).json()
    nxt = next(link["url"] for link in first["link"] if link["relation"] == "next")
    token = nxt.split("_cursor=")[1]
    r = await client.get(f"/fhir/Patient?family=brown&_count=1&_cursor={token}")
    assert r.status_code == 400


async def test_total(client, data):
    many = (await client.get("/fhir/Patient?_count=2")).json()
    assert "total" not in many
    accurate = (await client.get("/fhir/Patient?_count=2&_total=accurate")).json()
    assert accurate["total"] == 5
    small = (await client.get("/fhir/Patient?family=brown")).json()
    assert small["total"] == 2  # all in the first page: known for free
    count = (await client.get("/fhir/Patient?_summary=count")).json()
    assert count["total"] == 5 and "entry" not in count


async def test_include_and_revinclude(client, data):
    bundle = (await client.get("/fhir/Observation?_id=obs-a&_include=Observation:subject")).json()
    modes = {(e["resource"]["id"], e["search"]["mode"]) for e in bundle["entry"]}
    assert modes == {("obs-a", "match"), ("a", "include")}
    bundle = (await client.get(
        "/fhir/Observation?_id=obs-a&_include=Observation:subject&"
        "_include:iterate=Patient:organization")).json()
    assert {e["resource"]["id"] for e in bundle["entry"]} == {"obs-a", "a", "org1"}
    bundle = (await client.get(
        "/fhir/Observation?_id=obs-a&_include=Observation:subject"
        "&_include:iterate=Patient:organization&_include:iterate=Organization:partof")).json()
    assert {e["resource"]["id"] for e in bundle["entry"]} == {"obs-a", "a", "org1", "org2"}
    bundle = (await client.get("/fhir/Patient?_id=a&_revinclude=Provenance:target"
                               "&_revinclude=Observation:subject")).json()
    assert {(e["resource"]["id"], e["search"]["mode"]) for e in bundle["entry"]} == {
        ("a", "match"), ("prov1", "include"), ("obs-a", "include")}
    star = (await client.get("/fhir/Observation?_id=obs-b&_include=*")).json()
    assert {e["resource"]["id"] for e in star["entry"]} == {"obs-b", "b"}


async def test_summary_and_elements(client, data):
    bundle = (await client.get("/fhir/Patient?_id=a&_summary=true")).json()
    patient = bundle["entry"][0]["resource"]
    assert "text" not in patient and patient["name"][0]["family"] == "Adams"
    assert any(t["code"] == "SUBSETTED" for t in patient["meta"]["tag"])
    text = (await client.get("/fhir/Patient?_id=a&_summary=text")).json()["entry"][0]["resource"]
    assert "text" in text and "name" not in text
    data_only = (await client.get("/fhir/Patient?_id=a&_summary=data")).json()
    assert "text" not in data_only["entry"][0]["resource"]
    elements = (await client.get("/fhir/Patient?_id=a&_elements=birthDate")).json()
    resource = elements["entry"][0]["resource"]
    assert set(resource) == {"resourceType", "id", "meta", "birthDate"}
    read = await client.get("/fhir/Patient/a?_elements=name")
    assert set(read.json()) == {"resourceType", "id", "meta", "name"}


async def test_system_level_search(client, data):
    both = await ids(client, "/fhir?_type=Patient,Organization&_id=a,org1")
    assert both == ["a", "org1"]
    everything = await ids(client, "/fhir?_id=org2")
    assert everything == ["org2"]
    assert (await client.get("/fhir?_type=Nope")).status_code == 400


async def test_compartment_search(client, data):
    assert await ids(client, "/fhir/Patient/a/Observation") == ["obs-a"]
    assert await ids(client, "/fhir/Patient/a/Provenance") == ["prov1"]
    assert await ids(client, "/fhir/Patient/a/Observation?status=final") == ["obs-a"]
    everything = await ids(client, "/fhir/Patient/a/*")
    assert set(everything) >= {"obs-a", "prov1"}
    assert (await client.get("/fhir/Patient/a/Organization")).status_code == 404


async def test_post_search_form(client, data):
    r = await client.post("/fhir/Patient/_search", content=b"family=brown&_sort=-birthdate",
                          headers={"content-type": "application/x-www-form-urlencoded"})
    assert [e["resource"]["id"] for e in r.json()["entry"]] == ["d", "b"]


async def test_text_and_content(client, data):
    assert await ids(client, "/fhir/Patient?_text=evans") == ["e"]
    assert await ids(client, "/fhir/Observation?_content=weight") == [
        "obs-a", "obs-b", "obs-c", "obs-d", "obs-e"]


async def test_list(client, data):
    await put(client, {"resourceType": "List", "id": "l1", "status": "current", "mode": "working",
                       "entry": [{"item": {"reference": "Patient/b"}},
                                 {"item": {"reference": "Patient/e"}}]})
    assert await ids(client, "/fhir/Patient?_list=l1") == ["b", "e"]


async def test_conditional_operations_use_the_search_engine(client, data):
    r = await client.post("/fhir/Patient", json={"resourceType": "Patient"},
                          headers={**JSON, "If-None-Exist": "family=adams&birthdate=1990"})
    assert r.status_code == 200 and r.json()["id"] == "a"
    r = await client.delete("/fhir/Observation?subject.family=evans")
    assert r.status_code == 200
    assert await ids(client, "/fhir/Observation?subject=e") == []
