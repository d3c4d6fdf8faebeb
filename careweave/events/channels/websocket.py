"""The websocket channel's protocol, sans-IO: binding tokens and ``bind-with-token`` frames.

The backport IG (v1.1.0, channels.html): a client gets a token from
``Subscription/$get-ws-binding-token`` (a Parameters with ``token``, ``expiration``,
``subscription`` and ``websocket-url``), opens the websocket and sends the text frame
``bind-with-token <token>``; the server answers with one ``handshake`` notification per
subscription the token covers, then sends ``heartbeat`` and ``event-notification`` bundles.
The endpoint (sockets, the subscriptions' state) is the server's; this module only parses and
builds.

Rules:
1. A token is ``<payload>.<mac>``, both base64url without padding: the payload is JSON
   ``{"t": tenant, "s": [subscription ids], "e": expiry ms, "n": nonce}`` and the mac its
   HMAC-SHA256 under the server's secret. It holds no secret, and any change to it breaks the mac.
2. A frame binds only if it is exactly ``bind-with-token`` and one token, the token's mac
   matches, it has not expired and it is for the connection's tenant. Anything else is refused
   with close code 1008 (policy violation) and an OperationOutcome text to send first.
3. Pure: the time, the nonce and the secret are inputs.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from careweave.fhir.model import format_instant

__all__ = [
    "BIND_COMMAND",
    "POLICY_VIOLATION",
    "BindingGrant",
    "Bound",
    "Refused",
    "binding_token_parameters",
    "issue_binding_token",
    "open_binding_token",
    "read_client_frame",
    "refusal_text",
]

BIND_COMMAND = "bind-with-token"
POLICY_VIOLATION = 1008


@dataclass(frozen=True, slots=True)
class BindingGrant:
    tenant: str
    subscription_ids: tuple[str, ...]
    expires_ms: int


@dataclass(frozen=True, slots=True)
class Bound:
    """Send a handshake for each of ``grant.subscription_ids``, then their notifications."""

    grant: BindingGrant


@dataclass(frozen=True, slots=True)
class Refused:
    reason: str
    close_code: int = POLICY_VIOLATION


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _mac(secret: bytes, payload: str) -> str:
    return _b64(hmac.new(secret, payload.encode("ascii"), hashlib.sha256).digest())


def issue_binding_token(secret: bytes, grant: BindingGrant, nonce: bytes) -> str:
    """A token for ``grant`` (rule 1); ``nonce`` (16 random bytes, say) makes each one unique."""
    if not grant.subscription_ids:
        raise ValueError("a binding token covers at least one subscription")
    body = {"t": grant.tenant, "s": list(grant.subscription_ids), "e": grant.expires_ms, "n": _b64(nonce)}
    payload = _b64(orjson.dumps(body))
    return f"{payload}.{_mac(secret, payload)}"


def open_binding_token(secret: bytes, token: str, *, now_ms: int) -> BindingGrant | Refused:
    """The grant a token carries, or why it is refused (rules 1-2)."""
    payload, dot, mac = token.partition(".")
    if not dot or not hmac.compare_digest(_mac(secret, payload), mac):
        return Refused("the binding token is not valid")
    try:
        body = orjson.loads(_unb64(payload))
        grant = BindingGrant(str(body["t"]), tuple(str(s) for s in body["s"]), int(body["e"]))
    except (binascii.Error, ValueError, KeyError, TypeError, orjson.JSONDecodeError):
        return Refused("the binding token is not valid")
    if grant.expires_ms <= now_ms:
        return Refused("the binding token has expired")
    return grant


def read_client_frame(text: str, secret: bytes, *, tenant: str, now_ms: int) -> Bound | Refused:
    """What a client's text frame asks for (rule 2)."""
    words = text.split()
    if len(words) != 2 or words[0] != BIND_COMMAND:
        return Refused(f"expected '{BIND_COMMAND} <token>'")
    found = open_binding_token(secret, words[1], now_ms=now_ms)
    if isinstance(found, Refused):
        return found
    if found.tenant != tenant:
        return Refused("the binding token is for another tenant")
    return Bound(found)


def refusal_text(refused: Refused) -> str:
    """An OperationOutcome (JSON text) to send before closing with ``refused.close_code``."""
    outcome = {
        "resourceType": "OperationOutcome",
        "issue": [{"severity": "error", "code": "security", "diagnostics": refused.reason}],
    }
    return orjson.dumps(outcome).decode()


def binding_token_parameters(
    token: str, grant: BindingGrant, websocket_url: str, subscription_urls: Sequence[str] = ()
) -> dict[str, Any]:
    """The ``$get-ws-binding-token`` output: token, expiration, subscription(s), websocket-url.
    ``subscription_urls`` default to the grant's ids as ``Subscription/<id>``."""
    subscriptions = list(subscription_urls) or [f"Subscription/{s}" for s in grant.subscription_ids]
    params: list[dict[str, Any]] = [
        {"name": "token", "valueString": token},
        {"name": "expiration", "valueDateTime": format_instant(grant.expires_ms)},
    ]
    params.extend({"name": "subscription", "valueString": s} for s in subscriptions)
    params.append({"name": "websocket-url", "valueUrl": websocket_url})
    return {"resourceType": "Parameters", "parameter": params}
