"""The composition root: Settings -> definitions, store, services, the ASGI application.

Rules:
1. This is the only module that knows which backend and which implementations are in use.
2. Everything is built here and passed down; nothing is a module-level singleton.
3. Building the definitions (element model, search registry, validator) is the slow part of start-up
   (about a second); it happens once per process.
"""

from __future__ import annotations

import logging
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from careweave import __version__
from careweave.errors import Issue
from careweave.fhir import definitions
from careweave.fhir.elements import ElementModel
from careweave.interactions.context import Services, new_id
from careweave.rest.app import FhirApp
from careweave.search.indexer import Indexer
from careweave.search.registry import SearchParamRegistry
from careweave.settings import Settings, from_environment
from careweave.store.base import Store, Tenant
from careweave.store.sql.sqlite import SqliteStore

__all__ = ["Definitions", "System", "build_system", "create_app", "load_definitions", "open_store"]

log = logging.getLogger("careweave")


@dataclass(frozen=True, slots=True)
class Definitions:
    """The R4 definitions, compiled: built once per process."""

    model: ElementModel
    search_params: SearchParamRegistry


def load_definitions() -> Definitions:
    model = ElementModel.from_structure_definitions(
        definitions.resources_of("profiles-types") + definitions.resources_of("profiles-resources")
    )
    registry = SearchParamRegistry.from_definitions(definitions.resources_of("search-parameters"))
    return Definitions(model, registry)


def open_store(settings: Settings) -> Store:
    if settings.database.startswith(("postgres://", "postgresql://")):
        raise SystemExit("PostgreSQL support is not built yet (see the PostgreSQL issue)")
    if settings.database.startswith("sqlite:///"):
        path = Path(settings.database[len("sqlite:///") :])
    elif settings.database:
        raise SystemExit(f"unsupported database URL: {settings.database}")
    else:
        path = settings.data_dir / "careweave.db"
    return SqliteStore(
        path,
        synchronous=settings.sqlite_synchronous,
        group_commit_max=settings.group_commit_max,
        reader_threads=settings.reader_threads,
    )


def _cursor_secret(settings: Settings) -> bytes:
    if settings.cursor_secret:
        return settings.cursor_secret.encode()
    path = settings.data_dir / "cursor.key"
    if path.exists():
        return path.read_bytes()
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    secret = secrets.token_bytes(32)
    path.write_bytes(secret)
    path.chmod(0o600)
    return secret


def _basic_validate(model: ElementModel) -> Any:
    def validate(resource: dict[str, Any], tenant: Tenant) -> list[Issue]:
        rtype = resource.get("resourceType")
        if rtype not in model.resource_types:
            return [Issue("error", "structure", f"unknown resourceType {rtype!r}", ("resourceType",))]
        return []

    return validate


@dataclass
class System:
    settings: Settings
    definitions: Definitions
    store: Store
    services: Services
    app: FhirApp

    async def close(self) -> None:
        await self.store.close()


def build_system(settings: Settings, defs: Definitions | None = None) -> System:
    defs = defs or load_definitions()
    store = open_store(settings)
    indexer = Indexer(defs.search_params)
    services = Services(
        store=store,
        model=defs.model,
        search_params=defs.search_params,
        validate=_basic_validate(defs.model),
        index=indexer.index,
        new_id=new_id,
        cursor_secret=_cursor_secret(settings),
        default_count=settings.default_count,
        max_count=settings.max_count,
        software_version=__version__,
        started_at=datetime.now(UTC).isoformat(timespec="seconds"),
    )
    system: System

    async def startup() -> None:
        log.info("careweave %s ready (data in %s)", __version__, settings.data_dir)

    async def shutdown() -> None:
        await system.close()

    app = FhirApp(
        services,
        max_body_bytes=settings.max_body_bytes,
        base_url=settings.base_url,
        startup=startup,
        shutdown=shutdown,
        access_log=settings.access_log,
    )
    system = System(settings, defs, store, services, app)
    return system


def create_app() -> FhirApp:
    """ASGI application factory for the server processes (settings from CAREWEAVE_* variables)."""
    return build_system(from_environment()).app
