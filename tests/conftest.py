"""Shared fixtures: a real system on a temporary SQLite database (and, for the storage, search,
bundle and history suites, on PostgreSQL too), an in-process HTTP client, and a real server process
for tests that need real sockets (fhirpy, kill -9)."""

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


# [postgres] the storage, search, bundle and history suites run on both backends
_BOTH_BACKENDS = ("store", "search", "interactions", "rest")


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    folder = metafunc.definition.path.parent
    if "backend" in metafunc.fixturenames and folder.name in _BOTH_BACKENDS and folder.parent.name == "tests":
        backends = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
        metafunc.parametrize("backend", backends, indirect=True)


@pytest.fixture
def backend(request: pytest.FixtureRequest) -> str:
    return str(getattr(request, "param", "sqlite"))


@pytest.fixture
def settings(tmp_path: Path, backend: str) -> Iterator[Settings]:
    if backend == "postgres":
        from tests.postgres.support import isolated_database

        with isolated_database() as url:
            yield Settings(data_dir=tmp_path / "data", database=url, pg_pool_size=8)
        return
    yield Settings(data_dir=tmp_path / "data", sqlite_synchronous="NORMAL")


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
