"""Every SQL statement that touches tenant data is scoped to its tenant.

All statements the SQLite backend executes during a broad run of interactions (writes, reads,
history, every kind of search, includes, paging, conditional operations, tenant removal) are
recorded from SQLite itself (the trace callback), and each reference to a tenant table must carry its
own ``tid`` predicate: ``<alias>.tid = <n>`` for an aliased table, ``tid = <n>`` otherwise, and a
``tid`` column on inserts. A query built without the tenant predicate fails this test."""

from __future__ import annotations

import re
from pathlib import Path

import httpx
import pytest

from careweave.settings import Settings
from careweave.store.sql.schema import MIGRATIONS, TENANT_TABLES
from careweave.system import build_system
from tests.support import trace_sqlite

pytestmark = pytest.mark.anyio

JSON = {"content-type": "application/fhir+json"}
_SKIP = ("CREATE", "PRAGMA", "BEGIN", "COMMIT", "ROLLBACK", "SAVEPOINT", "RELEASE", "ALTER",
         "DROP", "EXPLAIN")
_KEYWORDS = {"WHERE", "ON", "JOIN", "LEFT", "INNER", "CROSS", "ORDER", "GROUP", "LIMIT", "UNION",
             "AS", "SET", "VALUES", "NOT"}  # (NOT INDEXED: a table read by its key alone)
_REF = re.compile(r"\b(?:FROM|JOIN)\s+(\w+)(?:\s+(?:AS\s+)?(\w+))?", re.IGNORECASE)


def unscoped(sql: str) -> list[str]:
    """The tenant-table references in ``sql`` that lack their tenant predicate."""
    text = " ".join(sql.split())
    if text.upper().startswith(_SKIP):
        return []
    problems = []
    for m in _REF.finditer(text):
        table, alias = m.group(1), m.group(2)
        if table not in TENANT_TABLES:
            continue
        if alias and alias.upper() not in _KEYWORDS:
            if not re.search(rf"\b{re.escape(alias)}\.tid = \d+", text):
                problems.append(f"{table} {alias}")
        elif not re.search(r"(?<![\w.])tid = \d+", text):
            problems.append(table)
    insert = re.match(r"INSERT INTO (\w+) \(([^)]*)\)", text, re.IGNORECASE)
    if insert and insert.group(1) in TENANT_TABLES and "tid" not in insert.group(2):
        problems.append(f"insert into {insert.group(1)}")
    update = re.match(r"UPDATE (\w+) ", text, re.IGNORECASE)
    if update and update.group(1) in TENANT_TABLES and not re.search(r"\btid = \d+", text):
        problems.append(f"update {update.group(1)}")
    return problems


def test_the_checker_catches_a_missing_predicate() -> None:
    assert unscoped("SELECT r.id FROM resource r WHERE r.type = 'Patient'") == ["resource r"]
    assert unscoped("SELECT 1 FROM ix_token t WHERE t.rk = r.rk AND t.pid = 3") == ["ix_token t"]
    assert unscoped("SELECT r.id FROM resource r WHERE r.tid = 1 AND r.rk IN "
                    "(SELECT t.rk FROM ix_token t WHERE t.code = 'x')") == ["ix_token t"]
    assert unscoped("UPDATE resource SET body = 1 WHERE rk = 2") == ["update resource"]
    assert unscoped("INSERT INTO history (rk, body) VALUES (1, 2)") == ["insert into history"]
    assert unscoped("SELECT r.id FROM resource r WHERE r.tid = 1") == []
    assert unscoped("SELECT key FROM param WHERE pid = 1") == []


async def test_no_statement_escapes_its_tenant(tmp_path: Path, monkeypatch, definitions) -> None:
    statements = trace_sqlite(monkeypatch)
    system = build_system(Settings(data_dir=tmp_path / "d", sqlite_synchronous="NORMAL"),
                          definitions)
    try:
        await system.store.create_tenant("other")
        transport = httpx.ASGITransport(app=system.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            await _exercise(client, "/fhir")
            await _exercise(client, "/t/other/fhir")
            await system.jobs.run_once()  # custom parameter and $reindex jobs, both tenants
            for base in ("/fhir", "/t/other/fhir"):
                r = await client.get(f"{base}/Patient?birthplace=leeds&_sort=birthplace")
                assert r.status_code == 200
        assert await system.store.remove_tenant("other")
    finally:
        await system.close()
    touching = [s for s in statements if any(t in s for t in TENANT_TABLES)]
    assert len(touching) > 300  # the run really exercised the store
    # the schema migrations rebuild whole tables, every tenant's rows at once, by design
    schema = {" ".join(s.split()) for script in MIGRATIONS for s in script.split(";\n")}
    statements = [s for s in statements if " ".join(s.split()) not in schema]
    problems = {s: unscoped(s) for s in statements if unscoped(s)}
    assert problems == {}


async def _exercise(client: httpx.AsyncClient, base: str) -> None:
    nhs = "https://fhir.nhs.uk/Id/nhs-number"
    await client.put(f"{base}/Organization/o1", json={"resourceType": "Organization", "id": "o1",
                                                      "name": "Leeds GP"}, headers=JSON)
    for i in range(3):
        await client.put(f"{base}/Patient/p{i}", json={
            "resourceType": "Patient", "id": f"p{i}", "name": [{"family": f"Smith{i}"}],
            "birthDate": f"198{i}-01-01", "managingOrganization": {"reference": "Organization/o1"},
            "identifier": [{"system": nhs, "value": f"900000000{i}"}]}, headers=JSON)
        await client.put(f"{base}/Observation/o{i}", json={
            "resourceType": "Observation", "id": f"o{i}", "status": "final",
            "code": {"coding": [{"system": "http://loinc.org", "code": "8480-6"}]},
            "subject": {"reference": f"Patient/p{i}"}, "effectiveDateTime": "2024-01-01",
            "valueQuantity": {"value": 120 + i, "system": "http://unitsofmeasure.org",
                              "code": "mm[Hg]"}}, headers=JSON)
    await client.post(f"{base}/Patient", json={"resourceType": "Patient"},
                      headers={**JSON, "If-None-Exist": f"identifier={nhs}|9000000001"})
    await client.put(f"{base}/Patient?identifier={nhs}|9000000002",
                     json={"resourceType": "Patient", "active": True}, headers=JSON)
    await client.patch(f"{base}/Patient/p0", json=[{"op": "add", "path": "/active",
                                                   "value": True}],
                       headers={"content-type": "application/json-patch+json"})
    for query in [
        "Patient?family=smith&_sort=-birthdate&_count=1",
        "Patient?identifier=9000000000,9000000001&_total=accurate",
        "Patient?name:contains=mith&birthdate=ge1980&_summary=count",
        "Patient?_has:Observation:patient:code=8480-6",
        "Patient?organization.name=leeds&_revinclude=Observation:subject",
        "Observation?subject.family=smith1&_include=Observation:subject"
        "&_include:iterate=Patient:organization",
        "Observation?value-quantity=gt120&_sort=date,-_lastUpdated",
        "Observation?component-code-value-quantity=8480-6$gt1&code:text=x",
        "Observation?subject:missing=false&_lastUpdated=gt2000&_content=final",
        "Observation?code:not=1234-5&_id=o1,o2",
        "Patient?_text=smith&phonetic=smith",
        "Patient/p1/Observation", "Patient/p1/*", "?_type=Patient,Observation&_id=p1,o1",
        "Patient/p1/_history", "Patient/_history?_count=1", "_history",
        "Patient/p1", "Patient/p1/_history/1", "metadata",
    ]:
        r = await client.get(f"{base}/{query}")
        assert r.status_code == 200, (query, r.text)
        nxt = [link["url"] for link in r.json().get("link", ()) if link["relation"] == "next"]
        if nxt:
            assert (await client.get(nxt[0].replace("http://t", ""))).status_code == 200
    await client.post(f"{base}/SearchParameter", json={
        "resourceType": "SearchParameter", "status": "active", "code": "birthplace",
        "url": "http://example.org/sp/birthplace", "name": "birthplace", "description": "x",
        "base": ["Patient"], "type": "string",
        "expression": "Patient.extension('http://example.org/birthplace').value"}, headers=JSON)
    await client.post(f"{base}/$reindex", json={"resourceType": "Parameters", "parameter": [
        {"name": "type", "valueCode": "Observation"}]}, headers=JSON)
    await client.get(f"{base}/$reindex")
    await client.delete(f"{base}/Observation?subject=Patient/p2")
    await client.delete(f"{base}/Patient/p2")
