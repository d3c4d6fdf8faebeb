"""The websocket channel's binding protocol (backport IG v1.1.0, channels.html#websockets):
$get-ws-binding-token output, tokens, and the client's ``bind-with-token`` frame."""

from __future__ import annotations

import orjson
import pytest

from careweave.events.channels.websocket import (
    POLICY_VIOLATION,
    BindingGrant,
    Bound,
    Refused,
    binding_token_parameters,
    issue_binding_token,
    open_binding_token,
    read_client_frame,
    refusal_text,
)

SECRET = b"ws-binding-secret"
NOW = 1_717_243_200_000
GRANT = BindingGrant("trust-a", ("sub-1", "sub-2"), NOW + 60_000)


def test_bind_with_a_valid_token() -> None:
    token = issue_binding_token(SECRET, GRANT, b"0123456789abcdef")
    found = read_client_frame(f"bind-with-token {token}", SECRET, tenant="trust-a", now_ms=NOW)
    assert found == Bound(GRANT)
    assert issue_binding_token(SECRET, GRANT, b"another-nonce!!!") != token


@pytest.mark.parametrize(("frame", "reason"), [
    ("bind {token}", "expected"),
    ("bind-with-token", "expected"),
    ("bind-with-token {token} extra", "expected"),
    ("bind-with-token {token}x", "not valid"),
    ("bind-with-token x{token}", "not valid"),
    ("bind-with-token not-a-token", "not valid"),
])
def test_malformed_frames_are_refused(frame, reason) -> None:
    token = issue_binding_token(SECRET, GRANT, b"n")
    found = read_client_frame(frame.format(token=token), SECRET, tenant="trust-a", now_ms=NOW)
    assert isinstance(found, Refused) and reason in found.reason
    assert found.close_code == POLICY_VIOLATION
    outcome = orjson.loads(refusal_text(found))
    assert outcome["resourceType"] == "OperationOutcome"
    assert outcome["issue"][0]["diagnostics"] == found.reason


def test_expired_foreign_and_forged_tokens() -> None:
    token = issue_binding_token(SECRET, GRANT, b"n")
    assert read_client_frame(f"bind-with-token {token}", SECRET, tenant="trust-a",
                             now_ms=GRANT.expires_ms) == Refused("the binding token has expired")
    other = read_client_frame(f"bind-with-token {token}", SECRET, tenant="trust-b", now_ms=NOW)
    assert isinstance(other, Refused) and "another tenant" in other.reason
    assert isinstance(open_binding_token(b"other-secret", token, now_ms=NOW), Refused)
    _payload, mac = token.split(".")
    widened = BindingGrant("trust-a", ("sub-1", "sub-2", "sub-3"), NOW + 60_000)
    forged_payload = issue_binding_token(b"attacker", widened, b"n").split(".")[0]
    assert isinstance(open_binding_token(SECRET, f"{forged_payload}.{mac}", now_ms=NOW), Refused)


def test_get_ws_binding_token_parameters(definitions) -> None:
    token = issue_binding_token(SECRET, GRANT, b"n")
    params = binding_token_parameters(token, GRANT, "wss://example.org/t/trust-a/fhir/$ws")
    assert [i for i in definitions.validator.validate(params) if i.is_error] == []
    by_name = [(p["name"], next(v for k, v in p.items() if k.startswith("value")))
               for p in params["parameter"]]
    assert by_name == [("token", token), ("expiration", "2024-06-01T12:01:00.000+00:00"),
                       ("subscription", "Subscription/sub-1"), ("subscription", "Subscription/sub-2"),
                       ("websocket-url", "wss://example.org/t/trust-a/fhir/$ws")]


def test_a_token_covers_at_least_one_subscription() -> None:
    with pytest.raises(ValueError):
        issue_binding_token(SECRET, BindingGrant("t", (), NOW), b"n")
