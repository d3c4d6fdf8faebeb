"""SQLite migration 6: a sort by a date or string parameter reads the value index (which carries
the rows' first/last flags) in order and stops at the page, with no sort of every row, and the
order is the spec's (a resource sorts by its lowest value ascending, its highest descending)."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from careweave.search.params import SearchContext, parse_search
from careweave.system import System

pytestmark = pytest.mark.anyio


def _ids(bundle: dict[str, Any]) -> list[str]:
    return [e["resource"]["id"] for e in bundle.get("entry", []) if e["search"]["mode"] == "match"]


async def _plan(system: System, query: list[tuple[str, str]], type_: str) -> list[str]:
    tenant = await system.store.tenant("default")
    assert tenant is not None
    ctx = SearchContext(system.definitions.search_params, system.services.resource_types, "", None)
    parsed = parse_search((type_,), query, ctx, count=2, max_count=1000)
    return await system.store.explain(tenant, parsed.plan)  # type: ignore[attr-defined,no-any-return]


def _walk(plan: list[str]) -> str:
    """The sorted scan's walk (phase 1's subquery ``w``): the rows of the page are read after it,
    and only they (``_count`` + 1) are sorted again."""
    start, end = plan.index("CO-ROUTINE w"), plan.index("SCAN w")
    assert "USE TEMP B-TREE FOR ORDER BY" in plan[end:]
    return "\n".join(plan[start:end])


async def test_a_date_sort_reads_the_date_index_in_order(
    system: System, client: httpx.AsyncClient, backend: str
) -> None:
    periods = [("2020-01-01", "2020-01-05"), ("2021-06-01", "2021-06-02"), ("2019-03-01", "2022-01-01"),
               ("2020-07-01", "2020-07-01")]  # fmt: skip
    for n, (low, high) in enumerate(periods):
        body = {"resourceType": "Encounter", "id": f"e{n}", "status": "finished",
                "class": {"code": "AMB"}, "period": {"start": low, "end": high}}  # fmt: skip
        assert (await client.put(f"/fhir/Encounter/e{n}", json=body)).status_code == 201
    descending = (await client.get("/fhir/Encounter?_sort=-date&_count=2")).json()
    ascending = (await client.get("/fhir/Encounter?_sort=date&_count=2")).json()
    assert _ids(descending) == ["e2", "e1"]  # by the period's end
    assert _ids(ascending) == ["e2", "e0"]  # by the period's start
    if backend != "sqlite":
        return  # the plans below are SQLite's
    walk = _walk(await _plan(system, [("_sort", "-date")], "Encounter"))
    assert "ix_date_hi (tid=? AND pid=?)" in walk
    assert "USE TEMP B-TREE FOR ORDER BY" not in walk  # (only ties on the row key are sorted)


async def test_a_string_sort_reads_the_string_index_in_order(
    system: System, client: httpx.AsyncClient, backend: str
) -> None:
    names = {"p0": ["Young", "Adams"], "p1": ["Baker"], "p2": ["Zane", "Carter"], "p3": ["Xu"]}
    for id_, families in names.items():
        body = {"resourceType": "Patient", "id": id_, "name": [{"family": f} for f in families]}
        assert (await client.put(f"/fhir/Patient/{id_}", json=body)).status_code == 201
    ascending = (await client.get("/fhir/Patient?_sort=family&_count=3")).json()
    descending = (await client.get("/fhir/Patient?_sort=-family&_count=3")).json()
    assert _ids(ascending) == ["p0", "p1", "p2"]  # Adams, Baker, Carter: each one's lowest name
    assert _ids(descending) == ["p2", "p0", "p3"]  # Zane, Young, Xu: each one's highest
    if backend != "sqlite":
        return
    walk = _walk(await _plan(system, [("_sort", "family")], "Patient"))
    assert "ix_string_v (tid=? AND pid=?)" in walk
    assert "USE TEMP B-TREE FOR ORDER BY" not in walk
