"""The retry policy: exponential backoff with full jitter, a cap, and a give-up period in hours."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from careweave.events.retry import GiveUp, RetryAt, RetryPolicy, next_attempt

policies = st.builds(
    lambda first, mult, cap_extra, hours, min_frac: RetryPolicy(
        first_delay_s=first, multiplier=mult, cap_s=first + cap_extra, give_up_after_s=hours * 3600,
        min_delay_s=max(0.001, first * min_frac)),
    st.floats(0.1, 120), st.floats(1, 4), st.floats(0, 7200), st.floats(0.01, 96), st.floats(0, 1),
)
# policies whose whole schedule can be walked quickly (a cap of at least a minute)
walkable = st.builds(
    lambda first, mult, cap, hours, min_frac: RetryPolicy(
        first_delay_s=first, multiplier=mult, cap_s=cap, give_up_after_s=hours * 3600,
        min_delay_s=max(0.001, first * min_frac)),
    st.floats(0.5, 60), st.floats(1.5, 4), st.floats(60, 7200), st.floats(0.01, 96), st.floats(0, 1),
)
draws = st.floats(0, 1, exclude_max=True)


@settings(deadline=None)
@given(policies, st.integers(1, 500), draws, st.integers(0, 10**9))
def test_a_delay_stays_within_its_jitter_range_and_the_cap(policy, attempt, draw, elapsed_ms) -> None:
    start = 1_700_000_000_000
    now = start + elapsed_ms
    found = next_attempt(policy, attempt=attempt, first_attempt_ms=start, now_ms=now, random=lambda: draw)
    deadline = start + int(policy.give_up_after_s * 1000)
    if now >= deadline:
        assert isinstance(found, GiveUp)
        return
    assert isinstance(found, RetryAt)
    assert found.attempt == attempt + 1
    assert found.at_ms == now + found.delay_ms
    assert 0 <= found.delay_ms <= policy.cap_s * 1000
    assert found.at_ms <= deadline
    ceiling = policy.ceiling_s(attempt)
    assert ceiling <= policy.cap_s
    if found.at_ms < deadline:  # not clamped to the deadline: inside [min_delay, ceiling]
        assert int(policy.min_delay_s * 1000) - 1 <= found.delay_ms <= ceiling * 1000
        expected = max(policy.min_delay_s, draw * ceiling)
        assert abs(found.delay_ms - expected * 1000) <= 1


@settings(max_examples=60, deadline=None)
@given(walkable, st.integers(0, 2**32))
def test_a_failing_delivery_gives_up_within_the_period_and_never_later(policy, seed) -> None:
    rng = random.Random(seed)
    start = now = 1_700_000_000_000
    deadline = start + int(policy.give_up_after_s * 1000)
    attempt = 1
    for _ in range(100_000):
        found = next_attempt(policy, attempt=attempt, first_attempt_ms=start, now_ms=now, random=rng.random)
        if isinstance(found, GiveUp):
            break
        assert now < found.at_ms <= deadline  # time moves forward, never past the deadline
        now, attempt = found.at_ms, found.attempt
    else:
        pytest.fail("never gave up")
    assert now == deadline  # the last attempt was at the deadline: never later, and not given up early


def test_backoff_grows_exponentially_to_the_cap() -> None:
    policy = RetryPolicy(first_delay_s=5, multiplier=2, cap_s=3600, give_up_after_s=72 * 3600)
    assert [policy.ceiling_s(n) for n in (1, 2, 3, 4, 10, 11, 1000)] == [5, 10, 20, 40, 2560, 3600, 3600]


def test_full_jitter_spreads_retries_over_the_whole_range() -> None:
    policy = RetryPolicy(first_delay_s=10, cap_s=10, min_delay_s=0.001)
    delays = [next_attempt(policy, attempt=1, first_attempt_ms=0, now_ms=0, random=lambda v=v: v).delay_ms
              for v in (0.0, 0.25, 0.5, 0.999)]
    assert delays == [1, 2500, 5000, 9990]


def test_not_retryable_and_retry_after() -> None:
    policy = RetryPolicy()
    assert isinstance(next_attempt(policy, attempt=1, first_attempt_ms=0, now_ms=0, random=lambda: 0.5,
                                   retryable=False), GiveUp)
    slow = next_attempt(policy, attempt=1, first_attempt_ms=0, now_ms=0, random=lambda: 0.0,
                        retry_after_s=120)
    assert isinstance(slow, RetryAt) and slow.delay_ms == 120_000
    capped = next_attempt(policy, attempt=1, first_attempt_ms=0, now_ms=0, random=lambda: 0.0,
                          retry_after_s=10**9)
    assert isinstance(capped, RetryAt) and capped.delay_ms == policy.cap_s * 1000


def test_default_gives_up_after_hours_not_seconds() -> None:
    policy = RetryPolicy()
    assert policy.give_up_after_s >= 24 * 3600
    almost = 72 * 3600 * 1000 - 1
    last = next_attempt(policy, attempt=40, first_attempt_ms=0, now_ms=almost, random=lambda: 0.9)
    assert isinstance(last, RetryAt) and last.at_ms == 72 * 3600 * 1000
    assert isinstance(next_attempt(policy, attempt=41, first_attempt_ms=0, now_ms=last.at_ms,
                                   random=lambda: 0.9), GiveUp)


@pytest.mark.parametrize("kwargs", [
    {"first_delay_s": 0}, {"first_delay_s": 10, "cap_s": 5}, {"multiplier": 0.5},
    {"min_delay_s": 10, "first_delay_s": 5}, {"min_delay_s": 0}, {"give_up_after_s": 0},
])
def test_bad_policies_are_refused(kwargs) -> None:
    with pytest.raises(ValueError):
        RetryPolicy(**kwargs)
