"""history at instance, type and system level, with _since, _count and paging (http.html#history)."""

from __future__ import annotations

import httpx
import pytest

pytestmark = pytest.mark.anyio

JSON = {"content-type": "application/fhir+json"}


async def _page_all(client: httpx.AsyncClient, url: str) -> list[dict]:
    entries: list[dict] = []
    while url:
        bundle = (await client.get(url)).json()
        assert bundle["type"] == "history"
        entries.extend(bundle["entry"])
        nxt = [link["url"] for link in bundle["link"] if link["relation"] == "next"]
        url = nxt[0].replace("http://testserver", "") if nxt else ""
    return entries


async def test_instance_history_newest_first(client: httpx.AsyncClient) -> None:
    for family in ("A", "B", "C"):
        await client.put(
            "/fhir/Patient/h1",
            json={"resourceType": "Patient", "id": "h1", "name": [{"family": family}]},
            headers=JSON,
        )
    bundle = (await client.get("/fhir/Patient/h1/_history")).json()
    assert bundle["total"] == 3
    assert [e["resource"]["meta"]["versionId"] for e in bundle["entry"]] == ["3", "2", "1"]
    assert bundle["entry"][2]["response"]["status"] == "201 Created"
    assert bundle["entry"][0]["request"] == {"method": "PUT", "url": "Patient/h1"}
    assert (await client.get("/fhir/Patient/none/_history")).status_code == 404


async def test_type_and_system_history_with_paging(client: httpx.AsyncClient) -> None:
    for _ in range(7):
        await client.post("/fhir/Patient", json={"resourceType": "Patient"}, headers=JSON)
    for i in range(3):
        await client.post(
            "/fhir/Organization",
            json={"resourceType": "Organization", "name": f"Org {i}"},
            headers=JSON,
        )
    type_entries = await _page_all(client, "/fhir/Patient/_history?_count=3")
    assert len(type_entries) == 7
    assert all(e["resource"]["resourceType"] == "Patient" for e in type_entries)
    system_entries = await _page_all(client, "/fhir/_history?_count=4")
    assert len(system_entries) == 10
    ids = [e["fullUrl"] for e in system_entries]
    assert len(set(ids)) == 10


async def test_paging_stays_correct_while_others_write(client: httpx.AsyncClient) -> None:
    for _ in range(6):
        await client.post("/fhir/Patient", json={"resourceType": "Patient"}, headers=JSON)
    first = (await client.get("/fhir/Patient/_history?_count=3")).json()
    for _ in range(5):  # new writes between pages must not shift the next page
        await client.post("/fhir/Patient", json={"resourceType": "Patient"}, headers=JSON)
    nxt = next(link["url"] for link in first["link"] if link["relation"] == "next")
    rest = await _page_all(client, nxt.replace("http://testserver", ""))
    seen = [e["fullUrl"] for e in first["entry"]] + [e["fullUrl"] for e in rest]
    assert len(seen) == 6 and len(set(seen)) == 6


async def test_since_filters_and_bad_since_is_400(client: httpx.AsyncClient) -> None:
    old = (await client.post("/fhir/Patient", json={"resourceType": "Patient"}, headers=JSON)).json()
    cut = old["meta"]["lastUpdated"]
    import asyncio

    await asyncio.sleep(0.01)
    new = (await client.post("/fhir/Patient", json={"resourceType": "Patient"}, headers=JSON)).json()
    since = cut.replace("+00:00", "Z")
    entries = (await client.get(f"/fhir/Patient/_history?_since={since}")).json()["entry"]
    ids = {e["resource"]["id"] for e in entries}
    assert new["id"] in ids
    later = new["meta"]["lastUpdated"].replace("+", "%2B")
    entries = (await client.get(f"/fhir/Patient/_history?_since={later}")).json()["entry"]
    assert {e["resource"]["id"] for e in entries} == {new["id"]}
    assert (await client.get("/fhir/_history?_since=yesterday")).status_code == 400


async def test_forged_cursor_is_refused(client: httpx.AsyncClient) -> None:
    r = await client.get("/fhir/_history?_cursor=AAAAAAAAAAAAAAAAAAAAAAAAAAAA")
    assert r.status_code == 400
    assert r.json()["resourceType"] == "OperationOutcome"
