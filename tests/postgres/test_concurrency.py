"""Several careweave processes on one PostgreSQL database stay correct together (real server
processes, real sockets; the requests of each round are in flight at the same time):

- two updates with the same If-Match: one succeeds, the other gets 412, never a lost update
  (http.html#concurrency);
- conditional creates with the same criteria never make duplicates (http.html#ccreate);
- the change log read by ``Store.changes`` is gap-free and ordered while writers commit
  concurrently: a reader never sees sequence N+1 before N.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from careweave.store.sql.postgres import PostgresStore
from tests.postgres.support import isolated_database
from tests.support import ServerProcess

pytestmark = [pytest.mark.anyio, pytest.mark.postgres, pytest.mark.slow]

JSON = {"content-type": "application/fhir+json"}
NHS = "https://fhir.nhs.uk/Id/nhs-number"


@pytest.fixture(scope="module")
def database() -> Iterator[str]:
    with isolated_database() as url:
        yield url


@pytest.fixture(scope="module")
def servers(database: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[ServerProcess]]:
    root = tmp_path_factory.mktemp("pg-servers")
    env = {
        "CAREWEAVE_DATABASE": database,
        "CAREWEAVE_CURSOR_SECRET": "shared",
        "CAREWEAVE_MPI_ENABLED": "false",
    }
    started: list[ServerProcess] = []
    try:
        for i in range(2):
            started.append(ServerProcess(root / f"s{i}", extra_env=env).start())
        yield started
    finally:
        for server in started:
            server.stop()


def patient(id_: str, family: str, nhs: str | None = None) -> dict:
    body: dict = {"resourceType": "Patient", "name": [{"family": family}]}
    if id_:
        body["id"] = id_
    if nhs:
        body["identifier"] = [{"system": NHS, "value": nhs}]
    return body


async def test_same_if_match_on_two_processes_one_wins(servers: list[ServerProcess]) -> None:
    a, b = servers
    async with httpx.AsyncClient(timeout=30) as client:
        r = await client.put(f"{a.url}/fhir/Patient/race", json=patient("race", "v1"), headers=JSON)
        assert r.status_code == 201
        version = 1
        for round_ in range(20):
            results = await asyncio.gather(
                *[
                    client.put(
                        f"{server.url}/fhir/Patient/race",
                        json=patient("race", f"r{round_}-{i}"),
                        headers={**JSON, "If-Match": f'W/"{version}"'},
                    )
                    for i, server in enumerate((a, b))
                ]
            )
            statuses = sorted(r.status_code for r in results)
            assert statuses == [200, 412], [r.text for r in results]
            winner = next(r for r in results if r.status_code == 200).json()
            version += 1
            assert winner["meta"]["versionId"] == str(version)
            current = (await client.get(f"{b.url}/fhir/Patient/race")).json()
            assert current["name"] == winner["name"]  # the stored version is the winner's
        history = (await client.get(f"{a.url}/fhir/Patient/race/_history?_count=100")).json()
        assert history["total"] == version == 21


async def test_concurrent_conditional_creates_make_one_resource(servers: list[ServerProcess]) -> None:
    async with httpx.AsyncClient(timeout=30) as client:
        for round_ in range(3):
            nhs = f"94340000{round_:02d}"
            results = await asyncio.gather(
                *[
                    client.post(
                        f"{servers[i % 2].url}/fhir/Patient",
                        json=patient("", f"c{i}", nhs),
                        headers={**JSON, "If-None-Exist": f"identifier={NHS}|{nhs}"},
                    )
                    for i in range(10)
                ]
            )
            statuses = sorted(r.status_code for r in results)
            assert statuses == [200] * 9 + [201], [r.text for r in results if r.status_code >= 400]
            found = (await client.get(f"{servers[0].url}/fhir/Patient?identifier={NHS}|{nhs}")).json()
            assert found["total"] == 1
            created = next(r for r in results if r.status_code == 201).json()
            assert found["entry"][0]["resource"]["id"] == created["id"]


async def test_change_log_is_gap_free_for_a_concurrent_reader(
    servers: list[ServerProcess], database: str, tmp_path: Path
) -> None:
    reader = PostgresStore(database, pool_size=3)
    start = await reader.changes(0, 1_000_000)
    last = start[-1].seq if start else 0
    seen: list[int] = []
    problems: list[str] = []
    done = asyncio.Event()

    async def read() -> None:
        nonlocal last
        while True:
            finished = done.is_set()
            batch = await reader.changes(last, 500)
            for change in batch:
                if change.seq != last + 1:
                    problems.append(f"saw {change.seq} right after {last}")
                last = change.seq
                seen.append(change.seq)
            if finished and not batch:
                return

    async def write(server: ServerProcess, worker: int) -> None:
        async with httpx.AsyncClient(timeout=30) as client:
            for n in range(25):
                id_ = f"g{server.port}-{worker}-{n}"
                r = await client.put(f"{server.url}/fhir/Patient/{id_}", json=patient(id_, "G"), headers=JSON)
                assert r.status_code == 201, r.text

    try:
        reading = asyncio.create_task(read())
        await asyncio.gather(*[write(s, w) for s in servers for w in range(8)])
        done.set()
        await reading
    finally:
        await reader.close()
    assert problems == []
    assert len(seen) == 2 * 8 * 25


async def test_concurrent_puts_to_one_new_id_create_once(servers: list[ServerProcess]) -> None:
    async with httpx.AsyncClient(timeout=30) as client:
        for round_ in range(3):
            id_ = f"new-{round_}"
            results = await asyncio.gather(
                *[
                    client.put(
                        f"{servers[i % 2].url}/fhir/Patient/{id_}", json=patient(id_, f"n{i}"), headers=JSON
                    )
                    for i in range(10)
                ]
            )
            statuses = sorted(r.status_code for r in results)
            assert statuses == [200] * 9 + [201], [r.text for r in results if r.status_code >= 300]
            assert sorted(int(r.json()["meta"]["versionId"]) for r in results) == list(range(1, 11))
