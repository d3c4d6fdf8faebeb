"""careweave load with worker processes: the same stored bodies as one process, byte for byte the
bodies an update of the parsed resource stores; resources serialised ahead of their write
(store.writes rule 6); conditional references resolved in the parent."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest

from careweave.fhir.model import format_instant
from careweave.generate import DEMO, generate
from careweave.interactions.loading import load_paths
from careweave.loadworkers import PoolPreparer, WorkerConfig
from careweave.search.index import IndexRows
from careweave.store import writes
from careweave.store.base import HistoryQuery, Tenant
from careweave.system import System
from tests.interactions.test_loading import _synthea_like

pytestmark = pytest.mark.anyio

# edge cases for serialisation: meta with and without other elements (and a stale stamp), escapes,
# non-ASCII text, numbers as written, an invalid id (one is assigned), a "?" that is no reference
EDGES = [
    {"resourceType": "Patient", "id": "e1", "meta": {"profile": ["http://x/p"], "versionId": "9",
                                                    "lastUpdated": "2020-01-01T00:00:00Z"},
     "name": [{"text": "Zoë \"Q\" \\ O'Neil?", "family": "日本"}], "multipleBirthInteger": 3},
    {"resourceType": "Patient", "id": "e2", "meta": {"source": "#a"}, "active": True},
    {"resourceType": "Observation", "id": "e3", "status": "final", "code": {"text": "x?y"},
     "valueQuantity": {"value": 1.50, "unit": "mg"}, "subject": {"reference": "Patient/e1"}},
    {"resourceType": "Observation", "id": "not valid!", "status": "final", "code": {"text": "z"},
     "valueQuantity": {"value": 1e-7}},
]


@pytest.fixture(scope="module")
def pool() -> Iterator[PoolPreparer]:
    preparer = PoolPreparer(1, WorkerConfig({}, []))
    try:
        yield preparer
    finally:
        preparer.close()


@pytest.fixture(scope="module")
def sources(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("sources")
    generate(DEMO, out / "demo")
    edges = out / "edges"
    edges.mkdir()
    (edges / "edges.ndjson").write_bytes(b"\n".join(orjson.dumps(r) for r in EDGES) + b"\n\n")
    # the line as another tool may write it: spaces, an escaped "/", keys in another order
    (edges / "spaced.ndjson").write_bytes(
        b'{ "id" : "s1", "resourceType" : "Patient", "gender": "female", '
        b'"name": [ { "text": "a\\/b \\u00e9" } ] }\n')
    _synthea_like(out)
    return out


async def _bodies(system: System, tenant: Tenant) -> dict[tuple[str, str], tuple[bytes, int]]:
    page = await system.store.history(tenant, HistoryQuery(count=10_000))
    assert len(page.entries) < 10_000
    return {(e.type, e.id): (e.body, e.updated_ms) for e in page.entries if e.body is not None}


async def test_worker_and_one_process_loads_store_the_same_bodies(system, sources, pool, tmp_path) -> None:
    paths = [sources / "demo" / "ndjson", sources / "edges", sources / "synthea"]
    alone = await system.store.tenant("default")
    workers = await system.store.create_tenant("workers")
    first = await load_paths(system.services, alone, paths, report_path=tmp_path / "a.ndjson")
    second = await load_paths(system.services, workers, paths, report_path=tmp_path / "w.ndjson",
                              preparer=pool)
    assert first.rejected == second.rejected == 0
    assert first.stored == second.stored == first.read == second.read
    assert first.by_type == second.by_type
    a, w = await _bodies(system, alone), await _bodies(system, workers)
    assert len(a) == len(w) == first.stored
    assigned = a.keys() - w.keys()  # the invalid id: a new one in each load
    assert [t for t, _ in assigned] == [t for t, _ in w.keys() - a.keys()] == ["Observation"]
    for key, (body, updated_ms) in a.items():
        if key in assigned:
            continue
        # the same body but for the instant it was stored at
        other, other_ms = w[key]
        stamp = format_instant(updated_ms).encode()
        assert body.replace(stamp, format_instant(other_ms).encode(), 1) == other
    # loading again, either way, changes nothing but adds the resource without a valid id again
    again = await load_paths(system.services, alone, paths, preparer=pool)
    assert again.stored == 1 and again.unchanged == first.read - 1
    again = await load_paths(system.services, workers, paths)
    assert again.stored == 1 and again.unchanged == first.read - 1


async def test_bodies_are_those_an_update_of_the_parsed_line_stores(system, sources, pool) -> None:
    # what the loader stored before resources were serialised in the workers: the writer stamped
    # the loader's parse of each line (store.writes.update)
    tenant = await system.store.tenant("default")
    report = await load_paths(system.services, tenant, [sources / "edges"], preparer=pool)
    assert report.stored == 5 and report.rejected == 0
    stored = await _bodies(system, tenant)
    lines = [orjson.loads(line) for p in sorted((sources / "edges").iterdir())
             for line in p.read_bytes().splitlines() if line.strip()]
    for resource in lines:
        if resource["id"] == "not valid!":
            (key,) = stored.keys() - {("Patient", "e1"), ("Patient", "e2"), ("Observation", "e3"),
                                      ("Patient", "s1")}
            resource = {**resource, "id": key[1]}
        body, updated_ms = stored[(resource["resourceType"], resource["id"])]
        assert body == writes._stamp(resource, 1, updated_ms)


async def test_conditional_references_resolve_through_the_workers(system, sources, pool, tmp_path) -> None:
    tenant = await system.store.tenant("default")
    report = await load_paths(system.services, tenant, [sources / "synthea"], preparer=pool,
                              report_path=tmp_path / "r.ndjson")
    assert report.rejected == 0 and report.stored == 3 and report.read == 3
    encounter = await system.store.read(tenant, "Encounter", "7d1c1b6d-0000-4000-8000-000000000002")
    body = orjson.loads(encounter.body)
    assert body["participant"][0]["individual"]["reference"] == (
        "Practitioner/0000016d-3a85-4cca-0000-000000000001")
    assert not (tmp_path / "r.ndjson").exists()


async def test_unresolvable_and_invalid_through_the_workers(system, pool, tmp_path) -> None:
    tenant = await system.store.tenant("default")
    lines = [
        b'{"resourceType":"Patient","id":"ok1"}',
        b'{"resourceType":"Patient","id":"bad","gender":"robot"}',
        b'{"resourceType":"Nonsense","id":"x"}',
        b'{"resourceType":"Observation","id":"o1","status":"final","code":{"text":"x"},'
        b'"subject":{"reference":"Patient\\u003fidentifier=none|none"}}',
        b"[1]",
        b"{broken",
    ]
    path = tmp_path / "mixed.ndjson"
    path.write_bytes(b"\n".join(lines) + b"\n")
    report = await load_paths(system.services, tenant, [path], report_path=tmp_path / "r.ndjson",
                              preparer=pool)
    assert report.stored == 1 and report.rejected == 5
    reasons = [orjson.loads(line) for line in (tmp_path / "r.ndjson").read_bytes().splitlines()]
    by_source = {r["source"].rsplit(":", 1)[1]: r for r in reasons}
    assert "robot" in by_source["2"]["reason"] and by_source["2"]["id"] == "bad"
    assert by_source["3"] == {"source": f"{path}:3", "reason": "unknown resourceType 'Nonsense'",
                              "resourceType": "Nonsense", "id": "x"}
    assert "conditional reference Patient?identifier=none|none" in by_source["4"]["reason"]
    assert by_source["4"]["resourceType"] == "Observation" and by_source["4"]["id"] == "o1"
    assert by_source["5"]["reason"] == "not a JSON object" and "resourceType" not in by_source["5"]
    assert by_source["6"]["reason"].startswith("not JSON")


def test_serialised_body_is_the_stamped_body() -> None:
    for resource in [*EDGES[:3], {"resourceType": "Patient", "id": "m", "meta": "not an object"},
                     {"id": "k", "text": {"div": "<div/>"}, "resourceType": "Practitioner"}]:
        item = writes.serialise(resource, IndexRows())
        for version, ms in ((1, 0), (12, 1_764_000_000_123)):
            instant = format_instant(ms).encode()
            assert writes._joined(item, version, instant) == writes._stamp(resource, version, ms)


async def test_update_serialised_stores_only_changed_content(system) -> None:
    tenant = await system.store.tenant("default")
    patient = {"resourceType": "Patient", "id": "p", "meta": {"tag": [{"code": "t"}]}, "active": True}

    def put(resource):
        item = writes.serialise(resource, IndexRows())
        return lambda tx: writes.update_serialised(tx, [item])

    assert await system.store.write(tenant, put(patient)) == 1
    assert await system.store.write(tenant, put(patient)) == 0  # the same bytes
    # the same content, written in another key order by an API update: compared as content
    reordered = {"active": True, "id": "p", "resourceType": "Patient", "meta": {"tag": [{"code": "t"}]}}
    prepared = writes.Prepared("Patient", reordered, IndexRows())
    outcome = await system.store.write(tenant, lambda tx: writes.update(tx, prepared, "p"))
    assert not outcome.changed
    stale = {**patient, "meta": {"tag": [{"code": "t"}], "versionId": "7"}}  # the stamp is not content
    assert await system.store.write(tenant, put(stale)) == 0
    assert await system.store.write(tenant, put({**patient, "active": False})) == 1
    current = await system.store.read(tenant, "Patient", "p")
    assert current.version == 2
    assert orjson.loads(current.body)["meta"] == {"versionId": "2", "lastUpdated": format_instant(
        current.updated_ms), "tag": [{"code": "t"}]}
    await system.store.write(tenant, lambda tx: writes.delete(tx, "Patient", "p"))
    assert await system.store.write(tenant, put(patient)) == 1  # after a deletion: stored again
    assert (await system.store.read(tenant, "Patient", "p")).version == 4


async def test_report_file_is_created_only_at_the_first_rejection(system, tmp_path) -> None:
    tenant = await system.store.tenant("default")
    good = tmp_path / "good.ndjson"
    good.write_bytes(b'{"resourceType":"Patient","id":"g"}\n')
    report = await load_paths(system.services, tenant, [good], report_path=tmp_path / "r.ndjson")
    assert report.stored == 1 and report.rejected == 0
    assert not (tmp_path / "r.ndjson").exists()
    bad = tmp_path / "bad.ndjson"
    bad.write_bytes(b'{"resourceType":"Patient","id":"g"}\n{"resourceType":"Patient","gender":"x"}\n')
    report = await load_paths(system.services, tenant, [bad], report_path=tmp_path / "r.ndjson")
    assert report.rejected == 1 and report.unchanged == 1
    (line,) = (tmp_path / "r.ndjson").read_bytes().splitlines()
    assert orjson.loads(line)["source"] == f"{bad}:2"
