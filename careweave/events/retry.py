"""When to try a failed delivery again: exponential backoff with full jitter, then give up.

Rules:
1. After attempt ``n`` (1 for the first) failed, the ceiling is ``first_delay * multiplier**(n-1)``,
   at most ``cap``; the delay is drawn uniformly from ``[0, ceiling]`` ("full jitter": retries of
   many deliveries spread out instead of arriving together), and is at least ``min_delay`` (never
   zero: every retry moves time forward, so the give-up deadline is always reached).
2. A ``Retry-After`` the receiver sent (429, 503) lengthens the delay to it, up to ``cap``.
3. Deliveries give up ``give_up_after`` after their first attempt (hours by default, not
   seconds: a receiver down for a night still gets everything). No attempt is ever scheduled after
   that deadline; the last one may be scheduled exactly at it. A failure that is not retryable
   (a 4xx other than 408 and 429) gives up at once.
4. Pure: the clock is ``now_ms`` and randomness an injected source of floats in ``[0, 1)``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["GiveUp", "RetryAt", "RetryPolicy", "next_attempt"]


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    first_delay_s: float = 5.0
    multiplier: float = 2.0
    cap_s: float = 3600.0
    give_up_after_s: float = 72 * 3600.0
    min_delay_s: float = 1.0

    def __post_init__(self) -> None:
        if not 0 < self.first_delay_s <= self.cap_s:
            raise ValueError("first_delay_s must be positive and at most cap_s")
        if self.multiplier < 1:
            raise ValueError("multiplier must be at least 1")
        if not 0.001 <= self.min_delay_s <= self.first_delay_s:  # zero would retry in a hot loop
            raise ValueError("min_delay_s must be between 1 ms and first_delay_s")
        if self.give_up_after_s <= 0:
            raise ValueError("give_up_after_s must be positive")

    def ceiling_s(self, attempt: int) -> float:
        """The largest delay after attempt ``attempt`` failed (rule 1)."""
        exponent = min(max(attempt, 1) - 1, 200)
        return min(self.cap_s, self.first_delay_s * self.multiplier**exponent)


@dataclass(frozen=True, slots=True)
class RetryAt:
    at_ms: int
    delay_ms: int
    attempt: int  # the number the next attempt will have


@dataclass(frozen=True, slots=True)
class GiveUp:
    reason: str


def next_attempt(
    policy: RetryPolicy,
    *,
    attempt: int,
    first_attempt_ms: int,
    now_ms: int,
    random: Callable[[], float],
    retryable: bool = True,
    retry_after_s: float | None = None,
) -> RetryAt | GiveUp:
    """What to do after attempt ``attempt`` failed at ``now_ms`` (rules 1-3)."""
    if not retryable:
        return GiveUp("the receiver refused the notification (not retryable)")
    deadline = first_attempt_ms + int(policy.give_up_after_s * 1000)
    if now_ms >= deadline:
        return GiveUp(f"no success within {policy.give_up_after_s / 3600:g} hours of the first attempt")
    draw = min(max(random(), 0.0), 1.0)
    delay_s = max(policy.min_delay_s, draw * policy.ceiling_s(attempt))
    if retry_after_s is not None and retry_after_s > delay_s:
        delay_s = min(retry_after_s, policy.cap_s)
    at = min(now_ms + int(delay_s * 1000), deadline)
    return RetryAt(at_ms=at, delay_ms=at - now_ms, attempt=attempt + 1)
