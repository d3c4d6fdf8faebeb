"""A bulk load stores and finds what one write per resource does: written many resources per job
(the loader's write jobs, the store's buffered rows), the same index rows, full-text rows and
search results; a second load changes nothing."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import orjson
import pytest

from careweave.generate import DEMO, generate
from careweave.interactions import loading
from careweave.interactions.common import criteria_plan
from careweave.interactions.loading import load_paths
from careweave.search.plan import QueryPlan, TokenMatch
from careweave.store import writes
from careweave.store.base import HistoryQuery, Tenant
from careweave.store.sql.schema import INDEX_TABLES, ROW_BITS
from careweave.store.sql.sqlite import SqliteStore
from careweave.system import System

pytestmark = pytest.mark.anyio

LINES = 40  # resources per type


@pytest.fixture(scope="module")
def sample(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("rows")
    generate(DEMO, out / "demo")
    folder = out / "sample"
    folder.mkdir()
    for path in sorted((out / "demo" / "ndjson").glob("*.ndjson")):
        (folder / path.name).write_bytes(b"".join(path.read_bytes().splitlines(keepends=True)[:LINES]))
    return folder


async def _current(system: System, tenant: Tenant) -> list[dict]:
    page = await system.store.history(tenant, HistoryQuery(count=10_000))
    assert len(page.entries) < 10_000
    return [orjson.loads(e.body) for e in page.entries if e.body is not None]


async def _write_one_by_one(system: System, tenant: Tenant, resources: list[dict]) -> None:
    """Each resource in its own write job, as the REST API writes it."""
    indexer = (await system.services.search.of(tenant)).indexer
    for resource in resources:
        resource = {k: v for k, v in resource.items() if k != "meta"}
        prepared = writes.Prepared(resource["resourceType"], resource, indexer.index(resource))
        await system.store.write(tenant, lambda tx, p=prepared: writes.update(tx, p, p.resource["id"]))


async def _found(system: System, tenant: Tenant, plan: QueryPlan) -> list[tuple[str, str]]:
    page = await system.store.search(tenant, plan)
    return sorted((m.type, m.id) for m in page.matches)


async def _searches(system: System, tenant: Tenant, resources: list[dict]) -> list[QueryPlan]:
    """Full-text searches for words of the resources' text, and token searches for their codes."""
    indexer = (await system.services.search.of(tenant)).indexer
    plans: list[QueryPlan] = []
    words: dict[str, set[str]] = {}
    for resource in resources:
        rows = indexer.index(resource)
        type_ = resource["resourceType"]
        words.setdefault(type_, set()).update(rows.content.split()[:3])
        plans += [QueryPlan((type_,), TokenMatch(key, system_, code), count=500)
                  for key, system_, code, _ in rows.tokens[:2]]  # fmt: skip
    for type_, found in sorted(words.items()):
        for word in sorted(found)[:6]:
            for query in (f"_content={word}", f"_text={word}"):
                plan = await criteria_plan(system.services, tenant, type_, query)
                plans.append(replace(plan, count=500))
    return plans


async def _index_rows(store: SqliteStore, tid: int) -> dict[str, list[tuple]]:
    """Every index table's rows of a tenant, by resource (type, id) and ordinal."""

    def read(conn) -> dict[str, list[tuple]]:
        out = {}
        for table in INDEX_TABLES:
            if table == "ix_text":
                sql = ("SELECT r.type, r.id, x.narrative, x.content FROM ix_text x "
                       "JOIN resource r ON r.rk = x.rowid WHERE x.tid = ? AND r.tid = ?")  # fmt: skip
            else:
                columns = [r[1] for r in conn.execute(f"PRAGMA table_info({table})")]
                values = ", ".join(f"t.{c}" for c in columns if c not in ("ik", "tid"))
                sql = (f"SELECT r.type, r.id, t.ik - (r.rk << {ROW_BITS}), {values} FROM {table} t "
                       f"JOIN resource r ON r.rk = t.ik >> {ROW_BITS} "
                       "WHERE t.tid = ? AND r.tid = ?")  # fmt: skip
            out[table] = sorted(conn.execute(sql, (tid, tid)).fetchall(), key=repr)
        masks = "SELECT type, id, ixmask FROM resource WHERE tid = ?"
        out["resource"] = sorted(conn.execute(masks, (tid,)).fetchall())
        return out

    return await store.sql_read(read)


async def test_a_bulk_load_stores_and_finds_what_single_writes_do(system: System, sample: Path) -> None:
    bulk = await system.store.tenant("default")
    single = await system.store.create_tenant("single")
    # small jobs and chunks: many jobs, several chunks per job, a chunk across two jobs
    report = await load_paths(system.services, bulk, [sample], chunk=15, write_size=37)
    assert report.rejected == 0 and report.stored == report.read > 300
    resources = await _current(system, bulk)
    await _write_one_by_one(system, single, resources)
    plans = await _searches(system, bulk, resources)
    assert len(plans) > 100
    found_any = 0
    for plan in plans:
        got = await _found(system, bulk, plan)
        assert got == await _found(system, single, plan), plan
        found_any += bool(got)
    assert found_any > len(plans) // 2
    if isinstance(system.store, SqliteStore):
        assert await _index_rows(system.store, bulk.key) == await _index_rows(system.store, single.key)
        before = await _index_rows(system.store, bulk.key)
    # again, in one job: nothing changes
    again = await load_paths(system.services, bulk, [sample], write_size=10_000)
    assert again.stored == 0 and again.unchanged == report.read
    history = await system.store.history(bulk, HistoryQuery(count=10_000))
    assert len(history.entries) == report.stored
    if isinstance(system.store, SqliteStore):
        assert await _index_rows(system.store, bulk.key) == before


async def test_conditional_references_find_targets_still_waiting_to_be_written(
    system: System, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # the practitioners are prepared but not yet written (one write job for the whole load) when
    # the observations referring to them by identifier are resolved: they are written first
    npi = "http://hl7.org/fhir/sid/us-npi"
    folder = tmp_path / "refs"
    folder.mkdir()
    practitioners = [{"resourceType": "Practitioner", "id": f"pr{i}",
                      "identifier": [{"system": npi, "value": f"{i:010d}"}]} for i in range(3)]  # fmt: skip
    observations = [{"resourceType": "Observation", "id": f"o{i}", "status": "final", "code": {"text": "x"},
                     "performer": [{"reference": f"Practitioner?identifier={npi}|{i % 3:010d}"}]}
                    for i in range(6)]  # fmt: skip
    (folder / "practitionerInformation.ndjson").write_bytes(b"\n".join(map(orjson.dumps, practitioners)))
    (folder / "observations.ndjson").write_bytes(b"\n".join(map(orjson.dumps, observations)))
    deferred: list[int] = []
    retry = loading._Loader.retry_deferred

    async def counted(self) -> None:
        deferred.append(len(self.deferred))
        await retry(self)

    monkeypatch.setattr(loading._Loader, "retry_deferred", counted)
    tenant = await system.store.tenant("default")
    report = await load_paths(system.services, tenant, [folder], write_size=10_000)
    assert report.rejected == 0 and report.stored == 9
    assert deferred == [0]  # resolved as they came, none left for the end
    for i in range(6):
        stored = await system.store.read(tenant, "Observation", f"o{i}")
        assert orjson.loads(stored.body)["performer"] == [{"reference": f"Practitioner/pr{i % 3}"}]
