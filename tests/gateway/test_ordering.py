"""KeyedLocks: first come, first served per key; no wait between messages sharing no key."""

from __future__ import annotations

import asyncio

import pytest

from careweave.gateway.ordering import KeyedLocks, Turnstile

pytestmark = pytest.mark.anyio


async def test_one_key_is_served_in_arrival_order() -> None:
    locks = KeyedLocks()
    done: list[int] = []

    async def work(n: int, keys: list[str]) -> None:
        async with locks.hold(keys):
            await asyncio.sleep(0)  # let the others try to overtake
            done.append(n)

    await asyncio.gather(*(work(n, ["Patient/a"]) for n in range(20)))
    assert done == list(range(20))
    assert len(locks) == 0  # forgotten once nobody holds or waits


async def test_a_message_with_two_keys_keeps_its_place_in_both() -> None:
    """M1 holds A; M2 needs A and B; M3 needs B only and arrived after M2: M3 waits for M2."""
    locks = KeyedLocks()
    order: list[str] = []
    release = asyncio.Event()

    async def m1() -> None:
        async with locks.hold(["A"]):
            order.append("m1")
            await release.wait()

    async def m(name: str, keys: list[str]) -> None:
        async with locks.hold(keys):
            order.append(name)

    t1 = asyncio.create_task(m1())
    await asyncio.sleep(0)
    t2 = asyncio.create_task(m("m2", ["B", "A"]))
    t3 = asyncio.create_task(m("m3", ["B"]))
    await asyncio.sleep(0.01)
    assert order == ["m1"]  # m3 does not overtake m2 on B
    release.set()
    await asyncio.gather(t1, t2, t3)
    assert order == ["m1", "m2", "m3"]


async def test_different_keys_run_at_once() -> None:
    locks = KeyedLocks()
    inside = 0
    both = asyncio.Event()

    async def work(key: str) -> None:
        nonlocal inside
        async with locks.hold([key]):
            inside += 1
            if inside == 2:
                both.set()
            await asyncio.wait_for(both.wait(), 5)  # fails if the other cannot enter meanwhile

    await asyncio.gather(work("Patient/a"), work("Patient/b"))


async def test_a_cancelled_waiter_gives_up_its_place() -> None:
    locks = KeyedLocks()
    order: list[str] = []
    gate = asyncio.Event()

    async def first() -> None:
        async with locks.hold(["A"]):
            await gate.wait()

    async def later(name: str) -> None:
        async with locks.hold(["A"]):
            order.append(name)

    t1 = asyncio.create_task(first())
    await asyncio.sleep(0)
    t2 = asyncio.create_task(later("cancelled"))
    t3 = asyncio.create_task(later("next"))
    await asyncio.sleep(0)
    t2.cancel()
    gate.set()
    await asyncio.gather(t1, t3)
    assert order == ["next"] and len(locks) == 0


async def test_the_turnstile_lets_numbers_through_in_order() -> None:
    """ordering.py rule 4: work finishing out of order still enters in arrival order."""
    turnstile = Turnstile()
    entered: list[int] = []
    numbers = [turnstile.take() for _ in range(4)]

    async def arrive(number: int, delay: int) -> None:
        for _ in range(delay):  # finishes its own work after the others
            await asyncio.sleep(0)
        async with turnstile.turn(number):
            entered.append(number)

    await asyncio.gather(*(arrive(n, d) for n, d in zip(numbers, (6, 0, 3, 1), strict=True)))
    assert entered == numbers


async def test_a_number_given_up_does_not_block_the_next() -> None:
    turnstile = Turnstile()
    first, second, third = turnstile.take(), turnstile.take(), turnstile.take()
    entered: list[int] = []

    async def arrive(number: int) -> None:
        async with turnstile.turn(number):
            entered.append(number)

    waiting = asyncio.create_task(arrive(third))
    stuck = asyncio.create_task(arrive(second))
    await asyncio.sleep(0)
    stuck.cancel()  # the connection went away while it waited
    turnstile.give_up(first)  # failed before its turn (e.g. a routing error)
    await asyncio.wait_for(waiting, 5)
    assert entered == [third]
