"""End to end, with real parts: a `careweave serve` process, three tenants holding the same
generated people (careweave.generate, hard discrepancies: typos, nicknames, swaps, moves, maiden
names, twins, "Baby of" newborns, wrong NHS numbers), every Patient written through the FHIR API.
The matcher follows the change log in the server and links them into Persons within seconds,
without ever putting two people into one Person."""

from __future__ import annotations

import csv
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from careweave.generate import GeneratorConfig, generate
from careweave.mpi import NicknameIndex, normalise
from tests.support import ServerProcess

TENANTS = ("trust-a", "trust-b", "gp-c")
CONFIG = GeneratorConfig(
    patients=400,
    organisations=3,
    seed=11,
    difficulty="hard",
    formats=frozenset({"ndjson"}),
    resources_per_patient=20,
)


@pytest.fixture(scope="module")
def population(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("identity-population")
    generate(CONFIG, out)
    return out


def _truth(out: Path) -> dict[str, dict[str, str]]:
    with (out / "ground_truth.csv").open(encoding="utf-8", newline="") as f:
        return {row["patient_id"]: row for row in csv.DictReader(f)}


def _persons(client: httpx.Client) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    url: str | None = "/mpi/fhir/Person?_count=1000"
    while url:
        page = client.get(url).json()
        found.extend(e["resource"] for e in page.get("entry", ()))
        url = next((link["url"] for link in page.get("link", ()) if link["relation"] == "next"), None)
    return found


def test_three_tenants_are_linked_into_persons_within_seconds(population: Path, tmp_path: Path) -> None:
    truth = _truth(population)
    organisations = sorted({row["organisation"] for row in truth.values()})
    tenant_of = {org: TENANTS[i % len(TENANTS)] for i, org in enumerate(organisations)}
    server = ServerProcess(tmp_path / "srv", {"CAREWEAVE_MPI_POLL_SECONDS": "0.1"}).start()
    try:
        for name in TENANTS:
            subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "careweave.cli",
                    "tenant",
                    "create",
                    name,
                    "--data",
                    str(server.data_dir),
                ],
                check=True,
                capture_output=True,
            )
        expected: dict[str, str] = {}  # Person.link URL -> real person
        with httpx.Client(base_url=server.url, timeout=30) as client:
            for line in (population / "ndjson" / "Patient.ndjson").read_bytes().splitlines():
                patient = orjson.loads(line)
                row = truth[patient["id"]]
                tenant = tenant_of[row["organisation"]]
                response = client.put(
                    f"/t/{tenant}/fhir/Patient/{patient['id']}",
                    content=line,
                    headers={"content-type": "application/fhir+json"},
                )
                assert response.status_code in (200, 201), response.text
                expected[f"{server.url}/t/{tenant}/fhir/Patient/{patient['id']}"] = row["person_id"]
            written = time.monotonic()
            while True:
                persons = _persons(client)
                placed = {
                    link["target"]["reference"]
                    for p in persons
                    for link in p.get("link", ())
                    if link["assurance"] in ("level3", "level4")
                }
                if placed >= set(expected) or time.monotonic() - written > 60:
                    break
                time.sleep(0.2)
            assert placed >= set(expected), f"{len(set(expected) - placed)} records not matched in 60 s"
            # no Person holds two real people (no overlay), however the records differ
            clusters = [
                [
                    link["target"]["reference"]
                    for link in p["link"]
                    if link["assurance"] in ("level3", "level4")
                ]
                for p in persons
                if p.get("active", True)
            ]
            for members in clusters:
                assert len({expected[m] for m in members}) == 1, members
            # most people held at several organisations are found to be one Person
            by_person: dict[str, set[str]] = defaultdict(set)
            for members in clusters:
                for m in members:
                    by_person[expected[m]].add(min(members))
            several = [
                p for p in {expected[u] for u in expected} if sum(v == p for v in expected.values()) > 1
            ]
            resolved = sum(len(by_person[p]) == 1 for p in several)
            assert several and resolved / len(several) > 0.8, (resolved, len(several))
            # "Baby of" records are never linked automatically
            nicknames = NicknameIndex.from_table()
            bodies = {
                u: orjson.loads(line)
                for u, line in zip(
                    expected,
                    (population / "ndjson" / "Patient.ndjson").read_bytes().splitlines(),
                    strict=True,
                )
            }
            babies = [u for u, body in bodies.items() if normalise(body, nicknames).placeholder]
            assert babies, "the generator should have registered some newborns as 'Baby of'"
            for members in clusters:
                if any(m in babies for m in members):
                    assert len(members) == 1
            twins = defaultdict(set)
            for u, person in expected.items():
                if truth[u.rsplit("/", 1)[1]]["twin"]:
                    twins[truth[u.rsplit("/", 1)[1]]["household_id"]].add(person)
            assert any(len(people) > 1 for people in twins.values()), "the population should hold twins"
    finally:
        server.stop()
