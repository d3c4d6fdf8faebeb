"""Event numbers: how a receiver tells a duplicate, a gap and a new event apart.

Rules:
1. Event numbers are per subscription, start at 1 and go up by one per triggering event, with no
   number skipped or reused (the sender allocates them with the change, in the outbox); a
   notification carries the numbers of its events and ``events-since-subscription-start``, the
   last number allocated when it was sent (heartbeats and handshakes carry it too).
2. A receiver keeps an :class:`EventLedger`: every number up to ``contiguous`` seen, plus the ones
   seen above it. A number seen again is a duplicate; numbers missing below the highest seen, or
   below ``events-since-subscription-start``, are gaps to fetch with ``$events``.
3. Pure values: observing returns a new ledger.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

__all__ = ["EventLedger", "Observation", "allocate", "event_numbers", "events_since_start"]


def allocate(last: int, count: int) -> range:
    """The numbers of ``count`` new events after ``last`` was the last one allocated (rule 1)."""
    if last < 0 or count < 0:
        raise ValueError("last and count must not be negative")
    return range(last + 1, last + 1 + count)


@dataclass(frozen=True, slots=True)
class Observation:
    new: tuple[int, ...]
    duplicates: tuple[int, ...]
    gaps: tuple[range, ...]  # numbers still missing after this observation


@dataclass(frozen=True, slots=True)
class EventLedger:
    contiguous: int = 0
    above: frozenset[int] = frozenset()

    def seen(self, number: int) -> bool:
        return number <= self.contiguous or number in self.above

    def observe(
        self, numbers: Iterable[int], events_since_start: int | None = None
    ) -> tuple[EventLedger, Observation]:
        """Record received event numbers (rule 2); ``events_since_start`` from the same notification
        lets a heartbeat reveal events that never arrived."""
        new: list[int] = []
        duplicates: list[int] = []
        above = set(self.above)
        contiguous = self.contiguous
        for n in numbers:
            if n < 1:
                raise ValueError("event numbers start at 1")
            if n <= contiguous or n in above or n in new:
                duplicates.append(n)
                continue
            new.append(n)
            above.add(n)
        while contiguous + 1 in above:
            contiguous += 1
            above.discard(contiguous)
        ledger = EventLedger(contiguous, frozenset(above))
        return ledger, Observation(tuple(new), tuple(duplicates), ledger.gaps(events_since_start))

    def gaps(self, events_since_start: int | None = None) -> tuple[range, ...]:
        """Missing numbers, as ranges, up to the highest seen (or ``events_since_start``)."""
        top = max([self.contiguous, *self.above, events_since_start or 0])
        out: list[range] = []
        start = self.contiguous + 1
        for n in sorted(self.above):
            if n > start:
                out.append(range(start, n))
            start = n + 1
        if top >= start:
            out.append(range(start, top + 1))
        return tuple(out)

    def skip_to(self, number: int) -> EventLedger:
        """Accept every number up to ``number`` as handled (after recovering them with $events, or
        giving them up)."""
        contiguous = max(self.contiguous, number)
        above = {n for n in self.above if n > contiguous}
        while contiguous + 1 in above:
            contiguous += 1
            above.discard(contiguous)
        return EventLedger(contiguous, frozenset(above))


def _status(bundle: Mapping[str, Any]) -> list[Any]:
    entries = bundle.get("entry")
    if not isinstance(entries, list) or not entries or not isinstance(entries[0], Mapping):
        return []
    resource = entries[0].get("resource")
    if not isinstance(resource, Mapping) or resource.get("resourceType") != "Parameters":
        return []
    params = resource.get("parameter")
    return params if isinstance(params, list) else []


def event_numbers(bundle: Mapping[str, Any]) -> tuple[int, ...]:
    """The event numbers a notification Bundle carries (its status entry's notification-events)."""
    out = []
    for param in _status(bundle):
        if isinstance(param, Mapping) and param.get("name") == "notification-event":
            for part in param.get("part", ()):
                if isinstance(part, Mapping) and part.get("name") == "event-number":
                    value = part.get("valueString")
                    if isinstance(value, str) and value.isdigit():
                        out.append(int(value))
    return tuple(out)


def events_since_start(bundle: Mapping[str, Any]) -> int | None:
    for param in _status(bundle):
        if isinstance(param, Mapping) and param.get("name") == "events-since-subscription-start":
            value = param.get("valueString")
            if isinstance(value, str) and value.isdigit():
                return int(value)
    return None
