"""PATCH with JSON Patch (RFC 6902) (http.html#patch)."""

from __future__ import annotations

import httpx
import pytest

pytestmark = pytest.mark.anyio

PATCH = {"content-type": "application/json-patch+json"}


@pytest.fixture
async def pid(client: httpx.AsyncClient) -> str:
    r = await client.put(
        "/fhir/Patient/pp",
        json={"resourceType": "Patient", "id": "pp", "active": True, "name": [{"family": "Old"}]},
        headers={"content-type": "application/fhir+json"},
    )
    return str(r.json()["id"])


async def test_json_patch_replaces_and_versions(client: httpx.AsyncClient, pid: str) -> None:
    ops = [
        {"op": "replace", "path": "/name/0/family", "value": "New"},
        {"op": "remove", "path": "/active"},
    ]
    r = await client.patch(f"/fhir/Patient/{pid}", json=ops, headers=PATCH)
    assert r.status_code == 200
    body = r.json()
    assert body["name"][0]["family"] == "New" and "active" not in body
    assert body["meta"]["versionId"] == "2"


async def test_json_patch_test_failure_is_422_and_stores_nothing(client: httpx.AsyncClient, pid: str) -> None:
    ops = [
        {"op": "test", "path": "/active", "value": False},
        {"op": "replace", "path": "/active", "value": False},
    ]
    r = await client.patch(f"/fhir/Patient/{pid}", json=ops, headers=PATCH)
    assert r.status_code == 422
    assert (await client.get(f"/fhir/Patient/{pid}")).json()["meta"]["versionId"] == "1"


async def test_json_patch_errors(client: httpx.AsyncClient, pid: str) -> None:
    bad_doc = await client.patch(f"/fhir/Patient/{pid}", json={"op": "x"}, headers=PATCH)
    assert bad_doc.status_code == 400
    bad_op = await client.patch(f"/fhir/Patient/{pid}", json=[{"op": "fly", "path": "/a"}], headers=PATCH)
    assert bad_op.status_code == 400
    change_id = await client.patch(
        f"/fhir/Patient/{pid}",
        json=[{"op": "replace", "path": "/id", "value": "zz"}],
        headers=PATCH,
    )
    assert change_id.status_code == 422
    missing = await client.patch("/fhir/Patient/none", json=[], headers=PATCH)
    assert missing.status_code == 404
    wrong_type = await client.patch(
        f"/fhir/Patient/{pid}", content=b"[]", headers={"content-type": "text/plain"}
    )
    assert wrong_type.status_code == 415


async def test_json_patch_if_match(client: httpx.AsyncClient, pid: str) -> None:
    ops = [{"op": "replace", "path": "/active", "value": False}]
    stale = await client.patch(f"/fhir/Patient/{pid}", json=ops, headers={**PATCH, "If-Match": 'W/"7"'})
    assert stale.status_code == 412
    ok = await client.patch(f"/fhir/Patient/{pid}", json=ops, headers={**PATCH, "If-Match": 'W/"1"'})
    assert ok.status_code == 200
