"""What the gateway writes (gateway/resources.py): a resource it wrote with the same content is
left alone while its stored version is still that one; anything else is written."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from careweave.gateway.resources import Item, Resources, store
from careweave.store import writes
from careweave.store.base import Tenant, Transaction
from careweave.store.sql.components import Sql
from careweave.system import System

pytestmark = pytest.mark.anyio

A = {"resourceType": "Organization", "id": "o1", "name": "A"}
B = {"resourceType": "Organization", "id": "o1", "name": "B"}


def _item(remake: Any, resource: dict[str, Any]) -> Item:
    """What Resources.prepared gives for a mapped resource."""
    prepared = remake(resource)
    content = orjson.dumps(resource, option=orjson.OPT_SORT_KEYS)
    return prepared, content, writes.serialise(prepared.resource, prepared.index)


async def _setup(system: System) -> tuple[Tenant, Resources, Any]:
    tenant = await system.services.tenants.get("default")
    assert tenant is not None
    resources = Resources(system.services)
    remake = await resources.remaker(tenant)

    async def run(*resources_: dict[str, Any]) -> list[int]:
        items = [_item(remake, r) for r in resources_]

        def job(_: Sql, tx: Transaction) -> Any:
            return store(tx, items, resources.stored, remake, resources.checked(tx))

        written = await system.store.sql_write_tenant(tenant, job)
        resources.remember(written)
        return [version for _, version, _ in written]

    return tenant, resources, run


async def test_what_the_gateway_wrote_is_left_alone_until_it_changes(system: System, client) -> None:
    tenant, _, run = await _setup(system)
    assert await run(A) == [1]
    assert await run(A) == []  # still version 1 with this content: left alone
    assert await run(B) == [2]
    # the same resource twice in one message: the second is checked against what the first wrote
    assert await run(A, B) == [3, 4]
    stored = await system.store.read(tenant, "Organization", "o1")
    assert stored is not None and orjson.loads(stored.body or b"")["name"] == "B"


async def test_a_change_or_deletion_through_the_api_is_written_over_again(system: System, client) -> None:
    _, _, run = await _setup(system)
    assert await run(A) == [1]
    assert (await client.put("/fhir/Organization/o1", json={**A, "name": "C"})).status_code == 200
    assert await run(A) == [3]
    assert (await client.delete("/fhir/Organization/o1")).status_code in (200, 204)
    assert await run(A) == [5]
    assert await run(A) == []


class _Counting:
    """A transaction that counts its lookups of current versions."""

    def __init__(self, tx: Transaction) -> None:
        self._tx = tx
        self.lookups = 0

    def current(self, type: str, id: str) -> Any:
        self.lookups += 1
        return self._tx.current(type, id)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._tx, name)


async def test_one_transaction_checks_a_shared_resource_once(system: System) -> None:
    """The messages of a commit group share one transaction: a resource the first checked (or
    wrote) with the same content is not looked up again by the next; other content is written."""
    tenant, resources, run = await _setup(system)
    assert await run(A) == [1]
    remake = await resources.remaker(tenant)
    a, b = _item(remake, A), _item(remake, B)

    def put(counting: _Counting, items: list[Item]) -> Any:
        return store(counting, items, resources.stored, remake, resources.checked(counting))  # type: ignore[arg-type]

    def group(_: Sql, tx: Transaction) -> Any:
        counting = _Counting(tx)
        first = put(counting, [a])
        after_first = counting.lookups
        second = put(counting, [a])
        third, fourth = put(counting, [b]), put(counting, [b])
        return first, after_first, second, counting.lookups - after_first, third, fourth

    first, after_first, second, more, third, fourth = await system.store.sql_write_tenant(tenant, group)
    assert (first, after_first) == ([], 1)  # checked once: version 1 is still ours
    assert (second, more) == ([], 1)  # not looked up again; the update to B looked it up once
    assert [v for _, v, _ in third] == [2] and fourth == []  # written once, then known in here

    def again(_: Sql, tx: Transaction) -> Any:  # another transaction checks for itself
        counting = _Counting(tx)
        put(counting, [b])
        return counting.lookups

    resources.remember(third)
    assert await system.store.sql_write_tenant(tenant, again) == 1
