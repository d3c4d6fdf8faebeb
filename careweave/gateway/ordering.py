"""Keyed FIFO locks: messages about one patient are processed one at a time, in arrival order.

Rules:
1. A message holds the locks of all its keys (tenant + patient identifier, and the merged
   patient's for a merge) while it is processed; messages with no key in common run in parallel.
2. First come, first served: a message takes its place in the queue of every one of its keys the
   moment it arrives, before it waits for anything, and runs when it is first in all of them. Two
   messages for one patient are therefore processed in the order they arrived, whichever
   connection brought them, and no two messages sharing keys can wait for each other (no deadlock).
3. A key nobody holds or waits for is forgotten (the table does not grow with the patient count).
4. When mapping happens elsewhere (worker processes, which may finish out of order), a message
   learns its keys only after an await: a :class:`Turnstile` number taken on arrival makes the
   messages enter their queues in arrival order all the same.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import AsyncIterator, Iterable

__all__ = ["KeyedLocks", "Ticket", "Turnstile"]


class Ticket:
    """A message's place in the queues of its keys (from :meth:`KeyedLocks.enter`)."""

    __slots__ = ("keys", "wake")

    def __init__(self, keys: tuple[str, ...]) -> None:
        self.keys = keys
        self.wake = asyncio.Event()


class KeyedLocks:
    """FIFO mutual exclusion per key (rules 1-3); one instance per event loop.

    Each key has a queue of tickets; a message joins the queue of every one of its keys at once
    (:meth:`enter`, before it first waits), runs when its ticket is first in all of them
    (:meth:`wait`), and gives its place up with :meth:`leave`, which may happen in another task
    (the enhanced-mode processing that follows the commit ACK)."""

    def __init__(self) -> None:
        self._queues: dict[str, deque[Ticket]] = {}

    def __len__(self) -> int:
        return len(self._queues)

    def enter(self, keys: Iterable[str]) -> Ticket:
        ticket = Ticket(tuple(sorted(set(keys))))
        for key in ticket.keys:
            self._queues.setdefault(key, deque()).append(ticket)
        return ticket

    def _first_everywhere(self, ticket: Ticket) -> bool:
        return all(self._queues[key][0] is ticket for key in ticket.keys)

    async def wait(self, ticket: Ticket) -> None:
        while not self._first_everywhere(ticket):
            ticket.wake.clear()
            await ticket.wake.wait()

    def leave(self, ticket: Ticket) -> None:
        for key in ticket.keys:
            queue = self._queues[key]
            queue.remove(ticket)
            if queue:
                queue[0].wake.set()
            else:
                del self._queues[key]

    @contextlib.asynccontextmanager
    async def hold(self, keys: Iterable[str]) -> AsyncIterator[None]:
        ticket = self.enter(keys)
        try:
            await self.wait(ticket)
            yield
        finally:
            self.leave(ticket)


class Turnstile:
    """Arrival order across awaits (rule 4): :meth:`take` a number on arrival (no await before
    it), then ``async with turnstile.turn(number):`` runs its body when every earlier number has
    passed (or was given up: a cancelled or failed message never blocks the ones behind it)."""

    def __init__(self) -> None:
        self._issued = 0
        self._next = 0
        self._passed: set[int] = set()  # numbers done out of turn (given up early)
        self._waiting: dict[int, asyncio.Future[None]] = {}

    def take(self) -> int:
        number = self._issued
        self._issued += 1
        return number

    @contextlib.asynccontextmanager
    async def turn(self, number: int) -> AsyncIterator[None]:
        try:
            if number != self._next:
                future = asyncio.get_running_loop().create_future()
                self._waiting[number] = future
                try:
                    await future
                finally:
                    self._waiting.pop(number, None)
            yield
        finally:
            self.give_up(number)

    def give_up(self, number: int) -> None:
        """``number`` has passed (or never will): let the next ones through."""
        if number < self._next:
            return
        self._passed.add(number)
        while self._next in self._passed:
            self._passed.discard(self._next)
            self._next += 1
        future = self._waiting.get(self._next)
        if future is not None and not future.done():
            future.set_result(None)
