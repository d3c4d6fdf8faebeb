"""A write job sees its own writes, whatever the backend buffers: versions appended in a job are
read back, searched and replaced within it; their change-log numbers are set by the time the job
returns, in order and gap-free; the bulk path (prefetched lookups, many versions per job) stores
what one write per resource would. SQLite: rows written table by table (a transaction's new
resources numbered after the first one SQLite numbers), a resource beyond the key space refused."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import orjson
import pytest

from careweave.errors import CareweaveError, error
from careweave.fhir.model import format_instant
from careweave.search.index import IndexRows
from careweave.search.plan import QueryPlan, TokenMatch
from careweave.store import writes
from careweave.store.base import HistoryQuery, Store, Tenant, Transaction
from careweave.store.sql import sqlite as sqlite_backend
from careweave.store.sql.schema import ROW_BITS
from careweave.store.sql.sqlite import SqliteStore

pytestmark = pytest.mark.anyio


def patient(id_: str, nhs: str, family: str = "Smith") -> writes.Prepared:
    rows = IndexRows()
    rows.tokens.append(("Patient.identifier", "urn:nhs", nhs, 0))
    rows.strings.append(("Patient.family", family.lower(), family, 3))
    rows.content = f"{family.lower()} {nhs}"
    body = {"resourceType": "Patient", "id": id_, "name": [{"family": family}]}
    return writes.Prepared("Patient", body, rows)


def by_nhs(nhs: str) -> QueryPlan:
    return QueryPlan(("Patient",), TokenMatch("Patient.identifier", "urn:nhs", nhs))


def serialised(id_: str, nhs: str, family: str = "Smith") -> writes.Serialised:
    p = patient(id_, nhs, family)
    return writes.serialise({**p.resource}, p.index)


async def test_a_job_reads_searches_and_replaces_its_own_writes(store: Store, tenant: Tenant) -> None:
    def job(tx) -> list:
        seen = []
        created = writes.create(tx, patient("a", "1"), "a")
        seen.append(tx.current("Patient", "a").version)
        seen.append(tx.search_ids(by_nhs("1"), 10))
        writes.create(tx, patient("b", "2"), "b")
        writes.update(tx, patient("a", "3", "Jones"), "a")  # replaces a's buffered version
        seen.append(tx.current("Patient", "a").version)
        seen.append(sorted(tx.search_ids(QueryPlan(("Patient",), None), 10)))
        seen.append((tx.search_ids(by_nhs("1"), 10), tx.search_ids(by_nhs("3"), 10)))
        writes.delete(tx, "Patient", "b")
        seen.append(tx.current("Patient", "b").deleted)
        seen.append(tx.search_ids(by_nhs("2"), 10))
        return [created.stored, *seen]

    stored, *seen = await store.write(tenant, job)
    assert seen == [1, [("Patient", "a")], 2, [("Patient", "a"), ("Patient", "b")],
                    ([], [("Patient", "a")]), True, []]  # fmt: skip
    assert stored.seq > 0  # numbered by the time the job returned
    a = await store.read(tenant, "Patient", "a")
    assert a is not None and a.version == 2
    assert orjson.loads(a.body)["name"] == [{"family": "Jones"}]
    b = await store.read(tenant, "Patient", "b")
    assert b is not None and b.deleted and b.version == 2
    history = await store.history(tenant, HistoryQuery(count=10))
    assert [(e.id, e.version) for e in reversed(history.entries)] == [("a", 1), ("b", 1), ("a", 2), ("b", 2)]
    assert await store.write(tenant, lambda tx: tx.search_ids(by_nhs("3"), 10)) == [("Patient", "a")]
    assert await store.write(tenant, lambda tx: tx.search_ids(by_nhs("1"), 10)) == []


async def test_versions_of_a_job_are_numbered_in_order_and_gap_free(store: Store, tenant: Tenant) -> None:
    await store.write(tenant, lambda tx: writes.create(tx, patient("first", "0"), "first"))

    def job(tx) -> list:
        out = [writes.create(tx, patient(f"p{i}", str(i)), f"p{i}").stored for i in range(5)]
        out.append(writes.update(tx, patient("p1", "11", "Jones"), "p1").stored)
        out.append(writes.delete(tx, "Patient", "p2").stored)
        return out

    stored = await store.write(tenant, job)
    seqs = [s.seq for s in stored]
    changes = await store.changes(0, 100)
    assert [c.seq for c in changes] == list(range(changes[0].seq, changes[0].seq + 8))
    assert seqs == [c.seq for c in changes[1:]]
    assert [(c.id, c.version, c.method) for c in changes[1:]] == [
        ("p0", 1, "POST"), ("p1", 1, "POST"), ("p2", 1, "POST"), ("p3", 1, "POST"), ("p4", 1, "POST"),
        ("p1", 2, "PUT"), ("p2", 2, "DELETE")]  # fmt: skip


async def test_bulk_updates_store_what_one_write_per_resource_stores(store: Store, tenant: Tenant) -> None:
    other = await store.create_tenant("single")
    batch = [serialised(f"s{i}", str(i)) for i in range(6)]
    batch.append(serialised("s1", "1"))  # the same resource twice in one job: unchanged
    batch.append(serialised("s2", "22", "Other"))  # ... or changed
    counts = await store.write(tenant, lambda tx: writes.update_serialised(tx, batch))
    assert counts == 7
    for item in batch:
        await store.write(other, lambda tx, item=item: writes.update_serialised(tx, [item]))
    for t in (tenant, other):
        history = await store.history(t, HistoryQuery(count=20))
        assert sorted((e.id, e.version) for e in history.entries) == sorted(
            [(f"s{i}", 1) for i in range(6)] + [("s2", 2)])  # fmt: skip
        assert await store.write(t, lambda tx: tx.search_ids(by_nhs("2"), 10)) == []
        assert await store.write(t, lambda tx: tx.search_ids(by_nhs("22"), 10)) == [("Patient", "s2")]
    # again: nothing changes, in one job or one resource per job
    assert await store.write(tenant, lambda tx: writes.update_serialised(tx, batch[:6])) == 1  # s2 back
    assert await store.write(tenant, lambda tx: writes.update_serialised(tx, batch)) == 1
    assert await store.write(tenant, lambda tx: writes.update_serialised(tx, batch[6:])) == 0


async def test_a_serialised_put_stores_what_update_stores(store: Store, tenant: Tenant) -> None:
    """``put_serialised`` (the gateway's write) against ``update``: the same body but for the
    instant, version 1 then unchanged; a change is version 2."""
    other = await store.create_tenant("by-update")
    prepared = patient("x1", "7")
    item = writes.serialise(prepared.resource, prepared.index)
    first = await store.write(tenant, lambda tx: writes.put_serialised(tx, item))
    again = await store.write(tenant, lambda tx: writes.put_serialised(tx, item))
    assert (first.created, first.changed, again.created, again.changed) == (True, True, False, False)
    assert first.stored is not None and again.stored is not None and again.stored.version == 1
    await store.write(other, lambda tx: writes.update(tx, prepared, "x1"))
    ours, theirs = await store.read(tenant, "Patient", "x1"), await store.read(other, "Patient", "x1")
    assert ours is not None and theirs is not None and ours.body is not None and theirs.body is not None
    assert ours.body.replace(format_instant(ours.updated_ms).encode(), b"") == theirs.body.replace(
        format_instant(theirs.updated_ms).encode(), b""
    )
    changed = patient("x1", "7", "Jones")
    item = writes.serialise(changed.resource, changed.index)
    later = await store.write(tenant, lambda tx: writes.put_serialised(tx, item))
    assert later.changed and not later.created and later.stored is not None and later.stored.version == 2


async def test_prefetched_lookups_answer_what_single_lookups_answer(store: Store, tenant: Tenant) -> None:
    """``tx.prefetch`` then ``current``: the stored versions, None for what is not there, and a
    version appended after the prefetch is the current one."""
    for i in range(3):
        await store.write(tenant, lambda tx, i=i: writes.update(tx, patient(f"f{i}", str(i)), f"f{i}"))
    await store.write(tenant, lambda tx: writes.delete(tx, "Patient", "f2"))
    keys = [("Patient", f"f{i}") for i in range(4)] + [("Observation", "f0")]

    def looked_up(tx: Transaction, prefetch: bool) -> list[tuple[int, bool] | None]:
        if prefetch:
            tx.prefetch(keys)
        found = [tx.current(*key) for key in keys]
        return [None if f is None else (f.version, f.deleted) for f in found]

    single = await store.write(tenant, lambda tx: looked_up(tx, False))
    assert single == [(1, False), (1, False), (2, True), None, None]
    assert await store.write(tenant, lambda tx: looked_up(tx, True)) == single

    def append_after_prefetch(tx: Transaction) -> tuple[int, int] | None:
        tx.prefetch(keys)
        writes.update(tx, patient("f0", "0", "Other"), "f0")
        writes.update(tx, patient("f3", "3"), "f3")
        now, new = tx.current("Patient", "f0"), tx.current("Patient", "f3")
        return None if now is None or new is None else (now.version, new.version)

    assert await store.write(tenant, append_after_prefetch) == (2, 1)


# -- SQLite ---------------------------------------------------------------------------------------
@pytest.fixture
async def sqlite_store(tmp_path: Path) -> AsyncIterator[SqliteStore]:
    backend = SqliteStore(tmp_path / "s.db", synchronous="NORMAL")
    try:
        yield backend
    finally:
        await backend.close()


async def _rows(store: SqliteStore, table: str) -> list[tuple]:
    """``table``'s rows as (resource id, ordinal, the other columns but the tenant)."""

    def read(conn) -> list[tuple]:
        columns = [r[1] for r in conn.execute(f"PRAGMA table_info({table})")]
        values = ", ".join(f"t.{c}" for c in columns if c not in ("ik", "tid"))
        rows = conn.execute(
            f"SELECT r.id, t.ik - (r.rk << {ROW_BITS}), {values} FROM {table} t "
            f"JOIN resource r ON r.rk = t.ik >> {ROW_BITS} WHERE t.tid = 1 AND r.tid = 1"
        ).fetchall()
        return sorted(rows)

    return await store.sql_read(read)


async def test_many_flushes_in_one_job_write_the_rows_one_job_per_resource_would(
    sqlite_store: SqliteStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sqlite_backend, "_FLUSH_AT", 3)  # the buffer written every 3 versions
    tenant = await sqlite_store.tenant("default")
    batch = [serialised(f"m{i}", str(i)) for i in range(10)]
    batch[4] = serialised("m4", "4", "Jones")
    assert await sqlite_store.write(tenant, lambda tx: writes.update_serialised(tx, batch)) == 10
    single = SqliteStore(tmp_path / "single.db", synchronous="NORMAL")
    try:
        for item in batch:
            await single.write(tenant, lambda tx, item=item: writes.update_serialised(tx, [item]))
        for table in ("ix_token", "ix_string"):
            assert await _rows(sqlite_store, table) == await _rows(single, table)

        def texts(conn) -> list[tuple]:
            return sorted(conn.execute(
                "SELECT r.id, x.narrative, x.content FROM ix_text x JOIN resource r ON r.rk = x.rowid "
                "WHERE x.tid = 1 AND r.tid = 1").fetchall())  # fmt: skip

        assert await sqlite_store.sql_read(texts) == await single.sql_read(texts)
        assert len(await sqlite_store.sql_read(texts)) == 10
    finally:
        await single.close()
    # new resources are numbered like SQLite numbers rows: after the largest key
    keys = await sqlite_store.sql_read(lambda c: c.execute("SELECT rk FROM resource ORDER BY rk").fetchall())
    assert [k for (k,) in keys] == list(range(1, 11))


async def test_a_new_resource_beyond_the_key_space_is_refused_and_nothing_is_written(
    sqlite_store: SqliteStore,
) -> None:
    tenant = await sqlite_store.tenant("default")
    last = (1 << (63 - ROW_BITS)) - 1  # the largest key with a range for its index rows

    def plant(conn) -> None:
        conn.execute(
            "INSERT INTO resource (rk, tid, type, id, version, updated_ms, deleted, body, ixmask) "
            "VALUES (?, 1, 'Patient', 'last', 1, 0, 0, '{}', 0)", (last - 1,))  # fmt: skip

    await sqlite_store.sql_write(plant)
    batch = [serialised("fits", "1"), serialised("beyond", "2")]
    with pytest.raises(CareweaveError) as refused:
        await sqlite_store.write(tenant, lambda tx: writes.update_serialised(tx, batch))
    assert refused.value.code == "CW-1003"
    for id_ in ("fits", "beyond"):
        assert await sqlite_store.read(tenant, "Patient", id_) is None
    assert await sqlite_store.changes(0, 10) == []
    await sqlite_store.write(tenant, lambda tx: writes.update_serialised(tx, batch[:1]))
    found = await sqlite_store.write(tenant, lambda tx: tx.search_ids(by_nhs("1"), 10))
    assert found == [("Patient", "fits")]


async def test_jobs_written_together_keep_their_clocks_and_fail_alone(tmp_path: Path) -> None:
    ticks = iter(range(1_000, 2_000, 10))
    store = SqliteStore(tmp_path / "w.db", synchronous="NORMAL", clock=lambda: next(ticks))
    commits: list[str] = []
    try:
        tenant = await store.tenant("default")
        assert tenant is not None

        def doomed(tx) -> None:
            writes.update_serialised(tx, [serialised("doomed", "9")])
            raise error("CW-2007", "boom after writing")  # undone alone

        jobs = [lambda tx, i=i: writes.update_serialised(tx, [serialised(f"j{i}", str(i))]) for i in range(3)]
        await store.sql_write(lambda conn: conn.set_trace_callback(commits.append))  # the writer's
        commits.clear()
        assert await store.write_all(tenant, jobs) == [1, 1, 1]
        assert [s for s in commits if s.startswith(("BEGIN", "COMMIT"))] == ["BEGIN IMMEDIATE", "COMMIT"]
        with pytest.raises(CareweaveError):
            await store.write_all(tenant, [jobs[0], doomed, lambda tx: writes.update_serialised(
                tx, [serialised("after", "5")])])  # fmt: skip
        stamps = {c.id: c.updated_ms for c in await store.changes(0, 10)}
        assert sorted(stamps) == ["after", "j0", "j1", "j2"]
        assert len({stamps["j0"], stamps["j1"], stamps["j2"]}) == 3  # a clock each
        assert await store.read(tenant, "Patient", "doomed") is None
    finally:
        await store.close()
