"""SQLite index rows keyed by resource: ``ik = rk << ROW_BITS | ordinal`` (``schema.py`` rule 3).

Each resource's rows are one key range: the writer numbers them, a partial reindex numbers new rows
after the ones it keeps, a resource that would overflow its range is refused, and the statements
that read one resource's rows search that range on the table's own key."""

from __future__ import annotations

import re
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from careweave.errors import CareweaveError
from careweave.search.index import IndexRows
from careweave.search.plan import QueryPlan, StringMatch, TokenMatch
from careweave.settings import Settings
from careweave.store import writes
from careweave.store.base import Tenant
from careweave.store.sql.schema import ROW_BITS
from careweave.store.sql.sqlite import SqliteStore, first_row_key
from careweave.system import build_system
from tests.support import trace_sqlite

pytestmark = pytest.mark.anyio

LIMIT = 1 << ROW_BITS
BOTH = [("Patient", "p"), ("Patient", "q")]
JSON = {"content-type": "application/fhir+json"}


def test_row_keys_number_a_resource_rows_within_its_range() -> None:
    assert first_row_key(3, 0, 16, "ix_token", bits=4) == 48  # keys 48..63: rk 3's range
    assert first_row_key(3, 10, 6, "ix_token", bits=4) == 58
    assert first_row_key(3, 0, 1, "ix_token") == 3 << ROW_BITS


@pytest.mark.parametrize(("rk", "ordinal", "count"), [(3, 0, 17), (3, 10, 7), (3, 16, 1), (1 << 59, 0, 1)])
def test_rows_beyond_the_range_are_refused(rk: int, ordinal: int, count: int) -> None:
    with pytest.raises(CareweaveError) as refused:
        first_row_key(rk, ordinal, count, "ix_token", bits=4)  # 16 keys per resource
    assert refused.value.code == "CW-1003"
    assert "ix_token" in refused.value.diagnostics


# -- the writer ---------------------------------------------------------------------------------
@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SqliteStore]:
    backend = SqliteStore(tmp_path / "k.db", synchronous="NORMAL")
    try:
        yield backend
    finally:
        await backend.close()


def patient_rows(*identifiers: str, family: str = "smith") -> IndexRows:
    rows = IndexRows()
    rows.tokens += [("Patient.identifier", "urn:x", i, 0) for i in identifiers]
    rows.tokens.append(("Patient.gender", None, "female", 1))
    rows.strings.append(("Patient.family", family, family.title(), 3))
    return rows


async def create(store: SqliteStore, tenant: Tenant, id_: str, rows: IndexRows) -> int:
    prepared = writes.Prepared("Patient", {"resourceType": "Patient", "id": id_}, rows)
    await store.write(tenant, lambda tx: writes.create(tx, prepared, id_))
    return await rk_of(store, id_)


async def rk_of(store: SqliteStore, id_: str) -> int:
    return int(await store.sql_read(
        lambda c: c.execute("SELECT rk FROM resource WHERE tid = 1 AND id = ?", (id_,)).fetchone()[0]))


async def keys(store: SqliteStore, table: str, rk: int) -> dict[int, tuple]:
    """ordinal -> (param key, value) of ``rk``'s rows in ``table``."""
    value = {"ix_token": "code", "ix_string": "norm"}[table]

    def read(c):
        return c.execute(
            f"SELECT t.ik, p.key, t.{value} FROM {table} t JOIN param p ON p.pid = t.pid "
            "WHERE t.tid = 1 AND t.ik BETWEEN ? AND ?", ((rk << ROW_BITS), ((rk + 1) << ROW_BITS) - 1)
        ).fetchall()

    return {ik - (rk << ROW_BITS): (key, v) for ik, key, v in await store.sql_read(read)}


async def found(store: SqliteStore, tenant: Tenant, param: str, code: str) -> list[tuple[str, str]]:
    plan = QueryPlan(("Patient",), TokenMatch(param, None, code))
    return await store.write(tenant, lambda tx: tx.search_ids(plan, 10))


async def test_a_write_numbers_each_table_from_zero(store: SqliteStore, tenant: Tenant) -> None:
    p = await create(store, tenant, "p", patient_rows("1", "2"))
    q = await create(store, tenant, "q", patient_rows("7"))
    assert q == p + 1  # neighbours: q's range follows p's
    assert await keys(store, "ix_token", p) == {
        0: ("Patient.identifier", "1"), 1: ("Patient.identifier", "2"), 2: ("Patient.gender", "female")}
    assert await keys(store, "ix_string", p) == {0: ("Patient.family", "smith")}
    body = {"resourceType": "Patient", "id": "p", "active": True}
    prepared = writes.Prepared("Patient", body, patient_rows("3"))
    await store.write(tenant, lambda tx: writes.update(tx, prepared, "p"))  # an update renumbers
    assert await keys(store, "ix_token", p) == {
        0: ("Patient.identifier", "3"), 1: ("Patient.gender", "female")}
    assert await found(store, tenant, "Patient.identifier", "1") == []
    assert await found(store, tenant, "Patient.identifier", "3") == [("Patient", "p")]
    assert await found(store, tenant, "Patient.identifier", "7") == [("Patient", "q")]


async def test_a_partial_reindex_numbers_new_rows_after_the_kept_ones(
    store: SqliteStore, tenant: Tenant
) -> None:
    p = await create(store, tenant, "p", patient_rows("1", "2"))
    q = await create(store, tenant, "q", patient_rows("7"))
    before_q = await keys(store, "ix_token", q)
    new = patient_rows("3", "4", "5", family="jones")  # only the identifier is reindexed
    await store.write(tenant, lambda tx: tx.replace_index(p, new, frozenset({"Patient.identifier"})))
    assert await keys(store, "ix_token", p) == {
        2: ("Patient.gender", "female"),  # kept, where it was
        3: ("Patient.identifier", "3"), 4: ("Patient.identifier", "4"), 5: ("Patient.identifier", "5")}
    assert await keys(store, "ix_string", p) == {0: ("Patient.family", "smith")}  # not reindexed
    assert await keys(store, "ix_token", q) == before_q
    assert await found(store, tenant, "Patient.identifier", "2") == []
    assert await found(store, tenant, "Patient.identifier", "4") == [("Patient", "p")]
    assert sorted(await found(store, tenant, "Patient.gender", "female")) == BOTH
    # again: numbered after the highest kept row, never over one
    again = patient_rows("6")
    await store.write(tenant, lambda tx: tx.replace_index(p, again, frozenset({"Patient.identifier"})))
    assert await keys(store, "ix_token", p) == {
        2: ("Patient.gender", "female"), 3: ("Patient.identifier", "6")}


async def test_a_partial_reindex_with_no_room_left_renumbers_the_resource(
    store: SqliteStore, tenant: Tenant
) -> None:
    p = await create(store, tenant, "p", patient_rows("1"))
    q = await create(store, tenant, "q", patient_rows("7"))
    before_q = await keys(store, "ix_token", q)

    def plant_last_key(conn: sqlite3.Connection) -> None:  # as after 2^24 partial reindexes
        pid = conn.execute("SELECT pid FROM param WHERE key = 'Patient.gender'").fetchone()[0]
        conn.execute("UPDATE ix_token SET ik = ? WHERE tid = 1 AND ik = ? AND pid = ?",
                     (((p + 1) << ROW_BITS) - 1, (p << ROW_BITS) + 1, pid))

    await store.sql_write(plant_last_key)
    assert (await keys(store, "ix_token", p))[LIMIT - 1] == ("Patient.gender", "female")
    new = patient_rows("2", "3")
    await store.write(tenant, lambda tx: tx.replace_index(p, new, frozenset({"Patient.identifier"})))
    assert await keys(store, "ix_token", p) == {
        0: ("Patient.identifier", "2"), 1: ("Patient.identifier", "3"), 2: ("Patient.gender", "female")}
    assert await keys(store, "ix_token", q) == before_q
    assert sorted(await found(store, tenant, "Patient.gender", "female")) == BOTH


async def test_rows_that_would_overflow_are_refused_and_the_neighbour_keeps_its_rows(
    store: SqliteStore, tenant: Tenant
) -> None:
    p = await create(store, tenant, "p", patient_rows("1"))
    q = await create(store, tenant, "q", patient_rows("7"))
    before = await keys(store, "ix_token", p), await keys(store, "ix_token", q)

    def overflow(tx) -> None:  # two more token rows for p, numbered from its last key
        tx._insert_index(p, patient_rows("8"), {"ix_token": LIMIT - 1})

    with pytest.raises(CareweaveError) as refused:
        await store.write(tenant, overflow)
    assert refused.value.code == "CW-1003"
    assert (await keys(store, "ix_token", p), await keys(store, "ix_token", q)) == before
    assert await found(store, tenant, "Patient.identifier", "8") == []
    assert await found(store, tenant, "Patient.identifier", "7") == [("Patient", "q")]
    plan = QueryPlan(("Patient",), StringMatch("Patient.family", "smith", "default"))
    assert len(await store.write(tenant, lambda tx: tx.search_ids(plan, 10))) == 2


# -- the statements -----------------------------------------------------------------------------
# a statement reading one resource's rows: the alias (or table) whose key range it names
_BY_KEY = re.compile(r"\b(\w+)\.ik BETWEEN|FROM (ix_\w+)(?: NOT INDEXED)? WHERE ik BETWEEN")
_DRIVER = re.compile(r"SELECT \((\w+)\.ik >> \d+\) FROM (ix_\w+) \1\b")


async def test_one_resource_rows_are_read_by_key_and_drivers_from_the_value_index(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, definitions
) -> None:
    statements = trace_sqlite(monkeypatch)
    system = build_system(Settings(data_dir=tmp_path / "d", sqlite_synchronous="NORMAL"), definitions)
    try:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=system.app), base_url="http://t") as c:
            await _load(c)
            for query in QUERIES:
                r = await c.get(f"/fhir/{query}")
                assert r.status_code == 200 and r.json().get("entry"), (query, r.text)
            # updates delete the old rows; a custom parameter's reindex replaces some of them
            for resource in (RESOURCES[1], RESOURCES[-1]):
                r = await c.put(f"/fhir/{resource['resourceType']}/{resource['id']}",
                                json={**resource, "language": "en"}, headers=JSON)
                assert r.status_code == 200, r.text
            r = await c.post("/fhir/SearchParameter", json=CUSTOM, headers=JSON)
            assert r.status_code == 201, r.text
            await system.jobs.run_once()
            r = await c.get("/fhir/Patient?nick=Smith1")
            assert [e["resource"]["id"] for e in r.json()["entry"]] == ["p1"]
    finally:
        await system.close()
    plain = sqlite3.connect(tmp_path / "d" / "careweave.db")  # (no ANALYZE: the planner guesses)
    selects = {s for s in statements if s.startswith(("SELECT", "DELETE", "WITH")) and " ix_" in s}
    shapes = {"EXISTS (SELECT 1 FROM ix_": 0, "NOT EXISTS (SELECT 1 FROM ix_": 0, "coalesce((SELECT": 0,
              "CROSS JOIN ix_reference": 0, "VALUES (CAST(": 0, "DELETE FROM ix_token": 0,
              "SELECT max(ik) FROM ix_string": 0, "AND pid IN": 0}
    drivers = 0
    for sql in selects:
        plan = [row[3] for row in plain.execute("EXPLAIN QUERY PLAN " + sql)]
        for alias in (a or t for a, t in _BY_KEY.findall(sql)):
            assert f"SEARCH {alias} USING INTEGER PRIMARY KEY (rowid>? AND rowid<?)" in plan, (sql, plan)
        for alias, _ in _DRIVER.findall(sql):
            drivers += 1
            assert any(line.startswith(f"SEARCH {alias} USING COVERING INDEX") for line in plan), (sql, plan)
        for shape in shapes:
            shapes[shape] += shape in sql and bool(_BY_KEY.search(sql))
    plain.close()
    assert drivers > 5 and all(shapes.values()), shapes


CUSTOM = {"resourceType": "SearchParameter", "status": "active", "code": "nick", "name": "nick",
          "url": "http://example.org/sp/nick", "description": "x", "base": ["Patient"], "type": "string",
          "expression": "Patient.name.family"}
QUERIES = [
    "Observation?code=8480-6&subject=Patient/p1",  # EXISTS
    "Observation?subject=Patient/p0&value-quantity:missing=true",  # NOT EXISTS (:missing)
    "Observation?subject=Patient/p1&_sort=-date",  # sort key
    "Patient?_sort=birthdate&_count=10",  # sorted scan; phase 2 (no birthDate): NOT EXISTS
    "Patient?_has:Observation:patient:code=8480-6",
    "Observation?code=8480-6&_include=Observation:subject&_include:iterate=Patient:organization",
    "Patient?_id=p1&_revinclude=Observation:subject",
    "Observation?_list=l1",
    "Observation?patient.identifier=urn:x|2",
]


async def _load(client: httpx.AsyncClient) -> None:
    for resource in RESOURCES:
        r = await client.put(f"/fhir/{resource['resourceType']}/{resource['id']}", json=resource,
                             headers=JSON)
        assert r.status_code in (200, 201), r.text


def _resources() -> list[dict]:
    out: list[dict] = [{"resourceType": "Organization", "id": "o1", "name": "Leeds GP"}]
    for i in range(4):
        patient = {"resourceType": "Patient", "id": f"p{i}", "name": [{"family": f"Smith{i}"}],
                   "gender": "female" if i % 2 else "male",
                   "identifier": [{"system": "urn:x", "value": str(i)}],
                   "managingOrganization": {"reference": "Organization/o1"}}
        if i < 3:
            patient["birthDate"] = f"198{i}-01-01"
        out.append(patient)
    for i in range(8):
        obs = {"resourceType": "Observation", "id": f"ob{i}", "status": "final",
               "code": {"coding": [{"system": "http://loinc.org", "code": "8480-6" if i % 2 else "8462-4"}],
                        "text": "blood pressure"},
               "subject": {"reference": f"Patient/p{i % 4}"},
               "effectiveDateTime": f"2024-01-0{i + 1}"}
        if i % 3:
            obs["valueQuantity"] = {"value": 100 + i, "system": "http://unitsofmeasure.org", "code": "mm[Hg]"}
        if i % 4 == 1:
            obs["component"] = [{"code": {"coding": [{"system": "http://loinc.org", "code": "8462-4"}]},
                                 "valueQuantity": {"value": 120 + i, "system": "http://unitsofmeasure.org",
                                                   "code": "mm[Hg]"}}]
        out.append(obs)
    out.append({"resourceType": "List", "id": "l1", "status": "current", "mode": "working",
                "entry": [{"item": {"reference": "Observation/ob1"}},
                          {"item": {"reference": "Observation/ob2"}}]})
    return out


RESOURCES = _resources()
