"""The composition root: Settings -> definitions, store, services, the ASGI application.

Rules:
1. This is the only module that knows which backend and which implementations are in use.
2. Everything is built here and passed down; nothing is a module-level singleton.
3. Building the definitions (element model, search registry, validator) is the slow part of start-up
   (about a second); it happens once per process.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import ssl
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import orjson

from careweave import __version__
from careweave.errors import Issue
from careweave.events.admission import with_subscription_checks  # [events]
from careweave.events.service import EventService  # [events]
from careweave.events.setup import event_service, events_secret  # [events]
from careweave.fhir import definitions, ukcore
from careweave.fhir.elements import ElementModel
from careweave.fhir.fhirpath import FhirPathEngine
from careweave.fhir.validation import ProfileLibrary, Terminology, Validator
from careweave.gateway import Gateway, GatewayConfig, Hl7v2Api, serve_mllp, server_tls
from careweave.gateway.workers import PreparePool
from careweave.generate import DEMO, generate
from careweave.identity import identity_service
from careweave.interactions.context import Services, Validate, new_id
from careweave.interactions.jobs import JobRunner, JobSignal
from careweave.interactions.tenants import TenantDirectory, TenantSearch
from careweave.rest.app import FhirApp
from careweave.search.indexer import Indexer, code_systems_of
from careweave.search.registry import SearchParamRegistry
from careweave.settings import Settings, from_environment
from careweave.store import writes
from careweave.store.base import HistoryQuery, Store, Tenant, Transaction
from careweave.store.files import ExportFiles
from careweave.store.sql.sqlite import SqliteStore

__all__ = ["Definitions", "System", "build_system", "create_app", "load_definitions", "open_store"]

log = logging.getLogger("careweave")


@dataclass(frozen=True, slots=True)
class Definitions:
    """The R4 definitions, compiled: built once per process."""

    model: ElementModel
    search_params: SearchParamRegistry
    engine: FhirPathEngine
    compartments: dict[str, dict[str, tuple[str, ...]]]
    code_systems: dict[str, str]
    terminology: Terminology
    validator: Validator
    profiles: ProfileLibrary


def load_definitions() -> Definitions:
    resources = definitions.resources_of("profiles-resources")
    model = ElementModel.from_structure_definitions(definitions.resources_of("profiles-types") + resources)
    registry = SearchParamRegistry.from_definitions(definitions.resources_of("search-parameters"))
    compartments = {
        cd["code"]: {r["code"]: tuple(r.get("param", ())) for r in cd.get("resource", ()) if r.get("param")}
        for cd in resources
        if cd.get("resourceType") == "CompartmentDefinition"
    }
    code_systems = code_systems_of(model, definitions.resources_of("valuesets"))
    engine = FhirPathEngine(model)
    ukcore_package = ukcore.load_conformance()
    terminology = Terminology.from_definitions(model).extended(ukcore_package)
    validator = Validator(model, terminology, fhirpath=engine)
    profiles = validator.profile_library(ukcore_package)
    return Definitions(model, registry, engine, compartments, code_systems, terminology, validator, profiles)


def gateway_worker_parts() -> tuple[Validate, Indexer]:
    """[hl7] What each HL7 v2 gateway worker process builds once (gateway/workers.py)."""
    defs = load_definitions()
    return _validate(defs), Indexer(defs.search_params, defs.engine, defs.code_systems)


def mllp_tls(settings: Settings) -> ssl.SSLContext | None:
    """[hl7] The MLLP listener's TLS context from settings (None: plain TCP)."""
    if not settings.mllp_tls_cert:
        return None
    return server_tls(settings.mllp_tls_cert, settings.mllp_tls_key, settings.mllp_tls_client_ca)


def open_store(settings: Settings) -> Store:
    if settings.database.startswith(("postgres://", "postgresql://")):
        # [postgres] the PostgreSQL backend (imported here: psycopg loads only when it is used)
        from careweave.store.sql.postgres import PostgresStore

        return PostgresStore(
            settings.database,
            pool_size=settings.pg_pool_size,
            reader_threads=settings.reader_threads,
            migrate_on_start=settings.migrate_on_start,
        )
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
        wal_autocheckpoint=settings.sqlite_wal_autocheckpoint,
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


def _validate(defs: Definitions) -> Validate:
    """Base R4 rules always; the profiles a resource claims only where its tenant asks for it."""

    def validate(resource: dict[str, Any], tenant: Tenant) -> list[Issue]:
        if not tenant.setting("validate_profiles", False):
            return defs.validator.validate(resource)
        claimed = (
            resource.get("meta", {}).get("profile", []) if isinstance(resource.get("meta"), dict) else []
        )
        profiles, unknown = [], []
        for url in claimed if isinstance(claimed, list) else []:
            found = defs.profiles.profile(url) if isinstance(url, str) else None
            if found is None:
                unknown.append(
                    Issue(
                        "warning",
                        "not-supported",
                        f"profile {url} is not known to this server; not checked",
                        (f"{resource.get('resourceType')}.meta.profile",),
                    )
                )
            else:
                profiles.append(found)
        return defs.validator.validate(resource, profiles) + unknown

    return validate


def _expand(terminology: Terminology) -> Callable[[str], list[tuple[str | None, str]] | None]:
    """Codes of a value set the server holds, for the :in and :not-in search modifiers."""

    def expand(url: str) -> list[tuple[str | None, str]] | None:
        found = terminology.expansion(url)
        if found is None or not found.complete:
            return None
        return sorted(found.codes)

    return expand


@dataclass
class System:
    settings: Settings
    definitions: Definitions
    store: Store
    services: Services
    app: FhirApp
    jobs: JobRunner
    gateway: Gateway | None = None  # [hl7] the HL7 v2 gateway service
    events: EventService | None = None  # [events] subscriptions: dispatcher and delivery worker

    async def close(self) -> None:
        await self.store.close()


def build_system(settings: Settings, defs: Definitions | None = None) -> System:
    defs = defs or load_definitions()
    store = open_store(settings)
    indexer = Indexer(defs.search_params, defs.engine, defs.code_systems)
    tenants = TenantDirectory(store, settings.tenant_cache_seconds)
    search = TenantSearch(store, defs.search_params, indexer, defs.engine, defs.code_systems)
    # [events] the subscription dispatcher and delivery worker (run in startup when events_worker)
    events = event_service(
        settings, store, search.of, defs.model.resource_types, _expand(defs.terminology), defs.engine
    )
    signal = JobSignal()
    identity = identity_service(settings, store, indexer)  # [mpi] the master patient index
    services = Services(
        store=store,
        model=defs.model,
        search_params=defs.search_params,
        validate=with_subscription_checks(_validate(defs)),  # [events] Subscriptions careweave cannot serve
        tenants=tenants,
        search=search,
        expand=_expand(defs.terminology),
        compartments=defs.compartments,
        new_id=new_id,
        cursor_secret=_cursor_secret(settings),
        engine=defs.engine,
        default_count=settings.default_count,
        max_count=settings.max_count,
        files=ExportFiles(settings.data_dir / "exports"),
        wake_jobs=signal.set,
        wake_events=events.wake,  # [events]
        events_secret=events_secret(settings),  # [events]
        check_subscription=events.admit,  # [events] criteria and topic checked against the tenant's
        software_version=__version__,
        started_at=datetime.now(UTC).isoformat(timespec="seconds"),
        identity=identity,  # [mpi]
    )
    runner = JobRunner(services, signal)
    # [hl7] the HL7 v2 gateway: MLLP listener, POST /hl7v2, error queue
    gateway = Gateway(
        services,
        GatewayConfig(
            timezone=ZoneInfo(settings.hl7_timezone), route_cache_seconds=settings.tenant_cache_seconds
        ),
        pool=PreparePool(settings.hl7_workers, gateway_worker_parts) if settings.hl7_workers > 0 else None,
    )
    listeners: list[asyncio.Server] = []
    system: System

    stop_jobs = asyncio.Event()
    stop_events = asyncio.Event()  # [events]
    stop_mpi = asyncio.Event()  # [mpi]
    background: list[asyncio.Task[None]] = []

    async def startup() -> None:
        background.append(asyncio.create_task(runner.run(stop_jobs), name="careweave-jobs"))
        # [events] startup: the in-process delivery worker (without it: this process's websocket clients)
        if settings.events_worker:
            background.append(asyncio.create_task(events.run(stop_events), name="careweave-events"))
        else:
            background.append(asyncio.create_task(events.run_websocket(stop_events), name="careweave-ws"))
        # [hl7] startup: the MLLP listener when settings ask for one
        await gateway.start()
        if settings.mllp_port:
            tls = mllp_tls(settings)
            listeners.append(
                await serve_mllp(settings.mllp_host, settings.mllp_port, gateway.handle, ssl_context=tls)
            )
            log.info("HL7 v2 MLLP listener on %s:%d", settings.mllp_host, settings.mllp_port)
        # [mpi] startup: the matcher following the change log
        if settings.mpi_enabled:
            await identity.space()
            background.append(asyncio.create_task(identity.follow(stop_mpi), name="careweave-mpi"))
        if settings.demo:
            loaded = await load_demo(system)
            if loaded:
                log.info("demo data loaded: %d resources", loaded)
        log.info("careweave %s ready (data in %s)", __version__, settings.data_dir)

    async def shutdown() -> None:
        stop_jobs.set()
        # [events] shutdown
        stop_events.set()
        # [hl7] shutdown
        for listener in listeners:
            listener.close()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(listener.wait_closed(), 5)
        await gateway.close()
        # [mpi] shutdown
        stop_mpi.set()
        runner.wake()
        for task in background:
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.wait_for(task, 10)
        await system.close()

    app = FhirApp(
        services,
        max_body_bytes=settings.max_body_bytes,
        base_url=settings.base_url,
        startup=startup,
        shutdown=shutdown,
        access_log=settings.access_log,
        hl7v2=Hl7v2Api(gateway, max_body_bytes=settings.max_body_bytes),
        websocket=events.hub,  # [events]
    )
    system = System(settings, defs, store, services, app, runner, gateway)
    system.events = events  # [events]
    return system


# Reference targets first, so that a reader of the demo never meets a dangling reference.
_DEMO_ORDER = ("Organization", "Location", "Practitioner", "PractitionerRole", "Patient", "Encounter")


async def load_demo(system: System, chunk: int = 250) -> int:
    """Load the generator's demo population into an empty default tenant; returns how many
    resources were stored (0 when the tenant already holds data)."""
    store = system.store
    tenant = await store.tenant("default")
    if tenant is None or (await store.history(tenant, HistoryQuery(count=1))).entries:
        return 0
    loaded = 0
    with tempfile.TemporaryDirectory(prefix="careweave-demo-") as tmp:
        generate(replace(DEMO, formats=frozenset({"ndjson"})), Path(tmp))
        files = sorted(
            Path(tmp, "ndjson").glob("*.ndjson"),
            key=lambda f: (_DEMO_ORDER.index(f.stem) if f.stem in _DEMO_ORDER else len(_DEMO_ORDER), f.stem),
        )
        for path in files:
            batch: list[writes.Prepared] = []
            with path.open("rb") as lines:
                for line in lines:
                    resource = orjson.loads(line)
                    issues = [i for i in system.services.validate(resource, tenant) if i.is_error]
                    if issues:
                        log.warning(
                            "demo %s/%s rejected: %s",
                            resource.get("resourceType"),
                            resource.get("id"),
                            ", ".join(sorted({i.code for i in issues})),
                        )
                        continue
                    batch.append(
                        writes.Prepared(
                            resource["resourceType"],
                            resource,
                            system.services.search.base.indexer.index(resource),
                        )
                    )
                    if len(batch) >= chunk:
                        loaded += await _store_all(store, tenant, batch)
                        batch = []
            loaded += await _store_all(store, tenant, batch)
    return loaded


async def _store_all(store: Store, tenant: Tenant, batch: list[writes.Prepared]) -> int:
    def run(tx: Transaction) -> int:
        for prepared in batch:
            writes.update(tx, prepared, prepared.resource["id"])
        return len(batch)

    return await store.write(tenant, run) if batch else 0


def create_app() -> FhirApp:
    """ASGI application factory for the server processes (settings from CAREWEAVE_* variables)."""
    return build_system(from_environment()).app
