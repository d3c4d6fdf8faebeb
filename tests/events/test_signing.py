"""Signed deliveries: HMAC-SHA256 over timestamp and body, verified with a replay window."""

from __future__ import annotations

import hashlib
import hmac

from hypothesis import given
from hypothesis import strategies as st

from careweave.events.signing import sign, signature, verify_signature

SECRET = b"whsec-test-0123456789"
T = 1_717_243_200


def test_the_header_is_stripe_shaped_and_computable_by_hand() -> None:
    body = b'{"resourceType":"Bundle"}'
    header = sign(SECRET, body, T)
    expected = hmac.new(SECRET, f"{T}.".encode() + body, hashlib.sha256).hexdigest()
    assert header == f"t={T},v1={expected}"
    assert verify_signature(header, body, [SECRET], now_s=T + 10).ok


@given(st.binary(max_size=2000), st.integers(0, 2**31), st.binary(min_size=1, max_size=64))
def test_any_body_round_trips_and_any_change_breaks_it(body, timestamp, secret) -> None:
    header = sign(secret, body, timestamp)
    assert verify_signature(header, body, [secret], now_s=timestamp).ok
    assert not verify_signature(header, body + b" ", [secret], now_s=timestamp).ok
    assert not verify_signature(header, body, [secret + b"x"], now_s=timestamp).ok
    forged = header.replace(f"t={timestamp}", f"t={timestamp + 1}")
    assert not verify_signature(forged, body, [secret], now_s=timestamp).ok


def test_replay_window() -> None:
    body = b"{}"
    header = sign(SECRET, body, T)
    assert verify_signature(header, body, [SECRET], now_s=T + 300).ok
    late = verify_signature(header, body, [SECRET], now_s=T + 301)
    assert not late.ok and "tolerance" in late.reason and late.timestamp_s == T
    assert not verify_signature(header, body, [SECRET], now_s=T - 301).ok  # from the future
    assert verify_signature(header, body, [SECRET], now_s=T + 3000, tolerance_s=3600).ok


def test_secret_rotation() -> None:
    old, new = b"old-secret", b"new-secret"
    header = sign([old, new], b"x", T)
    assert header.count("v1=") == 2
    assert verify_signature(header, b"x", [new], now_s=T).ok
    assert verify_signature(header, b"x", [old], now_s=T).ok
    assert verify_signature(sign(old, b"x", T), b"x", [new, old], now_s=T).ok


def test_malformed_headers() -> None:
    for header in (None, "", "v1=abc", f"t={T}", "t=soon,v1=ab", f"t={T},v2={signature(SECRET, b'', T)}"):
        result = verify_signature(header, b"", [SECRET], now_s=T)
        assert not result.ok, header
