"""Group commit (gateway/commit.py): several messages' writes under one COMMIT, each answer only
after the commit that holds it; a failing write fails alone; per-patient order is kept."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from careweave.gateway import Gateway, Peer, send_messages
from careweave.gateway.commit import GroupCommit
from careweave.store.base import Tenant
from tests.gateway.conftest import corpus, msa, with_control_id
from tests.gateway.test_service import BROKEN, visit

pytestmark = pytest.mark.anyio

TENANT = Tenant(1, "default")
PEER = Peer("127.0.0.1", 1)


class FakeStore:
    """``sql_write_tenant`` as the store runs it: one writer, running one job at a time in the
    order handed over, every write of the job in one transaction, which is lost whole when one
    raises. ``gate`` holds the COMMIT until it is set."""

    def __init__(self) -> None:
        self.gate = asyncio.Event()
        self.gate.set()
        self.writer = asyncio.Lock()
        self.calls = 0  # writer jobs handed over
        self.committed: list[Any] = []

    async def sql_write_tenant(self, tenant: Tenant, fn: Callable[[Any, Any], Any]) -> Any:
        self.calls += 1
        async with self.writer:
            result = fn(None, None)  # raises: nothing is committed
            await self.gate.wait()
            self.committed.append(result)
            return result


class RetryingStore(FakeStore):
    """A store that runs each job twice (a transaction retried after a conflict), pausing between."""

    async def sql_write_tenant(self, tenant: Tenant, fn: Callable[[Any, Any], Any]) -> Any:
        fn(None, None)
        await asyncio.sleep(0.02)
        return await super().sql_write_tenant(tenant, fn)


def job(value: Any) -> Callable[[Any, Any], Any]:
    def run(conn: Any, tx: Any) -> Any:
        if isinstance(value, Exception):
            raise value
        return value

    return run


async def test_writes_handed_over_during_a_commit_share_the_next_one() -> None:
    store = FakeStore()
    group = GroupCommit(store, linger=0.0)  # type: ignore[arg-type]
    store.gate.clear()
    first = asyncio.create_task(group.write(TENANT, job("a")))
    await asyncio.sleep(0.01)
    rest = [asyncio.create_task(group.write(TENANT, job(v))) for v in "bcde"]
    await asyncio.sleep(0.01)
    assert not first.done() and not any(t.done() for t in rest)  # no answer before the commit
    assert store.committed == []
    store.gate.set()
    assert await first == "a" and [await t for t in rest] == list("bcde")
    assert store.committed == [["a"], ["b", "c", "d", "e"]]  # two COMMITs
    assert (group.groups, group.writes) == (2, 5)


async def test_the_next_group_waits_in_the_writer_and_takes_what_comes_until_it_starts() -> None:
    """While a group commits, the next one is already handed to the writer (no pause between
    them for this event loop), and every write handed over before the writer reaches it joins it."""
    store = FakeStore()
    group = GroupCommit(store, linger=0.0)  # type: ignore[arg-type]
    store.gate.clear()
    first = asyncio.create_task(group.write(TENANT, job("a")))
    await asyncio.sleep(0.01)
    second = asyncio.create_task(group.write(TENANT, job("b")))
    await asyncio.sleep(0.01)
    assert store.calls == 2  # handed over while the first group is still committing
    rest = [asyncio.create_task(group.write(TENANT, job(v))) for v in "cd"]
    await asyncio.sleep(0.01)
    assert store.calls == 2  # they join the group waiting in the writer
    store.gate.set()
    assert [await first, await second, *[await t for t in rest]] == list("abcd")
    assert store.committed == [["a"], ["b", "c", "d"]]
    assert (group.groups, group.writes) == (2, 4)


async def test_a_group_run_again_by_the_store_runs_the_writes_it_took() -> None:
    store = RetryingStore()
    group = GroupCommit(store, linger=0.0)  # type: ignore[arg-type]
    first = asyncio.create_task(group.write(TENANT, job(1)))
    await asyncio.sleep(0.01)  # taken by the first run; the store runs the group again after 0.02 s
    late = asyncio.create_task(group.write(TENANT, job(2)))
    assert await first == 1 and await late == 2
    assert store.committed == [[1], [2]]
    assert (group.groups, group.writes) == (2, 2)


async def test_a_failing_write_fails_alone() -> None:
    store = FakeStore()
    group = GroupCommit(store, linger=0.0)  # type: ignore[arg-type]
    store.gate.clear()
    blocker = asyncio.create_task(group.write(TENANT, job("first")))
    await asyncio.sleep(0.01)
    tasks = [asyncio.create_task(group.write(TENANT, job(v))) for v in ("ok-1", ValueError("bad"), "ok-2")]
    store.gate.set()
    assert await blocker == "first"
    results = await asyncio.gather(*tasks, return_exceptions=True)
    assert results[0] == "ok-1" and results[2] == "ok-2"
    assert isinstance(results[1], ValueError)
    # the group was lost whole, then each write ran alone: only the failing one is missing
    assert store.committed == [["first"], "ok-1", "ok-2"]


async def test_a_write_cancelled_before_its_group_started_is_not_run() -> None:
    store = FakeStore()
    group = GroupCommit(store, linger=0.0)  # type: ignore[arg-type]
    store.gate.clear()
    blocker = asyncio.create_task(group.write(TENANT, job(1)))
    await asyncio.sleep(0.01)
    gone = asyncio.create_task(group.write(TENANT, job(2)))
    kept = asyncio.create_task(group.write(TENANT, job(3)))
    await asyncio.sleep(0.01)
    gone.cancel()
    store.gate.set()
    assert await blocker == 1 and await kept == 3
    assert store.committed == [[1], [3]]


async def test_a_write_waits_for_messages_on_their_way_at_most_the_linger() -> None:
    store = FakeStore()
    group = GroupCommit(store, linger=0.05)  # type: ignore[arg-type]
    coming = [group.coming(), group.coming()]
    first = asyncio.create_task(group.write(TENANT, job(1)))
    await asyncio.sleep(0.01)
    assert store.calls == 0  # waits: two messages are on their way
    coming[0].done()
    second = asyncio.create_task(group.write(TENANT, job(2)))
    await asyncio.sleep(0.01)
    assert store.calls == 0
    coming[1].done()  # nothing else is coming: the group starts at once
    coming[1].done()  # done twice counts once
    assert [await first, await second] == [1, 2]
    assert store.committed == [[1, 2]]
    await asyncio.sleep(0.01)  # the group has ended
    late = group.coming()
    started = asyncio.get_running_loop().time()
    assert await group.write(TENANT, job(3)) == 3  # the linger ran out
    assert asyncio.get_running_loop().time() - started >= 0.04
    late.done()


async def test_a_lone_write_starts_at_once() -> None:
    store = FakeStore()
    group = GroupCommit(store, linger=10.0)  # type: ignore[arg-type]
    assert await asyncio.wait_for(group.write(TENANT, job("x")), 1) == "x"


class Gated:
    """The real store, with COMMITs of the gateway's groups held until ``gate`` is set (a crash
    at that point loses them: nothing reached the disk)."""

    def __init__(self, store: Any) -> None:
        self._store = store
        self.gate = asyncio.Event()
        self.groups: list[int] = []

    async def sql_write_tenant(self, tenant: Tenant, fn: Callable[[Any, Any], Any]) -> Any:
        await self.gate.wait()
        return await self._store.sql_write_tenant(tenant, fn)


async def _stored(gateway: Gateway) -> dict[str, str]:
    tenant = await gateway.services.store.tenant("default")
    assert tenant is not None
    return {r.control_id: r.status for r in await gateway.messages(tenant, limit=1000)}


async def test_no_ack_before_the_commit_over_mllp(mllp_port: int, gateway: Gateway) -> None:
    """Messages on several connections wait for their group's commit: while it is held no sender
    has an ACK and nothing is stored; once it commits every ACK comes, each for a stored row."""
    gated = Gated(gateway.services.store)
    gateway._group._store = gated  # type: ignore[assignment]
    messages = [with_control_id(visit(n, "A01", 500 + n), f"G-{n}") for n in range(8)]
    sends = [asyncio.create_task(send_messages("127.0.0.1", mllp_port, [m], timeout=10)) for m in messages]
    await asyncio.sleep(0.3)
    assert not any(s.done() for s in sends)  # no ACK: nothing committed yet
    assert await _stored(gateway) == {}
    gated.gate.set()
    acks = [a for s in sends for a in await s]
    assert sorted(msa(a) for a in acks) == sorted(("AA", f"G-{n}") for n in range(8))
    assert await _stored(gateway) == {f"G-{n}": "processed" for n in range(8)}
    assert gateway._group.writes == 8 and gateway._group.groups < 8  # they shared commits


async def test_order_per_patient_is_kept_when_messages_are_grouped(
    gateway: Gateway, client: httpx.AsyncClient
) -> None:
    """A01, A08, A03 of one patient arrive with other patients' messages while a commit is held:
    the others share groups, the patient's three messages are applied one group after another,
    in arrival order."""
    gated = Gated(gateway.services.store)
    gateway._group._store = gated  # type: ignore[assignment]
    first = asyncio.create_task(gateway.handle(visit(1, "A01", 900), PEER))
    await asyncio.sleep(0.05)
    messages = [visit(2, "A01", 7), visit(3, "A01", 901), visit(4, "A08", 7), visit(5, "A01", 902),
                visit(6, "A03", 7, "20240312120000"), visit(7, "A01", 903)]  # fmt: skip
    tasks = [asyncio.create_task(gateway.handle(m, PEER)) for m in messages]
    await asyncio.sleep(0.05)
    gated.gate.set()
    acks = [await first, *await asyncio.gather(*tasks)]
    assert {msa(a)[0] for a in acks} == {"AA"}
    assert gateway._group.groups < len(acks)
    [encounter] = (await client.get("/fhir/Encounter?identifier=V7")).json()["entry"]
    history = (await client.get(f"/fhir/Encounter/{encounter['resource']['id']}/_history")).json()
    versions = sorted(history["entry"], key=lambda e: int(e["resource"]["meta"]["versionId"]))
    assert [e["resource"]["status"] for e in versions][-1] == "finished"
    assert encounter["resource"]["status"] == "finished"


async def test_a_duplicate_in_the_same_group_gets_the_stored_answer(gateway: Gateway) -> None:
    """Two copies of one message (no patient: nothing orders them) committed in one group: one
    row, and the second copy is answered with the first one's ACK."""
    gated = Gated(gateway.services.store)
    gateway._group._store = gated  # type: ignore[assignment]
    blocker = asyncio.create_task(gateway.handle(with_control_id(corpus("adt_a04.hl7"), "B-1"), PEER))
    await asyncio.sleep(0.05)
    copies = [asyncio.create_task(gateway.handle(BROKEN, PEER)) for _ in range(2)]
    await asyncio.sleep(0.05)
    gated.gate.set()
    await blocker
    one, two = await asyncio.gather(*copies)
    assert one == two and msa(one) == ("AE", "BAD-1")
    assert await _stored(gateway) == {"B-1": "processed", "BAD-1": "error"}
