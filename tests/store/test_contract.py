"""The Store contract: every backend passes this suite (SQLite and PostgreSQL)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import orjson
import pytest

from careweave.errors import CareweaveError, error
from careweave.search.index import IndexRows
from careweave.search.plan import QueryPlan, TokenMatch
from careweave.store import writes
from careweave.store.base import HistoryQuery, Store, Tenant
from careweave.store.sql.sqlite import SqliteStore

pytestmark = pytest.mark.anyio


def prepared(id_: str, family: str = "X", nhs: str | None = None) -> writes.Prepared:
    rows = IndexRows()
    if nhs:
        rows.tokens.append(("Patient.identifier", "urn:nhs", nhs, 0))
    return writes.Prepared(
        "Patient", {"resourceType": "Patient", "id": id_, "name": [{"family": family}]}, rows
    )


async def test_create_read_vread_history(store: Store, tenant: Tenant) -> None:
    out = await store.write(tenant, lambda tx: writes.create(tx, prepared("a"), "a"))
    assert out.created and out.stored is not None and out.stored.version == 1
    await store.write(tenant, lambda tx: writes.update(tx, prepared("a", "Y"), "a"))
    current = await store.read(tenant, "Patient", "a")
    assert current is not None and current.version == 2
    assert orjson.loads(current.body or b"")["name"][0]["family"] == "Y"
    v1 = await store.vread(tenant, "Patient", "a", 1)
    assert v1 is not None and orjson.loads(v1.body or b"")["name"][0]["family"] == "X"
    page = await store.history(tenant, HistoryQuery(type="Patient", id="a", count=10))
    assert [e.version for e in page.entries] == [2, 1] and page.total == 2


async def test_failed_job_leaves_nothing_and_others_commit(store: Store, tenant: Tenant) -> None:
    def fails(tx):
        writes.create(tx, prepared("doomed"), "doomed")
        raise error("CW-2007", "boom after writing")

    results = await asyncio.gather(
        store.write(tenant, lambda tx: writes.create(tx, prepared("ok1"), "ok1")),
        store.write(tenant, fails),
        store.write(tenant, lambda tx: writes.create(tx, prepared("ok2"), "ok2")),
        return_exceptions=True,
    )
    assert isinstance(results[1], CareweaveError)
    assert await store.read(tenant, "Patient", "doomed") is None
    assert await store.read(tenant, "Patient", "ok1") is not None
    assert await store.read(tenant, "Patient", "ok2") is not None
    history = await store.history(tenant, HistoryQuery(count=100))
    assert {e.id for e in history.entries} == {"ok1", "ok2"}
    changes = await store.changes(0, 100)
    assert {c.id for c in changes} == {"ok1", "ok2"}


async def test_change_log_is_monotonic_and_gap_free(store: Store, tenant: Tenant) -> None:
    await asyncio.gather(
        *[
            store.write(tenant, lambda tx, i=i: writes.create(tx, prepared(f"p{i}"), f"p{i}"))
            for i in range(50)
        ]
    )
    changes = await store.changes(0, 1000)
    seqs = [c.seq for c in changes]
    assert seqs == sorted(seqs) and seqs == list(range(seqs[0], seqs[0] + 50))
    assert await store.changes(seqs[-1], 10) == []
    assert [c.seq for c in await store.changes(seqs[9], 5)] == seqs[10:15]


async def test_search_ids_is_tenant_scoped(store: Store, tenant: Tenant) -> None:
    other = await store.create_tenant("other")
    for t in (tenant, other):
        await store.write(t, lambda tx: writes.create(tx, prepared("n", nhs="123"), "n"))
    plan = QueryPlan(("Patient",), TokenMatch("Patient.identifier", "urn:nhs", "123"))
    for t in (tenant, other):
        found = await store.write(t, lambda tx: tx.search_ids(plan, 10))
        assert found == [("Patient", "n")]
    await store.remove_tenant("other")
    assert await store.read(tenant, "Patient", "n") is not None
    assert await store.changes(0, 100) and all(c.tenant == tenant.key for c in await store.changes(0, 100))


async def test_delete_keeps_history_and_removes_index(store: Store, tenant: Tenant) -> None:
    await store.write(tenant, lambda tx: writes.create(tx, prepared("d", nhs="9"), "d"))
    await store.write(tenant, lambda tx: writes.delete(tx, "Patient", "d"))
    gone = await store.read(tenant, "Patient", "d")
    assert gone is not None and gone.deleted and gone.version == 2
    plan = QueryPlan(("Patient",), TokenMatch("Patient.identifier", None, "9"))
    assert await store.write(tenant, lambda tx: tx.search_ids(plan, 10)) == []


async def test_tenants(store: Store) -> None:
    names = [t.name for t in await store.tenants()]
    assert names == ["default"]
    await store.create_tenant("a", {"validate_profiles": True})
    with pytest.raises(CareweaveError):
        await store.create_tenant("a")
    t = await store.tenant("a")
    assert t is not None and t.setting("validate_profiles") is True
    updated = await store.update_tenant_settings("a", {"validate_profiles": False})
    assert updated.setting("validate_profiles") is False
    assert await store.remove_tenant("a") is True
    assert await store.remove_tenant("a") is False


async def test_update_replaces_index_rows(store: Store, tenant: Tenant) -> None:
    await store.write(tenant, lambda tx: writes.create(tx, prepared("u", nhs="111"), "u"))
    await store.write(tenant, lambda tx: writes.update(tx, prepared("u", "Z", nhs="222"), "u"))
    old = QueryPlan(("Patient",), TokenMatch("Patient.identifier", None, "111"))
    new = QueryPlan(("Patient",), TokenMatch("Patient.identifier", None, "222"))
    assert await store.write(tenant, lambda tx: tx.search_ids(old, 10)) == []
    assert await store.write(tenant, lambda tx: tx.search_ids(new, 10)) == [("Patient", "u")]


async def test_a_running_job_is_leased_to_one_runner(store: Store, tenant: Tenant) -> None:
    jid = await store.write(tenant, lambda tx: tx.add_job("export", {"types": ["Patient"]}))
    first = await store.claim_job(tenant, ("export",))
    assert first is not None and first.jid == jid and first.state == "running"
    # another runner (another process) must not take it while its lease holds ...
    assert await store.claim_job(tenant, ("export",)) is None
    await store.update_job(tenant, jid, done=5)  # progress renews the lease
    assert await store.claim_job(tenant, ("export",), lease_ms=60_000) is None
    # ... and takes it over, progress kept, once the lease has run out (the first runner died)
    taken = await store.claim_job(tenant, ("export",), lease_ms=0)
    assert taken is not None and taken.jid == jid and taken.done == 5
    await store.update_job(tenant, jid, state="done")
    assert await store.claim_job(tenant, ("export",), lease_ms=0) is None


async def test_database_from_an_older_schema_is_migrated(tmp_path: Path) -> None:
    import sqlite3

    from careweave.store.sql.schema import MIGRATIONS

    path = tmp_path / "old.db"
    conn = sqlite3.connect(path, isolation_level=None)
    for statement in MIGRATIONS[0].split(";\n"):
        if statement.strip():
            conn.execute(statement)
    conn.execute("PRAGMA user_version = 1")
    conn.execute("INSERT INTO param (pid, key) VALUES (1, 'Patient.identifier')")
    conn.execute("INSERT INTO resource (rk, tid, type, id, version, updated_ms, deleted, body) "
                 "VALUES (1, 1, 'Patient', 'm', 1, 0, 0, '{}')")
    conn.execute("INSERT INTO ix_token VALUES (1, 1, 'urn:nhs', 'old', 0, 1)")
    conn.close()
    store = SqliteStore(path, synchronous="NORMAL")
    try:
        tenant = await store.tenant("default")
        assert tenant is not None
        await store.write(tenant, lambda tx: writes.update(tx, prepared("m", nhs="new"), "m"))
        old = QueryPlan(("Patient",), TokenMatch("Patient.identifier", None, "old"))
        assert await store.write(tenant, lambda tx: tx.search_ids(old, 10)) == []
    finally:
        await store.close()
