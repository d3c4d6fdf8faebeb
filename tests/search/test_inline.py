"""Bounded searches run on the calling thread (SQLite, ``search_inline``): they answer exactly as
the reader pool's fully planned search does, fall back to it when over budget or when a quick
plan is not settled, and leave the connection clean (no open transaction, no progress handler)."""

from __future__ import annotations

import sqlite3
from functools import partial
from pathlib import Path
from typing import Any

import pytest

from careweave.search.params import SearchContext, parse_search
from careweave.store.base import SearchPage
from careweave.store.sql import search as sql_search
from careweave.store.sql import sqlite as sqlite_backend
from careweave.store.sql.compile import Compiler, PidOf
from careweave.store.sql.search import prepare_search, run_search, search_inline
from tests.search.conftest import JSON, put

pytestmark = pytest.mark.anyio

NHS = "https://fhir.nhs.uk/Id/nhs-number"
LOINC = "http://loinc.org"

QUERIES = [
    ("Observation", "code=http://loinc.org|29463-7"),
    ("Observation", "code=http://loinc.org|29463-7&date=ge2020-01-01&date=lt2030-01-01"),
    ("Observation", "patient=Patient/p1&date=ge2020-01-01"),
    ("Observation", "patient=Patient/p1&_include=Observation:subject"),
    ("Observation", "patient.identifier=https://fhir.nhs.uk/Id/nhs-number|900000002"),
    ("Observation", "_sort=-date&_count=3"),
    ("Observation", "_sort=date&_count=2"),
    ("Observation", "_sort=-date&code=http://loinc.org|8302-2&_count=2"),
    ("Observation", "code=http://loinc.org|29463-7&_total=accurate&_count=2"),
    ("Observation", "code=http://loinc.org|29463-7&_summary=count"),
    ("Patient", "name=smi"),
    ("Patient", "name=smi&_revinclude=Observation:subject"),
    ("Patient", "_has:Observation:patient:code=29463-7"),
    ("Patient", "family=smith,jones&_count=1"),
    ("Patient", "identifier=https://fhir.nhs.uk/Id/nhs-number|900000003&gender=female"),
    ("Patient", "_id=p1,p2,nobody"),
    ("Patient", "name:missing=true"),
]


def _patient(i: int, family: str, gender: str) -> dict[str, Any]:
    return {
        "resourceType": "Patient",
        "id": f"p{i}",
        "gender": gender,
        "name": [{"family": family, "given": [f"Given{i}"]}],
        "identifier": [{"system": NHS, "value": f"90000000{i}"}],
    }


def _observation(i: int, patient: int, code: str, year: int) -> dict[str, Any]:
    return {
        "resourceType": "Observation",
        "id": f"o{i}",
        "status": "final",
        "code": {"coding": [{"system": LOINC, "code": code}]},
        "subject": {"reference": f"Patient/p{patient}"},
        "effectiveDateTime": f"{year}-06-0{1 + i % 9}",
    }


@pytest.fixture(autouse=True)
def _sqlite_only(backend: str) -> None:
    if backend != "sqlite":
        pytest.skip("searches run inline on SQLite only")


@pytest.fixture
async def data(client) -> None:
    families = ["Smith", "Jones", "Smithers", "Brown", "Smith"]
    for i, family in enumerate(families, start=1):
        await put(client, _patient(i, family, "female" if i % 2 else "male"))
    for i in range(1, 16):
        code = "29463-7" if i % 3 else "8302-2"
        await put(client, _observation(i, 1 + i % 5, code, 2015 + i))


def _parse(system, type_: str, query: str, cursor: tuple[Any, ...] | None = None):
    ctx = SearchContext(system.definitions.search_params, system.services.resource_types, "", None)
    items = [tuple(p.split("=", 1)) for p in query.split("&")]
    plan = parse_search((type_,), items, ctx, count=20, max_count=1000).plan
    if cursor is not None:
        from dataclasses import replace

        plan = replace(plan, after=cursor)
    return plan


def _reference(db: Path, tid: int, plan) -> SearchPage:
    """The search as the reader pool runs it: fully planned, in a read transaction, on its own
    connection."""
    conn = sqlite3.connect(db, isolation_level=None)
    try:
        conn.execute("BEGIN")

        def pid_of(key: str) -> int | None:
            row = conn.execute("SELECT pid FROM param WHERE key = ?", (key,)).fetchone()
            return None if row is None else int(row[0])

        page = run_search(conn, tid, pid_of, plan)
        conn.execute("COMMIT")
        return page
    finally:
        conn.close()


def _same(a: SearchPage, b: SearchPage) -> None:
    assert [(r.type, r.id, r.version, r.body) for r in a.matches] == [
        (r.type, r.id, r.version, r.body) for r in b.matches
    ]
    assert sorted((r.type, r.id, r.body) for r in a.includes) == sorted(
        (r.type, r.id, r.body) for r in b.includes
    )
    assert (a.total, a.next_after, a.prev_before) == (b.total, b.next_after, b.prev_before)


def _db(system) -> Path:
    return system.settings.data_dir / "careweave.db"


async def _check_all(system, tenant_name: str = "default") -> list[str]:
    """Every query of QUERIES (and its next page) through the store, beside the reference;
    returns the queries that found nothing."""
    tenant = await system.store.tenant(tenant_name)
    empty = []
    for type_, query in QUERIES:
        plan = _parse(system, type_, query)
        page = await system.store.search(tenant, plan)
        _same(page, _reference(_db(system), tenant.key, plan))
        if not page.matches and not page.total:
            empty.append(query)
        if page.next_after is not None:  # the next page too
            after = _parse(system, type_, query, page.next_after)
            _same(await system.store.search(tenant, after), _reference(_db(system), tenant.key, after))
    return empty


async def test_inline_answers_as_the_pool_does(system, data) -> None:
    assert await _check_all(system) == ["name:missing=true"]  # the others find something


async def test_bounded_searches_do_run_inline(system, data) -> None:
    tid, conn, pid_of = await _here(system)
    for type_, query in [
        ("Observation", "patient=Patient/p1&date=ge2020-01-01"),
        ("Patient", "name=smi"),
        ("Observation", "_sort=-date&_count=3"),
        ("Observation", "patient=Patient/p1&_include=Observation:subject"),
    ]:
        plan = _parse(system, type_, query)
        page, prepared = search_inline(conn, tid, pid_of, plan, 10.0)
        assert page is not None and prepared is not None and prepared.bounded, query
        _same(page, _reference(_db(system), tid, plan))
    # a total visits every match: never inline
    plan = _parse(system, "Observation", "code=http://loinc.org|29463-7&_total=accurate")
    assert search_inline(conn, tid, pid_of, plan, 10.0) == (None, None)


async def test_over_budget_falls_back_and_leaves_the_connection_clean(system, data, monkeypatch) -> None:
    monkeypatch.setattr(sql_search, "_PROGRESS_STEPS", 1)
    tid, conn, pid_of = await _here(system)
    plan = _parse(system, "Patient", "name=smi&_revinclude=Observation:subject")
    assert search_inline(conn, tid, pid_of, plan, 0.0) == (None, None)
    assert not conn.in_transaction
    # the progress handler is gone: a long statement on this connection is not interrupted
    assert (
        conn.execute(
            "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n "
            "WHERE i < 20000) SELECT count(*) FROM n"
        ).fetchone()[0]
        == 20000
    )

    # every search through the store then takes the pool, and answers the same
    original = sqlite_backend.search_inline
    monkeypatch.setattr(
        sqlite_backend,
        "search_inline",
        lambda conn, tid, pid_of, plan, **kw: original(conn, tid, pid_of, plan, 0.0, **kw),
    )
    await _check_all(system)


async def test_unsettled_quick_plan_is_planned_again(system, data, monkeypatch) -> None:
    # probes capped at 2 rows cannot settle a choice between larger conditions
    monkeypatch.setattr(sql_search, "INLINE_CANDIDATES", 1)
    tid, conn, pid_of = await _here(system)
    plan = _parse(system, "Observation", "code=http://loinc.org|29463-7")
    page, prepared = search_inline(conn, tid, pid_of, plan, 10.0)
    assert page is None and prepared is None
    await _check_all(system)


async def test_prepared_plan_runs_on_another_connection(system, data) -> None:
    tid, conn, pid_of = await _here(system)
    for type_, query in QUERIES:
        plan = _parse(system, type_, query)
        prepared = prepare_search(conn, Compiler(tid, pid_of), plan)
        other = sqlite3.connect(_db(system), isolation_level=None)
        try:
            other.execute("BEGIN")
            lookup = partial(system.store._params.lookup, other)
            page = run_search(other, tid, lookup, plan, prepared=prepared)
            other.execute("COMMIT")
        finally:
            other.close()
        _same(page, _reference(_db(system), tid, plan))


async def test_inline_sees_updates_and_keeps_tenants_apart(system, client, data) -> None:
    ids = await _ids(system, "default", "Patient", "name=smi")
    assert ids == ["p1", "p3", "p5"]
    await put(client, _patient(1, "Taylor", "female"))  # no longer a Smith
    assert await _ids(system, "default", "Patient", "name=smi") == ["p3", "p5"]
    await client.delete("/fhir/Patient/p3")
    assert await _ids(system, "default", "Patient", "name=smi") == ["p5"]
    await system.store.create_tenant("other")
    r = await client.put("/t/other/fhir/Patient/p9", json=_patient(9, "Smith", "male"), headers=JSON)
    assert r.status_code == 201
    assert await _ids(system, "other", "Patient", "name=smi") == ["p9"]
    assert await _ids(system, "default", "Patient", "name=smi") == ["p5"]
    await _check_all(system)
    await _check_all(system, "other")


async def _ids(system, tenant_name: str, type_: str, query: str) -> list[str]:
    tenant = await system.store.tenant(tenant_name)
    page = await system.store.search(tenant, _parse(system, type_, query))
    return sorted(r.id for r in page.matches)


async def _here(system: Any) -> tuple[int, sqlite3.Connection, PidOf]:
    """The default tenant's key, this thread's reader connection and its parameter lookup."""
    tenant = await system.store.tenant("default")
    conn = system.store._reader()
    return tenant.key, conn, partial(system.store._params.lookup, conn)
