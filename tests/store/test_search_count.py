"""``_summary=count`` and ``_total=accurate`` (http://hl7.org/fhir/R4/search.html#total): each
matching resource counts once, however many of its index rows match, and deleted resources not at
all; the count agrees with the matches a page lists. On SQL, one condition on one type is counted
in its index alone (``query.count_statement``)."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from careweave.search.index import IndexRows
from careweave.store import writes
from careweave.store.sql.sqlite import SqliteStore
from tests.search.conftest import put

pytestmark = pytest.mark.anyio

LOINC = "http://loinc.org"
NHS = "https://fhir.nhs.uk/Id/nhs-number"


def _observation(i: int, patient: str, codes: list[str]) -> dict:
    return {
        "resourceType": "Observation",
        "id": f"o{i}",
        "status": "final",
        "code": {"coding": [{"system": LOINC, "code": c} for c in codes]},
        "subject": {"reference": f"Patient/{patient}"},
    }


async def _count(client: httpx.AsyncClient, url: str) -> int:
    r = await client.get(url)
    assert r.status_code == 200, r.text
    return int(r.json()["total"])


async def _listed(client: httpx.AsyncClient, url: str) -> int:
    r = await client.get(url + "&_count=100")
    assert r.status_code == 200, r.text
    return len([e for e in r.json().get("entry", ()) if e["search"]["mode"] == "match"])


@pytest.fixture
async def data(client: httpx.AsyncClient) -> None:
    for pid in ("p1", "p2"):
        await put(
            client,
            {
                "resourceType": "Patient",
                "id": pid,
                "name": [{"family": "Smith"}],
                "identifier": [{"system": NHS, "value": f"9{pid}"}],
            },
        )
    await put(client, _observation(1, "p1", ["29463-7", "29463-7"]))  # two matching rows
    await put(client, _observation(2, "p1", ["29463-7", "8302-2"]))
    await put(client, _observation(3, "p2", ["29463-7"]))
    await put(client, _observation(4, "p2", ["8302-2"]))
    await put(client, _observation(5, "p2", ["29463-7"]))
    r = await client.delete("/fhir/Observation/o5")
    assert r.status_code in (200, 204), r.text


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("Observation?code=http://loinc.org|29463-7", 3),
        ("Observation?code=29463-7", 3),
        ("Observation?code=8302-2", 2),
        ("Observation?code=nothing", 0),
        ("Observation?patient=Patient/p2", 2),
        ("Observation?patient.identifier=https://fhir.nhs.uk/Id/nhs-number|9p1", 2),
        ("Observation?code=29463-7&patient=Patient/p2", 1),
        ("Patient?name=smi", 2),
        ("Observation?not-indexed-yet=1", None),
    ],
)
async def test_a_count_counts_each_live_match_once(
    client: httpx.AsyncClient, data: None, query: str, expected: int | None
) -> None:
    if expected is None:  # an unknown parameter: refused or ignored, never an error
        r = await client.get(f"/fhir/{query}&_summary=count")
        assert r.status_code in (200, 400), r.text
        return
    assert await _count(client, f"/fhir/{query}&_summary=count") == expected
    assert await _count(client, f"/fhir/{query}&_total=accurate") == expected
    assert await _listed(client, f"/fhir/{query}") == expected


async def test_a_multi_type_count_filters_by_type(client: httpx.AsyncClient, data: None) -> None:
    assert await _count(client, "/fhir/?_type=Observation,Patient&_summary=count") == 6


# -- the writer: a resource found missing is not looked up again --------------------------------
async def test_a_new_resource_is_looked_up_once(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "w.db", synchronous="NORMAL")
    try:
        tenant = await store.tenant("default")
        assert tenant is not None
        statements: list[str] = []

        def create(tx, id_: str) -> writes.Outcome:
            tx.conn.set_trace_callback(statements.append)
            try:
                prepared = writes.Prepared("Patient", {"resourceType": "Patient", "id": id_}, IndexRows())
                first = writes.create(tx, prepared, id_)
                changed = writes.Prepared(
                    "Patient", {"resourceType": "Patient", "id": id_, "active": True}, IndexRows()
                )
                again = writes.update(tx, changed, id_)  # found now: the row just inserted
                assert first.stored is not None and again.stored is not None
                assert again.stored.version == first.stored.version + 1
                return again
            finally:
                tx.conn.set_trace_callback(None)

        outcome = await store.write(tenant, lambda tx: create(tx, "a"))
        assert outcome.stored is not None and outcome.stored.version == 2
        lookups = [s for s in statements if s.startswith("SELECT rk, version") and "FROM resource" in s]
        assert len(lookups) == 2, statements  # create's check and update's; not again for the insert
        rows = await store.sql_read(
            lambda c: c.execute("SELECT id, version FROM resource WHERE tid = ?", (tenant.key,)).fetchall()
        )
        assert rows == [("a", 2)]
    finally:
        await store.close()


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("Patient?_has:Observation:patient:code=8302-2", ["p1", "p2"]),
        ("Patient?_has:Observation:patient:code=29463-7", ["p1", "p2"]),
        ("Patient?_has:Observation:subject:code=http://loinc.org|8302-2", ["p1", "p2"]),
        ("Patient?_has:Observation:patient:_id=o1", ["p1"]),
        ("Patient?_has:Observation:patient:code=none", []),
        ("Patient?_has:Observation:patient:status=final", ["p1", "p2"]),
    ],
)
async def test_has_finds_live_referrers_only(
    client: httpx.AsyncClient, data: None, query: str, expected: list[str]
) -> None:
    r = await client.get(f"/fhir/{query}")
    assert r.status_code == 200, r.text
    assert sorted(e["resource"]["id"] for e in r.json().get("entry", ())) == expected


async def test_has_ignores_a_deleted_referrer(client: httpx.AsyncClient, data: None) -> None:
    await put(client, _observation(6, "p3", ["1234-5"]))
    await put(client, {"resourceType": "Patient", "id": "p3"})
    url = "/fhir/Patient?_has:Observation:patient:code=1234-5"
    assert [e["resource"]["id"] for e in (await client.get(url)).json().get("entry", ())] == ["p3"]
    assert (await client.delete("/fhir/Observation/o6")).status_code in (200, 204)
    assert (await client.get(url)).json().get("entry", []) == []
