"""Signed deliveries: an HMAC-SHA256 over a timestamp and the body, and its check by receivers.

The header (``X-Careweave-Signature``) reads ``t=<unix seconds>,v1=<hex>``, where ``<hex>`` is
HMAC-SHA256(secret, ``<t>.`` + body). Stripe's scheme, which many receivers already verify.

Rules:
1. The timestamp is signed with the body, so a captured delivery cannot be replayed later than
   ``tolerance_s`` (default five minutes) of its timestamp; within that window receivers
   de-duplicate on the event id header and the event numbers.
2. A header may carry several ``v1`` signatures (one per secret while a secret is rotated), and
   a receiver may hold several secrets: any pair that matches verifies.
3. Comparisons are constant-time. Pure: the time is an input.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Sequence
from dataclasses import dataclass

__all__ = ["SIGNATURE_HEADER", "Verification", "sign", "signature", "verify_signature"]

SIGNATURE_HEADER = "X-Careweave-Signature"
_SCHEME = "v1"


def signature(secret: bytes, body: bytes, timestamp_s: int) -> str:
    """The hex HMAC of one (timestamp, body) pair."""
    return hmac.new(secret, str(timestamp_s).encode() + b"." + body, hashlib.sha256).hexdigest()


def sign(secrets: Sequence[bytes] | bytes, body: bytes, timestamp_s: int) -> str:
    """The header value: ``t=<timestamp>,v1=<hex>[,v1=<hex>...]`` (one per secret, rule 2)."""
    keys = [secrets] if isinstance(secrets, bytes) else list(secrets)
    if not keys:
        raise ValueError("at least one secret is needed")
    return ",".join([f"t={timestamp_s}", *(f"{_SCHEME}={signature(k, body, timestamp_s)}" for k in keys)])


@dataclass(frozen=True, slots=True)
class Verification:
    ok: bool
    reason: str = ""
    timestamp_s: int | None = None


def verify_signature(
    header: str | None,
    body: bytes,
    secrets: Sequence[bytes],
    *,
    now_s: int,
    tolerance_s: int = 300,
) -> Verification:
    """Check a received signature header against the body, the secrets and the clock (rules 1-3)."""
    if not header:
        return Verification(False, "no signature")
    timestamp: int | None = None
    candidates: list[str] = []
    for item in header.split(","):
        key, _, value = item.strip().partition("=")
        if key == "t" and value.isdigit():
            timestamp = int(value)
        elif key == _SCHEME and value:
            candidates.append(value)
    if timestamp is None or not candidates:
        return Verification(False, "malformed signature header")
    if abs(now_s - timestamp) > tolerance_s:
        return Verification(False, "timestamp outside the tolerance (replayed or clock skew)", timestamp)
    for secret in secrets:
        expected = signature(secret, body, timestamp)
        if any(hmac.compare_digest(expected, c) for c in candidates):
            return Verification(True, "", timestamp)
    return Verification(False, "no signature matches", timestamp)
