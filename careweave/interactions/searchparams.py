"""Writes of SearchParameter resources register (or drop) the tenant's custom parameters.

The registration happens in the same transaction as the write, with a reindex job queued; the
background job runner indexes the existing resources and then makes the parameters searchable.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from careweave.errors import CareweaveError
from careweave.interactions.context import Services
from careweave.search.custom import check_search_parameter
from careweave.store.base import CustomParam, Tenant, Transaction

__all__ = ["after_commit", "effects_of"]

Effect = Callable[[Transaction, Any], Any]
"""(transaction, outcome of the write) -> the outcome: work done in the write's own transaction."""


def _changed(outcome: Any) -> list[Any]:
    outcomes = outcome if isinstance(outcome, list) else [outcome]
    return [o for o in outcomes if getattr(o, "changed", False) and o.stored is not None]


def effects_of(services: Services, type_: str, resource: dict[str, Any] | None) -> Effect | None:
    """The side effect a write of ``type_`` has (None for most types). For SearchParameter: it
    registers (or, for a deletion with ``resource`` None, drops) the tenant's custom parameters and
    queues their reindex. Raises CW-3002 (422) for a definition that cannot be used."""
    if type_ != "SearchParameter":
        return None
    custom: list[CustomParam] = []
    if resource is not None:
        params, issues = check_search_parameter(
            resource, services.search_params, services.engine, services.resource_types
        )
        if issues:
            raise CareweaveError("CW-3002", "this SearchParameter cannot be used here", issues)
        custom = [CustomParam(p.key, "", p.url, dict(resource), "pending") for p in params]

    def effect(tx: Transaction, outcome: Any) -> Any:
        for done in _changed(outcome):
            stored = done.stored
            if stored.deleted:
                tx.set_custom_params(stored.id, [])
                continue
            mine = [CustomParam(c.key, stored.id, c.url, c.definition, c.state) for c in custom]
            tx.set_custom_params(stored.id, mine)
            if mine:
                tx.add_job(
                    "reindex",
                    {"keys": [c.key for c in mine], "types": sorted({c.key.split(".")[0] for c in mine})},
                )
        return outcome

    return effect


def after_commit(services: Services, tenant: Tenant, type_: str) -> None:
    """What this process does once a write of ``type_`` has committed."""
    if type_ == "SearchParameter":
        services.tenants.invalidate(tenant.name)
        services.wake_jobs()
