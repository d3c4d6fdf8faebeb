"""Migration 5 (SQLite): index tables rebuilt with rows keyed by resource (``schema.py`` rule 3).

A database at schema version 4 is built with the old layout (an ``rk`` column and an ``(rk)`` index
on every index table, rows in arbitrary order), holding the rows the server itself made for a small
data set; opened by the current code, it must answer every kind of search as a database loaded by
the current code does, before and after updates."""

from __future__ import annotations

import random
import sqlite3
from pathlib import Path

import httpx
import pytest

from careweave.settings import Settings
from careweave.store.sql.schema import INDEX_TABLES, MIGRATIONS, ROW_BITS
from careweave.system import build_system
from tests.store.test_row_keys import JSON, _load

pytestmark = pytest.mark.anyio

QUERIES = [
    "Patient?identifier=urn:x|2",
    "Patient?family=smith&_sort=-birthdate",
    "Patient?_sort=birthdate&_count=2",
    "Patient?_sort=-family",
    "Patient?gender=female&_revinclude=Observation:subject",
    "Patient?_has:Observation:patient:code=8480-6",
    "Patient?organization.name=leeds&birthdate=ge1981",
    "Observation?code=8480-6&subject=Patient/p1",
    "Observation?subject=Patient/p0&value-quantity:missing=true",
    "Observation?value-quantity:missing=false&_sort=date",
    "Observation?value-quantity=gt104&_sort=-value-quantity",
    "Observation?code:text=blood&date=ge2024-01-03&_sort=-date",
    "Observation?code=8480-6&_include=Observation:subject&_include:iterate=Patient:organization",
    "Observation?combo-code-value-quantity=8462-4$gt1",
    "Observation?_list=l1",
    "Observation?patient.identifier=urn:x|2",
    "Observation?_summary=count&code=8462-4",
    "List?item=Observation/ob2",
]
UPDATES = [
    {"resourceType": "Patient", "id": "p2", "name": [{"family": "Jones"}], "birthDate": "1970-05-05",
     "identifier": [{"system": "urn:x", "value": "22"}]},
    {"resourceType": "Observation", "id": "ob1", "status": "final",
     "code": {"coding": [{"system": "http://loinc.org", "code": "8462-4"}]},
     "subject": {"reference": "Patient/p3"}, "effectiveDateTime": "2023-06-01"},
]


async def _answers(client: httpx.AsyncClient) -> dict[str, list[str]]:
    out = {}
    for query in QUERIES:
        r = await client.get(f"/fhir/{query}")
        assert r.status_code == 200, (query, r.text)
        bundle = r.json()
        out[query] = [f"{e['search']['mode']} {e['resource']['resourceType']}/{e['resource']['id']}"
                      for e in bundle.get("entry", ())] + [f"total {bundle.get('total')}"]
    return out


def _old_database(source: Path, target: Path) -> None:
    """A version 4 database holding ``source``'s data, its index rows in the old layout and order."""
    conn = sqlite3.connect(target, isolation_level=None)
    for script in MIGRATIONS[:4]:
        for statement in script.split(";\n"):
            if statement.strip():
                conn.execute(statement)
    conn.execute("PRAGMA user_version = 4")
    conn.execute("ATTACH DATABASE ? AS src", (str(source),))
    conn.execute("BEGIN")
    conn.execute("DELETE FROM tenant")
    for table in ("tenant", "param", "history", "resource"):
        conn.execute(f"INSERT INTO {table} SELECT * FROM src.{table}")
    conn.execute("UPDATE resource SET ixmask = -1 WHERE rk % 2 = 0")  # as written before version 2
    rng = random.Random(5)
    for table in INDEX_TABLES:
        if table == "ix_text":
            conn.execute("INSERT INTO ix_text (rowid, narrative, content, tid) "
                         "SELECT rowid, narrative, content, tid FROM src.ix_text")
            continue
        columns = [row[1] for row in conn.execute(f"PRAGMA src.table_info({table})") if row[1] != "ik"]
        rows = conn.execute(f"SELECT {', '.join(columns)}, ik >> {ROW_BITS} FROM src.{table}").fetchall()
        rng.shuffle(rows)  # the old rowids follow the write order, not the resource
        marks = ", ".join("?" for _ in range(len(columns) + 1))
        conn.executemany(f"INSERT INTO {table} ({', '.join(columns)}, rk) VALUES ({marks})", rows)
    conn.execute("COMMIT")
    conn.execute("DETACH DATABASE src")
    assert conn.execute("SELECT count(*) FROM ix_token").fetchone()[0] > 20
    conn.close()


def _rows_by_resource(db: Path) -> dict[str, list[tuple]]:
    """Each index table's rows as (rk, ordinal, values...), sorted."""
    conn = sqlite3.connect(db)
    out = {}
    for table in INDEX_TABLES:
        if table != "ix_text":
            rows = conn.execute(f"SELECT ik >> {ROW_BITS}, ik & {(1 << ROW_BITS) - 1}, * FROM {table}")
            out[table] = sorted((tuple(r[:2]) + tuple(r[3:]) for r in rows), key=repr)
    conn.close()
    return out


def _unnumbered(rows: dict[str, list[tuple]]) -> dict[str, list[tuple]]:
    return {table: sorted(((r[0], *r[2:]) for r in t_rows), key=repr) for table, t_rows in rows.items()}


async def test_a_version_4_database_is_rebuilt_and_searches_as_a_new_one(tmp_path: Path, definitions) -> None:
    fresh = build_system(Settings(data_dir=tmp_path / "fresh", sqlite_synchronous="NORMAL"), definitions)
    try:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=fresh.app), base_url="http://t") as c:
            await _load(c)
    finally:
        await fresh.close()
    old = tmp_path / "old"
    old.mkdir()
    _old_database(tmp_path / "fresh" / "careweave.db", old / "careweave.db")

    migrated = build_system(Settings(data_dir=old, sqlite_synchronous="NORMAL"), definitions)
    fresh = build_system(Settings(data_dir=tmp_path / "fresh", sqlite_synchronous="NORMAL"), definitions)
    try:
        conn = sqlite3.connect(old / "careweave.db")
        assert conn.execute("PRAGMA user_version").fetchone()[0] == len(MIGRATIONS)
        indexes = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'index'")}
        assert not {f"{t}_rk" for t in INDEX_TABLES} & indexes
        assert {"ix_token_code", "ix_date_hi", "ix_reference_url", "ix_string_v"} <= indexes
        assert not {"ix_date_first", "ix_date_last", "ix_string_first", "ix_string_last"} & indexes  # 6
        assert "rk" not in {r[1] for r in conn.execute("PRAGMA table_info(ix_token)")}
        conn.close()
        # the same rows, each resource's numbered 0, 1, 2 ... in each table
        rows = _rows_by_resource(old / "careweave.db")
        assert _unnumbered(rows) == _unnumbered(_rows_by_resource(tmp_path / "fresh" / "careweave.db"))
        for table_rows in rows.values():
            per_resource: dict[int, list[int]] = {}
            for rk, ordinal, *_ in table_rows:
                per_resource.setdefault(rk, []).append(ordinal)
            assert all(sorted(o) == list(range(len(o))) for o in per_resource.values())

        transport_m = httpx.ASGITransport(app=migrated.app)
        transport_f = httpx.ASGITransport(app=fresh.app)
        async with (httpx.AsyncClient(transport=transport_m, base_url="http://t") as m,
                    httpx.AsyncClient(transport=transport_f, base_url="http://t") as f):
            before = await _answers(m)
            assert before == await _answers(f)
            assert before["Patient?identifier=urn:x|2"] == ["match Patient/p2", "total 1"]
            assert "match Observation/ob1" in before["Observation?_list=l1"]
            for resource in UPDATES:
                for client in (m, f):
                    r = await client.put(f"/fhir/{resource['resourceType']}/{resource['id']}",
                                         json=resource, headers=JSON)
                    assert r.status_code == 200, r.text
            after = await _answers(m)
            assert after == await _answers(f)
            assert after["Patient?identifier=urn:x|2"] == ["total 0"]
            assert after != before
            assert await _answers(m) == after
            r = await m.get("/fhir/Patient?identifier=urn:x|22")
            assert [e["resource"]["id"] for e in r.json()["entry"]] == ["p2"]
    finally:
        await migrated.close()
        await fresh.close()


def test_a_resource_with_too_many_rows_stops_the_migration(tmp_path: Path) -> None:
    """Rows that would not fit their resource's key range fail the copy (and the migration rolls
    back) rather than land in another resource's range."""
    conn = sqlite3.connect(tmp_path / "x.db", isolation_level=None)
    for script in MIGRATIONS[:4]:
        for statement in script.split(";\n"):
            if statement.strip():
                conn.execute(statement)
    conn.execute("INSERT INTO ix_geo (tid, pid, lat, lon, rk) VALUES (1, 1, 0, 0, ?)", (1 << 40,))
    conn.execute("BEGIN")
    with pytest.raises(sqlite3.IntegrityError, match="NOT NULL"):
        for statement in MIGRATIONS[4].split(";\n"):
            if statement.strip():
                conn.execute(statement)
    conn.execute("ROLLBACK")
    assert conn.execute("SELECT rk FROM ix_geo").fetchall() == [(1 << 40,)]
