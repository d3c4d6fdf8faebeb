"""Tenants: each organisation's data is invisible from every other; unknown tenants are 404."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time

import httpx
import pytest

pytestmark = pytest.mark.anyio

JSON = {"content-type": "application/fhir+json"}
NHS = "https://fhir.nhs.uk/Id/nhs-number"


@pytest.fixture
async def two_tenants(system) -> None:
    await system.store.create_tenant("trust-a")
    await system.store.create_tenant("gp-b")


async def test_unknown_tenant_is_404(client) -> None:
    r = await client.get("/t/nobody/fhir/metadata")
    assert r.status_code == 404
    assert r.json()["resourceType"] == "OperationOutcome"


async def test_resources_are_invisible_across_tenants(client, two_tenants) -> None:
    body = {
        "resourceType": "Patient",
        "id": "shared-id",
        "identifier": [{"system": NHS, "value": "9434765919"}],
    }
    a = await client.put("/t/trust-a/fhir/Patient/shared-id", json=body, headers=JSON)
    assert a.status_code == 201
    for prefix in ("/fhir", "/t/gp-b/fhir"):
        assert (await client.get(f"{prefix}/Patient/shared-id")).status_code == 404
        assert (await client.get(f"{prefix}/Patient/shared-id/_history/1")).status_code == 404
        assert (await client.get(f"{prefix}/Patient/shared-id/_history")).status_code == 404
        assert (await client.get(f"{prefix}/Patient/_history")).json()["entry"] == []
        assert (await client.get(f"{prefix}/_history")).json()["entry"] == []
        found = await client.get(f"{prefix}/Patient?identifier={NHS}|9434765919")
        assert found.json()["entry"] == []
        found = await client.get(f"{prefix}/Patient?_id=shared-id")
        assert found.json()["entry"] == []
        # conditional operations only see their own tenant
        created = await client.post(
            f"{prefix}/Patient",
            json=body,
            headers={**JSON, "If-None-Exist": f"identifier={NHS}|9434765919"},
        )
        assert created.status_code == 201
        assert (await client.delete(f"{prefix}/Patient?_id=shared-id")).status_code == 204
    # the same id can exist independently in another tenant, and deleting there leaves a alone
    b = await client.put("/t/gp-b/fhir/Patient/shared-id", json=body, headers=JSON)
    assert b.status_code == 201 and b.json()["meta"]["versionId"] == "1"
    await client.delete("/t/gp-b/fhir/Patient/shared-id")
    assert (await client.get("/t/trust-a/fhir/Patient/shared-id")).status_code == 200


async def test_paging_cursor_of_one_tenant_is_refused_by_another(client, two_tenants) -> None:
    for _ in range(3):
        await client.post("/t/trust-a/fhir/Patient", json={"resourceType": "Patient"}, headers=JSON)
    page = (await client.get("/t/trust-a/fhir/_history?_count=1")).json()
    nxt = next(link["url"] for link in page["link"] if link["relation"] == "next")
    cursor = nxt.split("_cursor=")[1]
    r = await client.get(f"/t/gp-b/fhir/_history?_count=1&_cursor={cursor}")
    assert r.status_code == 400


async def test_tenant_remove_deletes_its_data(system, client, two_tenants) -> None:
    await client.post("/t/gp-b/fhir/Patient", json={"resourceType": "Patient"}, headers=JSON)
    assert await system.store.remove_tenant("gp-b") is True
    # a removed tenant stops being served within tenant_cache_seconds (1 s by default)
    await asyncio.sleep(system.settings.tenant_cache_seconds + 0.1)
    assert (await client.get("/t/gp-b/fhir/Patient")).status_code == 404
    await system.store.create_tenant("gp-b")
    assert (await client.get("/t/gp-b/fhir/_history")).json()["entry"] == []


@pytest.mark.slow
def test_tenant_created_by_cli_is_served_at_once(server) -> None:
    assert httpx.get(f"{server.url}/t/newcomer/fhir/metadata").status_code == 404
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "careweave.cli",
            "tenant",
            "create",
            "newcomer",
            "--data",
            str(server.data_dir),
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    assert "newcomer" in out.stdout
    assert httpx.get(f"{server.url}/t/newcomer/fhir/metadata").status_code == 200
    listed = subprocess.run(
        [sys.executable, "-m", "careweave.cli", "tenant", "list", "--data", str(server.data_dir)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "newcomer" in listed and "default" in listed
    subprocess.run(
        [
            sys.executable,
            "-m",
            "careweave.cli",
            "tenant",
            "remove",
            "newcomer",
            "--yes",
            "--data",
            str(server.data_dir),
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    deadline = time.monotonic() + 3
    while httpx.get(f"{server.url}/t/newcomer/fhir/metadata").status_code != 404:
        assert time.monotonic() < deadline, "a removed tenant was still served after 3 s"
        time.sleep(0.1)


def test_tenant_settings_cli(tmp_path) -> None:
    data = str(tmp_path / "d")

    def cw(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "careweave.cli", *args, "--data", data], capture_output=True, text=True
        )

    assert cw("tenant", "create", "trust-a").returncode == 0
    assert cw("tenant", "create", "Bad_Name").returncode != 0
    assert cw("tenant", "create", "trust-a").returncode != 0
    out = cw("tenant", "set", "trust-a", "validate_profiles", "true")
    assert out.returncode == 0, out.stderr
    assert "validate_profiles = True" in cw("tenant", "show", "trust-a").stdout
    assert cw("tenant", "set", "trust-a", "validate_profiles", "maybe").returncode != 0
    assert cw("tenant", "set", "nobody", "validate_profiles", "true").returncode != 0
