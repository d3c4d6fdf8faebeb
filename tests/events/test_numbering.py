"""Event numbers: receivers detect duplicates and gaps (and heartbeats reveal lost events)."""

from __future__ import annotations

import random

from hypothesis import given
from hypothesis import strategies as st

from careweave.events.notification import EventInfo, ResourceRef, StatusInfo, notification_bundle
from careweave.events.numbering import EventLedger, allocate, event_numbers, events_since_start


def test_allocation_is_monotonic_from_one() -> None:
    first = allocate(0, 3)
    assert list(first) == [1, 2, 3]
    assert list(allocate(first[-1], 2)) == [4, 5]
    assert list(allocate(5, 0)) == []


def test_duplicates_gaps_and_catching_up() -> None:
    ledger = EventLedger()
    ledger, seen = ledger.observe([1, 2])
    assert (seen.new, seen.duplicates, seen.gaps) == ((1, 2), (), ())
    ledger, seen = ledger.observe([5])
    assert seen.gaps == (range(3, 5),)
    ledger, seen = ledger.observe([2, 5, 3])
    assert (seen.new, seen.duplicates, seen.gaps) == ((3,), (2, 5), (range(4, 5),))
    ledger, seen = ledger.observe([4])
    assert (ledger.contiguous, ledger.above, seen.gaps) == (5, frozenset(), ())
    ledger, seen = ledger.observe([], events_since_start=8)  # a heartbeat: 6, 7, 8 never came
    assert seen.gaps == (range(6, 9),)
    assert ledger.skip_to(8).gaps() == ()


@given(st.integers(1, 60), st.integers(0, 2**32), st.lists(st.integers(0, 59), max_size=30))
def test_any_arrival_order_with_redeliveries(n, seed, repeats) -> None:
    order = list(range(1, n + 1)) + [r % n + 1 for r in repeats]
    random.Random(seed).shuffle(order)
    ledger = EventLedger()
    news, duplicates = [], []
    for number in order:
        ledger, seen = ledger.observe([number])
        news += seen.new
        duplicates += seen.duplicates
        assert all(not ledger.seen(m) for gap in seen.gaps for m in gap)
    assert sorted(news) == list(range(1, n + 1))  # every event exactly once
    assert len(duplicates) == len(order) - n
    assert ledger == EventLedger(n, frozenset())


def test_numbers_are_read_back_from_a_notification() -> None:
    events = [EventInfo(n, 0, ResourceRef("Encounter", f"e{n}"), "update") for n in (41, 42)]
    bundle = notification_bundle(StatusInfo("s", "active", "event-notification", "urn:t", 42), events,
                                 content="empty", base_url="https://x/fhir", bundle_id="b", timestamp_ms=0)
    assert event_numbers(bundle) == (41, 42)
    assert events_since_start(bundle) == 42
    assert event_numbers({"resourceType": "Bundle"}) == () and events_since_start({}) is None
