"""Fixtures for the MPI service tests: a real system (SQLite in a temporary directory) with three
tenants, an in-process HTTP client, and helpers to write Patients and let the matcher catch up."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from careweave.identity import IdentityService
from careweave.system import System

TENANTS = ("trust-a", "trust-b", "gp-c")


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def backend(request: pytest.FixtureRequest) -> str:
    """The MPI suite runs on both backends (the mpi tables' SQL is written once, portable)."""
    return str(request.param)


@dataclass
class Mpi:
    system: System
    client: httpx.AsyncClient

    @property
    def identity(self) -> IdentityService:
        assert self.system.services.identity is not None
        return self.system.services.identity

    async def put(self, tenant: str, patient: dict[str, Any]) -> dict[str, Any]:
        response = await self.client.put(f"/t/{tenant}/fhir/Patient/{patient['id']}", json=patient)
        assert response.status_code in (200, 201), response.text
        return dict(response.json())

    async def delete(self, tenant: str, pid: str) -> None:
        response = await self.client.delete(f"/t/{tenant}/fhir/Patient/{pid}")
        assert response.status_code in (200, 204), response.text

    async def settle(self) -> int:
        return await self.identity.catch_up()

    async def person_of(self, tenant: str, pid: str) -> str | None:
        found = await self.system.store.tenant(tenant)
        assert found is not None
        return await self.identity.person_of(found.key, pid)

    async def person(self, person: str) -> dict[str, Any]:
        response = await self.client.get(f"/mpi/fhir/Person/{person}")
        assert response.status_code == 200, response.text
        return dict(response.json())

    def url(self, tenant: str, pid: str) -> str:
        return f"{self.identity.base_url}/t/{tenant}/fhir/Patient/{pid}"


@pytest.fixture
async def mpi(system: System) -> AsyncIterator[Mpi]:
    for name in TENANTS:
        await system.store.create_tenant(name)
    assert system.services.identity is not None
    await system.services.identity.space()
    transport = httpx.ASGITransport(app=system.app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        yield Mpi(system, client)
