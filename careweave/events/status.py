"""Subscription status changes careweave makes itself, as FHIR updates (a new version).

Rules (R4 subscription.html, backport IG v1.1.0 "Subscription status"):
1. The server moves a Subscription ``requested -> active`` (handshake delivered, or a channel that
   needs none), ``requested | active -> error`` (deliveries gave up, or it cannot be served) and,
   on an operator's replay, ``error -> active``. Each move is checked against the status the
   stored Subscription has *in the same transaction*: a client's own change (``off``, say) is
   never overwritten.
2. The write goes through the shared versioning rules (``store.writes.update``) in the same
   database transaction as the events tables' change, and ``ev_subscription.own_version``
   remembers the version it made, so the dispatcher knows this change is its own and neither
   reacts to it nor notifies on it (no loops).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson

from careweave.search.index import IndexRows
from careweave.store import writes
from careweave.store.base import Transaction
from careweave.store.sql import events as events_sql
from careweave.store.sql.components import Sql

__all__ = ["ALLOWED_FROM", "write_status"]

ALLOWED_FROM: dict[str, frozenset[str]] = {
    "active": frozenset({"requested", "error"}),
    "error": frozenset({"requested", "active"}),
}
"""Rule 1: the statuses each server-made status may replace."""

Index = Callable[[dict[str, Any]], IndexRows]


def write_status(
    sql: Sql,
    tx: Transaction,
    skey: int,
    sid: str,
    status: str,
    *,
    error: str | None,
    index: Index,
) -> int | None:
    """Store the Subscription with ``status`` (and ``error``, R4's text element) when rule 1 allows;
    returns the new version, or None when nothing was written."""
    current = tx.current("Subscription", sid)
    if current is None or current.deleted or current.body is None:
        return None
    resource = orjson.loads(current.body)
    if resource.get("status") not in ALLOWED_FROM[status]:
        return None
    resource["status"] = status
    if error:
        resource["error"] = error[:1000]
    else:
        resource.pop("error", None)
    outcome = writes.update(tx, writes.Prepared("Subscription", resource, index(resource)), sid)
    if outcome.stored is None or not outcome.changed:
        return None
    version = outcome.stored.version
    events_sql.set_subscription_status(sql, skey, status, error=error, own_version=version)
    return version
