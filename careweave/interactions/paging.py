"""Stateless, signed paging cursors.

Rules:
1. A cursor is the position after the last entry of a page, not an offset: pages stay correct while
   others write. Nothing is kept on the server.
2. A cursor is signed (HMAC-SHA256 over its content and the tenant's name): a client cannot forge
   one, and a cursor from one tenant is refused by every other.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from typing import Any

import orjson

from careweave.errors import error

__all__ = ["open_cursor", "seal_cursor"]


def seal_cursor(secret: bytes, tenant: str, content: Any) -> str:
    payload = orjson.dumps(content)
    mac = hmac.new(secret, tenant.encode() + b"\0" + payload, hashlib.sha256).digest()[:16]
    return base64.urlsafe_b64encode(mac + payload).decode().rstrip("=")


def open_cursor(secret: bytes, tenant: str, token: str) -> Any:
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
    except (ValueError, TypeError):
        raise error("CW-5003", "the paging cursor is not valid") from None
    mac, payload = raw[:16], raw[16:]
    expected = hmac.new(secret, tenant.encode() + b"\0" + payload, hashlib.sha256).digest()[:16]
    if len(mac) != 16 or not hmac.compare_digest(mac, expected):
        raise error("CW-5003", "the paging cursor is not valid for this server or tenant")
    try:
        return orjson.loads(payload)
    except orjson.JSONDecodeError:
        raise error("CW-5003", "the paging cursor is not valid") from None
