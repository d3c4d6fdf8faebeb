"""Compiled search statements are cached by plan shape (``search.StatementCache``): a search that
differs from an earlier one only in its values runs the same statement texts with its own values
bound, and answers exactly as a search compiled for itself; a parameter that gains rows, a new
parameter generation and another tenant are never served another's statements."""

from __future__ import annotations

import sqlite3
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from careweave.search.params import SearchContext, parse_search
from careweave.search.plan import QueryPlan, StringMatch
from careweave.store.base import SearchPage
from careweave.store.sql.compile import Compiler
from careweave.store.sql.search import StatementCache, prepare_search, run_search
from tests.search.conftest import JSON, put

pytestmark = pytest.mark.anyio

NHS = "https://fhir.nhs.uk/Id/nhs-number"
LOINC = "http://loinc.org"

# pairs and runs of one shape with different values (each compiled once, then bound)
QUERIES = [
    ("Observation", "code=http://loinc.org|29463-7"),
    ("Observation", "code=http://loinc.org|8302-2"),
    ("Observation", "code=http://loinc.org|29463-7&date=ge2020-01-01&date=lt2030-01-01"),
    ("Observation", "code=http://loinc.org|8302-2&date=ge2016-01-01&date=lt2019-01-01"),
    ("Observation", "patient=Patient/p1&date=ge2020-01-01"),
    ("Observation", "patient=Patient/p2&date=ge2016-01-01"),
    ("Observation", "patient=Patient/p3&date=ap2020-06-01"),
    ("Observation", "patient=Patient/p4&date=ap2025-06-01"),
    ("Observation", "patient=Patient/p1&_include=Observation:subject"),
    ("Observation", "patient=Patient/p2&_include=Observation:subject"),
    ("Observation", "patient.identifier=https://fhir.nhs.uk/Id/nhs-number|900000002"),
    ("Observation", "patient.identifier=https://fhir.nhs.uk/Id/nhs-number|900000004"),
    ("Observation", "_sort=-date&_count=3"),
    ("Observation", "_sort=-date&_count=5"),
    ("Observation", "_sort=date&_count=2"),
    ("Observation", "_sort=-date&code=http://loinc.org|8302-2&_count=2"),
    ("Observation", "_sort=-date&code=http://loinc.org|29463-7&_count=4"),
    ("Observation", "code=http://loinc.org|29463-7&_total=accurate&_count=2"),
    ("Observation", "code=http://loinc.org|8302-2&_total=accurate&_count=3"),
    ("Observation", "code=http://loinc.org|29463-7&_summary=count"),
    ("Observation", "code=http://loinc.org|8302-2&_summary=count"),
    ("Observation", "code=29463-7,8302-2&status=final"),
    ("Observation", "code=8302-2,29463-7&status=amended"),
    ("Observation", "code:not=29463-7"),
    ("Observation", "code:not=8302-2"),
    ("Observation", "_lastUpdated=gt2000-01-01&code=8302-2"),
    ("Observation", "_lastUpdated=lt2000-01-01&code=8302-2"),
    ("Patient", "name=smi"),
    ("Patient", "name=jon"),
    ("Patient", "name:exact=Smith"),
    ("Patient", "name:exact=Jones"),
    ("Patient", "name:contains=mit"),
    ("Patient", "name:contains=row"),
    ("Patient", "name=smi&_revinclude=Observation:subject"),
    ("Patient", "name=bro&_revinclude=Observation:subject"),
    ("Patient", "_has:Observation:patient:code=29463-7"),
    ("Patient", "_has:Observation:patient:code=8302-2"),
    ("Patient", "_has:Observation:patient:code=29463-7&name=smi"),
    ("Patient", "_has:Observation:patient:code=8302-2&name=jon"),
    ("Patient", "family=smith,jones&_count=1"),
    ("Patient", "family=brown,smithers&_count=1"),
    ("Patient", "identifier=https://fhir.nhs.uk/Id/nhs-number|900000003&gender=female"),
    ("Patient", "identifier=https://fhir.nhs.uk/Id/nhs-number|900000002&gender=male"),
    ("Patient", "identifier=|900000002"),
    ("Patient", "_id=p1,p2,nobody"),
    ("Patient", "_id=p3,p4,p5"),
    ("Patient", "name:missing=true"),
    ("Patient", "_sort=family&_count=2"),
    ("Patient", "_sort=-family&_count=3"),
    ("Patient", "birthdate=lt1990&_sort=birthdate"),
    ("Patient", "birthdate=ge1990&_sort=birthdate"),
]


def _patient(i: int, family: str, gender: str) -> dict[str, Any]:
    return {
        "resourceType": "Patient",
        "id": f"p{i}",
        "gender": gender,
        "birthDate": f"{1970 + 7 * i}-01-0{i}",
        "name": [{"family": family, "given": [f"Given{i}"]}],
        "identifier": [{"system": NHS, "value": f"90000000{i}"}],
    }


def _observation(i: int, patient: int, code: str, year: int) -> dict[str, Any]:
    return {
        "resourceType": "Observation",
        "id": f"o{i}",
        "status": "final" if i % 4 else "amended",
        "code": {"coding": [{"system": LOINC, "code": code}]},
        "subject": {"reference": f"Patient/p{patient}"},
        "effectiveDateTime": f"{year}-06-0{1 + i % 9}",
    }


@pytest.fixture(autouse=True)
def _sqlite_only(backend: str) -> None:
    if backend != "sqlite":
        pytest.skip("the statements are compared on SQLite")


@pytest.fixture
async def data(client) -> None:
    for i, family in enumerate(["Smith", "Jones", "Smithers", "Brown", "Smith"], start=1):
        await put(client, _patient(i, family, "female" if i % 2 else "male"))
    for i in range(1, 16):
        await put(client, _observation(i, 1 + i % 5, "29463-7" if i % 3 else "8302-2", 2015 + i))


def _parse(system, type_: str, query: str) -> QueryPlan:
    ctx = SearchContext(system.definitions.search_params, system.services.resource_types, "", None)
    items = [tuple(p.split("=", 1)) for p in query.split("&")]
    return parse_search((type_,), items, ctx, count=20, max_count=1000).plan


def _connect(system) -> sqlite3.Connection:
    return sqlite3.connect(Path(system.settings.data_dir) / "careweave.db", isolation_level=None)


def _pid_of(conn: sqlite3.Connection):
    def pid_of(key: str) -> int | None:
        row = conn.execute("SELECT pid FROM param WHERE key = ?", (key,)).fetchone()
        return None if row is None else int(row[0])

    return pid_of


def _page(conn, tid: int, plan: QueryPlan, cache: StatementCache | None, generation: int = 0) -> SearchPage:
    conn.execute("BEGIN")
    try:
        return run_search(conn, tid, _pid_of(conn), plan, cache=cache, generation=generation)
    finally:
        conn.execute("COMMIT")


def _same(a: SearchPage, b: SearchPage, query: str) -> None:
    def listed(page: SearchPage) -> list[tuple[str, str, int]]:
        return [(r.type, r.id, r.version) for r in page.matches]

    assert listed(a) == listed(b), query
    assert sorted((r.type, r.id) for r in a.includes) == sorted((r.type, r.id) for r in b.includes), query
    assert (a.total, a.next_after, a.prev_before) == (b.total, b.next_after, b.prev_before), query


async def test_cached_statements_answer_as_compiled_ones(system, data) -> None:
    tenant = await system.store.tenant("default")
    cache = StatementCache()
    conn = _connect(system)
    try:
        found = 0
        for type_, query in QUERIES:
            plan = _parse(system, type_, query)
            page = _page(conn, tenant.key, plan, cache)
            _same(page, _page(conn, tenant.key, plan, None), query)
            found += bool(page.matches or page.total)
            for cursor in (page.next_after,):  # the next page, then back, from a cursor's values
                if cursor is not None:
                    after = replace(plan, after=cursor)
                    nxt = _page(conn, tenant.key, after, cache)
                    _same(nxt, _page(conn, tenant.key, after, None), query + " (next)")
                    if nxt.prev_before is not None:
                        before = replace(plan, before=nxt.prev_before)
                        _same(
                            _page(conn, tenant.key, before, cache),
                            _page(conn, tenant.key, before, None),
                            query + " (previous)",
                        )
        assert found >= len(QUERIES) - 6  # most find something: the comparison means something
        assert len(cache) < len(QUERIES)  # shapes were shared
    finally:
        conn.close()


def _texts(conn, tid: int, plan: QueryPlan, cache: StatementCache) -> list[tuple[str, list[Any]]]:
    prepared = prepare_search(conn, Compiler(tid, _pid_of(conn)), plan, cache=cache)
    out = [(s.sql, s.params) for s in prepared.page]
    if prepared.count is not None:
        out.append(prepared.count)
    return out


@pytest.mark.parametrize(
    ("type_", "first", "second", "values"),
    [
        ("Patient", "name=smi", "name=jon", ["smi", "jon"]),
        ("Patient", "name:exact=Smith", "name:exact=Jones", ["Smith", "Jones"]),
        ("Observation", "patient=Patient/p1&date=ge2020-01-01", "patient=Patient/p2&date=ge2016-01-01",
         ["p1", "p2", "2020", "2016"]),
        ("Observation", "code=http://loinc.org|29463-7&_summary=count", "code=http://loinc.org|8302-2&_summary=count",
         ["29463-7", "8302-2", "loinc"]),
        ("Observation", "patient.identifier=https://fhir.nhs.uk/Id/nhs-number|900000002",
         "patient.identifier=https://fhir.nhs.uk/Id/nhs-number|900000004",
         ["nhs-number", "900000002", "900000004"]),
        ("Patient", "_has:Observation:patient:code=29463-7&name=smi",
         "_has:Observation:patient:code=8302-2&name=jon", ["29463-7", "8302-2", "smi", "jon"]),
        ("Patient", "_id=p1,p2", "_id=p3,p4", ["p1", "p2", "p3", "p4"]),
    ],
)
async def test_values_are_bound_never_written(system, data, type_, first, second, values) -> None:
    tenant = await system.store.tenant("default")
    conn = _connect(system)
    try:
        cache = StatementCache()
        a = _texts(conn, tenant.key, _parse(system, type_, first), cache)
        b = _texts(conn, tenant.key, _parse(system, type_, second), cache)
        assert [sql for sql, _ in a] == [sql for sql, _ in b]  # one text per shape
        assert [p for _, p in a] != [p for _, p in b]  # each with its own values
        for sql, _ in a + b:
            for value in values:
                assert value not in sql
        # and the same texts as compiled afresh for the second plan
        fresh = _texts(conn, tenant.key, _parse(system, type_, second), StatementCache())
        assert fresh == b
    finally:
        conn.close()


async def test_tenants_never_share_statements(system, client, data) -> None:
    await system.store.create_tenant("other")
    r = await client.put("/t/other/fhir/Patient/p9", json=_patient(9, "Smith", "male"), headers=JSON)
    assert r.status_code == 201
    default, other = await system.store.tenant("default"), await system.store.tenant("other")
    cache = StatementCache()
    conn = _connect(system)
    try:
        plan = _parse(system, "Patient", "name=smi")
        assert sorted(r.id for r in _page(conn, default.key, plan, cache).matches) == ["p1", "p3", "p5"]
        assert [r.id for r in _page(conn, other.key, plan, cache).matches] == ["p9"]
        assert sorted(r.id for r in _page(conn, default.key, plan, cache).matches) == ["p1", "p3", "p5"]
        assert len(cache) == 2  # one shape per tenant
        # the tenant is bound in every statement of each
        for tid in (default.key, other.key):
            for _, params in _texts(conn, tid, plan, cache):
                assert tid in params
    finally:
        conn.close()


BIRTH_PLACE = {
    "resourceType": "SearchParameter", "id": "birthplace", "status": "active",
    "url": "http://example.org/fhir/SearchParameter/patient-birthplace",
    "name": "birthplace", "description": "The town of birth", "code": "birthplace",
    "base": ["Patient"], "type": "string",
    "expression": "Patient.extension('http://hl7.org/fhir/StructureDefinition/patient-birthPlace').value.city",
}


def _born(pid: str, town: str) -> dict[str, Any]:
    return {"resourceType": "Patient", "id": pid, "extension": [{
        "url": "http://hl7.org/fhir/StructureDefinition/patient-birthPlace", "valueAddress": {"city": town}}]}


async def test_new_parameter_and_reindex_are_never_served_stale(system, client) -> None:
    import asyncio

    await put(client, _born("leeds-born", "Leeds"))
    tenant = await system.store.tenant("default")
    plan = QueryPlan(("Patient",), StringMatch("Patient.birthplace", "leeds", "starts"))
    cache = StatementCache()
    conn = _connect(system)
    try:
        # no such parameter yet: nothing matches, and that shape is cached
        assert _page(conn, tenant.key, plan, cache, tenant.params_generation).matches == []
        assert len(cache) == 1
        stop = asyncio.Event()
        task = asyncio.create_task(system.jobs.run(stop))
        try:
            r = await client.post("/fhir/SearchParameter", json=BIRTH_PLACE, headers=JSON)
            assert r.status_code == 201, r.text
            for _ in range(200):
                status = (await client.get("/fhir/$reindex")).json()
                states = [p["valueCode"] for job in status.get("parameter", ()) for p in job["part"]
                          if p["name"] == "state"]
                if states and all(s == "done" for s in states):
                    break
                await asyncio.sleep(0.05)
        finally:
            stop.set()
            system.jobs.wake()
            await task
        changed = await system.store.tenant("default")
        assert changed.params_generation != tenant.params_generation
        # under the new generation: compiled again
        page = _page(conn, tenant.key, plan, cache, changed.params_generation)
        assert [r.id for r in page.matches] == ["leeds-born"]
        # and even under the old one: the shape compiled while the key had no rows is recompiled
        page = _page(conn, tenant.key, plan, cache, tenant.params_generation)
        assert [r.id for r in page.matches] == ["leeds-born"]
        other = replace(plan, where=StringMatch("Patient.birthplace", "york", "starts"))
        assert _page(conn, tenant.key, other, cache, changed.params_generation).matches == []
    finally:
        conn.close()


async def test_least_recently_used_shapes_are_dropped(system, data) -> None:
    tenant = await system.store.tenant("default")
    cache = StatementCache(size=2)
    conn = _connect(system)
    try:
        for type_, query in [("Patient", "name=smi"), ("Patient", "gender=male"), ("Patient", "name=jon"),
                             ("Patient", "_id=p1")]:
            _page(conn, tenant.key, _parse(system, type_, query), cache)
        assert len(cache) == 2
    finally:
        conn.close()


async def test_inline_searches_from_the_cache_answer_as_compiled_ones(system, data) -> None:
    """On the calling thread (one condition: its probe and page in one statement), with the
    cache, beside the reader pool's fully planned, uncached search."""
    from careweave.store.sql.search import search_inline

    tenant = await system.store.tenant("default")
    cache = StatementCache()
    conn = _connect(system)
    try:
        inline = 0
        for _ in range(2):  # compiled, then from the cache
            for type_, query in QUERIES:
                plan = _parse(system, type_, query)
                page, _prepared = search_inline(conn, tenant.key, _pid_of(conn), plan, 10.0, cache=cache)
                assert not conn.in_transaction
                if page is not None:
                    inline += 1
                    _same(page, _page(conn, tenant.key, plan, None), query)
        assert inline >= len(QUERIES)  # most ran inline
    finally:
        conn.close()


def _reference_shape(value: Any, values: list[Any]) -> Any:
    """plan_shape's rule, written plainly (compile.py unrolls it per plan class)."""
    from dataclasses import fields

    from careweave.store.sql.compile import _STRUCTURAL

    if isinstance(value, str) and not isinstance(value, bool):
        if value:
            values.append(value)
            return "?"
        return value
    if type(value) in (int, float):
        values.append(value)
        return "?"
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, tuple):
        return tuple(_reference_shape(v, values) for v in value)
    shapes = [
        getattr(value, f.name) if f.name in _STRUCTURAL else _reference_shape(getattr(value, f.name), values)
        for f in fields(value)
    ]
    return (type(value), *shapes)


async def test_unrolled_shapes_follow_the_rule(system) -> None:
    from careweave.store.sql.compile import plan_shape
    from careweave.store.sql.query import MARKERS

    for type_, query in [*QUERIES, ("Patient", "_has:Observation:patient:code=29463-7&name=smi"),
                         ("Observation", "subject:Patient.name=smi&value-quantity=gt5|http://unitsofmeasure.org|mg"),
                         ("Observation", "code-value-quantity=http://loinc.org|8302-2$lt100&_text=x&_list=l1"),
                         ("Observation", "status:missing=true&_id=o1,o2&_lastUpdated=ge2020")]:  # fmt: skip
        plan = _parse(system, type_, query)
        key, values = plan_shape(plan, 7, MARKERS)
        expected: list[Any] = [7, plan.count]
        assert key[1] == _reference_shape(plan.where, expected), query
        assert values[: len(expected)] == expected, query
