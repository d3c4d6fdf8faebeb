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


FHIR = {"content-type": "application/fhir+json"}


def fhirpath_patch(*operations: list[dict]) -> dict:
    return {"resourceType": "Parameters",
            "parameter": [{"name": "operation", "part": parts} for parts in operations]}


def op(kind: str, path: str, **parts: object) -> list[dict]:
    out: list[dict] = [{"name": "type", "valueCode": kind}, {"name": "path", "valueString": path}]
    for name, value in parts.items():
        if name == "name":
            out.append({"name": "name", "valueString": value})
        elif name in ("index", "source", "destination"):
            out.append({"name": name, "valueInteger": value})
        else:
            out.append({"name": "value", name: value})
    return out


async def test_fhirpath_patch_operations(client: httpx.AsyncClient) -> None:
    await client.put("/fhir/Patient/fp", json={
        "resourceType": "Patient", "id": "fp", "active": True,
        "identifier": [{"system": "urn:a", "value": "1"}, {"system": "urn:b", "value": "2"}],
        "name": [{"family": "Old", "given": ["A"]}]}, headers=FHIR)
    patch = fhirpath_patch(
        op("replace", "Patient.name[0].family", valueString="New"),
        op("add", "Patient.name[0]", name="given", valueString="B"),
        op("add", "Patient", name="gender", valueCode="female"),
        op("insert", "Patient.identifier", index=0,
           valueIdentifier={"system": "urn:c", "value": "3"}),
        op("move", "Patient.identifier", source=2, destination=0),
        op("delete", "Patient.active"),
        op("delete", "Patient.birthDate"),  # nothing there: nothing to do
    )
    r = await client.patch("/fhir/Patient/fp", json=patch, headers=FHIR)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["name"][0] == {"family": "New", "given": ["A", "B"]}
    assert body["gender"] == "female"
    assert [i["value"] for i in body["identifier"]] == ["2", "3", "1"]
    assert "active" not in body
    assert body["meta"]["versionId"] == "2"


async def test_fhirpath_patch_errors(client: httpx.AsyncClient) -> None:
    await client.put("/fhir/Patient/fq", json={"resourceType": "Patient", "id": "fq",
                                               "name": [{"family": "A"}, {"family": "B"}]},
                     headers=FHIR)
    many = fhirpath_patch(op("replace", "Patient.name.family", valueString="X"))
    r = await client.patch("/fhir/Patient/fq", json=many, headers=FHIR)
    assert r.status_code == 422
    bad_path = fhirpath_patch(op("replace", "Patient.name[0].(", valueString="X"))
    assert (await client.patch("/fhir/Patient/fq", json=bad_path, headers=FHIR)).status_code == 400
    bad_type = fhirpath_patch([{"name": "type", "valueCode": "explode"},
                               {"name": "path", "valueString": "Patient"}])
    assert (await client.patch("/fhir/Patient/fq", json=bad_type, headers=FHIR)).status_code == 400
    invalid_result = fhirpath_patch(op("add", "Patient", name="gender", valueCode="robot"))
    assert (await client.patch("/fhir/Patient/fq", json=invalid_result,
                               headers=FHIR)).status_code == 400
    not_params = await client.patch("/fhir/Patient/fq", json={"resourceType": "Patient"},
                                    headers=FHIR)
    assert not_params.status_code == 400
    assert (await client.get("/fhir/Patient/fq")).json()["meta"]["versionId"] == "1"
