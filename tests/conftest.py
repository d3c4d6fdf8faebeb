"""Shared fixtures: a real system on a temporary SQLite database, an in-process HTTP client, and a
real server process for tests that need real sockets (fhirpy, kill -9)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest

from careweave.settings import Settings
from careweave.system import Definitions, System, build_system, load_definitions
from tests.support import ServerProcess


@pytest.fixture(scope="session")
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="session")
def definitions() -> Definitions:
    return load_definitions()


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path / "data", sqlite_synchronous="NORMAL")


@pytest.fixture
async def system(settings: Settings, definitions: Definitions) -> AsyncIterator[System]:
    built = build_system(settings, definitions)
    try:
        yield built
    finally:
        await built.close()


@pytest.fixture
async def client(system: System) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=system.app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
        yield c


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ServerProcess]:
    srv = ServerProcess(tmp_path / "srv").start()
    try:
        yield srv
    finally:
        srv.stop()
