"""Building the events service from Settings (called by the composition root, system.py)."""

from __future__ import annotations

import secrets
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import orjson

from careweave.events.dispatch import TenantTools
from careweave.events.retry import RetryPolicy
from careweave.events.service import EventConfig, EventService
from careweave.events.topic import Topic, read_topic
from careweave.fhir.fhirpath import FhirPathEngine
from careweave.search.params import SearchContext
from careweave.settings import Settings
from careweave.store.base import Store, Tenant

__all__ = ["builtin_topics", "event_service", "events_secret", "public_base", "retry_policy"]


def events_secret(settings: Settings) -> bytes:
    """The signing secret: the setting, or a random one kept in ``data_dir/events.key``."""
    if settings.events_secret:
        return settings.events_secret.encode()
    path = settings.data_dir / "events.key"
    if path.exists():
        return path.read_bytes()
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    secret = secrets.token_bytes(32)
    path.write_bytes(secret)
    path.chmod(0o600)
    return secret


def builtin_topics(path: str) -> tuple[Topic, ...]:
    """SubscriptionTopics (R4B/R5 JSON: one, a list, or a Bundle of them) from a file."""
    if not path:
        return ()
    data = orjson.loads(Path(path).read_bytes())
    if isinstance(data, dict) and data.get("resourceType") == "Bundle":
        data = [e.get("resource") for e in data.get("entry", ())]
    items = data if isinstance(data, list) else [data]
    out = []
    for item in items:
        topic, issues = read_topic(item) if isinstance(item, dict) else (None, [])
        if topic is None:
            raise ValueError(f"{path}: a topic cannot be read: {[i.diagnostics for i in issues]}")
        out.append(topic)
    return tuple(out)


def retry_policy(settings: Settings) -> RetryPolicy:
    first = settings.events_retry_first_s
    return RetryPolicy(
        first_delay_s=first,
        cap_s=max(first, settings.events_retry_cap_s),
        give_up_after_s=settings.events_give_up_s,
        min_delay_s=min(1.0, first),
    )


def public_base(settings: Settings) -> str:
    """Where notifications say the server is (absolute): the base_url setting, else host:port."""
    return settings.base_url.rstrip("/") or f"http://{settings.host}:{settings.port}"


def event_service(
    settings: Settings,
    store: Store,
    search_of: Callable[[Tenant], Awaitable[Any]],
    resource_types: frozenset[str],
    expand: Callable[[str], list[tuple[str | None, str]] | None] | None,
    engine: FhirPathEngine,
) -> EventService:
    """The dispatcher and delivery worker for these settings. ``search_of`` gives a tenant's search
    state (``.registry``, ``.indexer``: interactions.tenants.TenantSearch.of)."""

    async def tools_of(tenant: Tenant) -> TenantTools:
        state = await search_of(tenant)
        return TenantTools(SearchContext(state.registry, resource_types, "", expand), state.indexer)

    config = EventConfig(
        base_url=public_base(settings),
        policy=retry_policy(settings),
        lease_ms=int(settings.events_lease_s * 1000),
        poll_ms=settings.events_poll_ms,
        signing_secret=events_secret(settings),
        nats_url=settings.events_nats_url,
        builtin_topics=builtin_topics(settings.events_topics),
    )
    return EventService(store, tools_of, engine, config)
