"""The ``careweave`` command: serve, tenant, and the tools around them. It only calls system."""

from __future__ import annotations

import asyncio
import gc
import logging
import os
import re
import sys
import time
from collections.abc import Callable, Coroutine
from functools import wraps
from pathlib import Path
from typing import Any, TypeVar

import click

from careweave import __version__
from careweave.errors import CareweaveError
from careweave.generate import PRESETS
from careweave.settings import TENANT_SETTINGS, Settings, from_environment, to_environment
from careweave.system import open_store

T = TypeVar("T")
F = TypeVar("F", bound=Callable[..., Any])

_TENANT_NAME = re.compile(r"[a-z0-9][a-z0-9\-]{0,62}\Z")


def storage_options(fn: F) -> F:
    """--data and --database, shared by every command that opens the store."""
    fn = click.option(
        "--database",
        default=None,
        help="Database URL (default: SQLite in the data directory). Env: CAREWEAVE_DATABASE.",
    )(fn)
    fn = click.option(
        "--data",
        "data_dir",
        type=click.Path(path_type=Path, file_okay=False),
        default=None,
        help="Data directory (default ./data). Env: CAREWEAVE_DATA_DIR.",
    )(fn)
    return fn


def _settings(**overrides: Any) -> Settings:
    try:
        return from_environment(overrides)
    except ValueError as exc:
        raise click.UsageError(str(exc)) from None


def _run(coro: Coroutine[Any, Any, T]) -> T:
    try:
        return asyncio.run(coro)
    except CareweaveError as exc:
        raise click.ClickException(exc.diagnostics or exc.meaning) from None


def _with_store(fn: Callable[..., Coroutine[Any, Any, T]]) -> Callable[..., T]:
    @wraps(fn)
    def wrapper(data_dir: Path | None, database: str | None, **kwargs: Any) -> T:
        settings = _settings(data_dir=data_dir, database=database)

        async def run() -> T:
            store = open_store(settings)
            try:
                return await fn(store, **kwargs)
            finally:
                await store.close()

        return _run(run())

    return wrapper


@click.group()
@click.version_option(__version__, prog_name="careweave")
def main() -> None:
    """careweave: a FHIR R4 backbone for health and care systems."""


@main.command()
@storage_options
@click.option("--host", default=None, help="Address to listen on (default 127.0.0.1).")
@click.option("--port", type=int, default=None, help="Port to listen on (default 8080).")
@click.option(
    "--server",
    type=click.Choice(["uvicorn", "granian"]),
    default=None,
    help="ASGI server (default uvicorn).",
)
@click.option("--base-url", default=None, help="Public base URL, if behind a proxy.")
@click.option("--demo/--no-demo", default=None, help="Load demo data into an empty server.")
@click.option("--access-log/--no-access-log", default=None, help="One log line per request.")
@click.option("--mllp-port", type=int, default=None, help="Also listen for HL7 v2 over MLLP on this port.")
def serve(
    data_dir: Path | None,
    database: str | None,
    host: str | None,
    port: int | None,
    server: str | None,
    base_url: str | None,
    demo: bool | None,
    access_log: bool | None,
    mllp_port: int | None,
) -> None:
    """Serve the FHIR API at http://HOST:PORT/fhir (other tenants at /t/NAME/fhir)."""
    settings = _settings(
        data_dir=data_dir,
        database=database,
        host=host,
        port=port,
        server=server,
        base_url=base_url,
        demo=demo,
        access_log=access_log,
        mllp_port=mllp_port,
    )
    logging.basicConfig(
        level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s %(message)s"
    )
    os.environ.update(to_environment(settings))
    base = f"http://{settings.host}:{settings.port}"
    click.echo(f"careweave {__version__}: FHIR API at {base}/fhir  (metadata: {base}/fhir/metadata)")
    click.echo(f"  other tenants at {base}/t/<name>/fhir; data in {settings.data_dir.resolve()}")
    if settings.mllp_port:  # [hl7]
        click.echo(f"  HL7 v2: MLLP on {settings.mllp_host}:{settings.mllp_port}, POST {base}/hl7v2")
    if settings.server == "granian":
        from granian import Granian
        from granian.constants import Interfaces, Loops

        Granian(
            "careweave.system:create_app",
            address=settings.host,
            port=settings.port,
            interface=Interfaces.ASGI,
            factory=True,
            loop=Loops.uvloop,
        ).serve()
    else:
        import uvicorn

        uvicorn.run(
            "careweave.system:create_app",
            factory=True,
            host=settings.host,
            port=settings.port,
            loop="uvloop",
            http="httptools",
            access_log=False,
            log_level=settings.log_level,
            lifespan="on",
        )


@main.command()
@click.argument("out_dir", type=click.Path(path_type=Path, file_okay=False))
@click.option(
    "--preset",
    type=click.Choice(sorted(PRESETS)),
    default=None,
    help="Start from a preset (demo, small, hard, million); other options override it.",
)
@click.option("--patients", type=int, default=None, help="Real people to generate.")
@click.option("--organisations", type=int, default=None, help="GP practices and trusts.")
@click.option("--seed", type=int, default=None, help="Random seed: the same seed, the same bytes.")
@click.option(
    "--difficulty",
    type=click.Choice(["easy", "hard"]),
    default=None,
    help="How often records of one person disagree.",
)
@click.option("--formats", default=None, help="Comma-separated: ndjson, bundles, hl7v2 (default all).")
def generate(
    out_dir: Path,
    preset: str | None,
    patients: int | None,
    organisations: int | None,
    seed: int | None,
    difficulty: str | None,
    formats: str | None,
) -> None:
    """Write a synthetic UK population to OUT_DIR: NDJSON, transaction Bundles, HL7 v2 feeds and
    a ground-truth file of who is who."""
    from dataclasses import replace

    from rich.progress import Progress

    from careweave.generate import GeneratorConfig
    from careweave.generate import generate as run_generator

    base = PRESETS[preset] if preset else GeneratorConfig()
    changes: dict[str, Any] = {
        k: v
        for k, v in {
            "patients": patients,
            "organisations": organisations,
            "seed": seed,
            "difficulty": difficulty,
        }.items()
        if v is not None
    }
    if formats is not None:
        changes["formats"] = frozenset(f.strip() for f in formats.split(",") if f.strip())
    try:
        config = replace(base, **changes)
    except ValueError as exc:
        raise click.UsageError(str(exc)) from None
    with Progress() as progress:
        task = progress.add_task("generating", total=config.patients)

        def advance(done: int, total: int) -> None:
            progress.update(task, completed=done, total=total)

        summary = run_generator(config, out_dir, progress=advance)
    click.echo(
        f"wrote {summary.total_resources} resources for {summary.patients} patient records "
        f"({summary.persons} people, {summary.organisations} organisations) to {out_dir}"
    )


@main.command()
@storage_options
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True, path_type=Path))
@click.option("--tenant", "tenant_name", default="default", help="Tenant to load into.")
@click.option(
    "--report",
    "report_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=Path("load-rejected.ndjson"),
    show_default=True,
    help="Where rejected resources are written, one JSON line each with the reason.",
)
@click.option(
    "--workers",
    type=int,
    default=None,
    help="Processes validating and indexing in parallel (default: cores - 1; 0: none).",
)
def load(
    data_dir: Path | None,
    database: str | None,
    paths: tuple[Path, ...],
    tenant_name: str,
    report_path: Path,
    workers: int | None,
) -> None:
    """Load NDJSON files, Bundles and folders of them into a tenant (idempotent, streaming)."""
    from rich.progress import Progress, TextColumn, TimeElapsedColumn

    from careweave.interactions.loading import load_paths
    from careweave.loadworkers import PoolPreparer, WorkerConfig, freeze_heap
    from careweave.system import build_system

    settings = _settings(data_dir=data_dir, database=database)

    async def run() -> None:
        gc.disable()  # building the system: nothing to collect (freeze_heap turns it on)
        system = build_system(settings)
        try:
            target = await system.store.tenant(tenant_name)
            if target is None:
                raise click.ClickException(f"no tenant called {tenant_name}")
            with Progress(
                TextColumn("{task.description}"),
                TextColumn("{task.fields[read]:,} read"),
                TextColumn("{task.fields[rate]:,.0f}/s"),
                TimeElapsedColumn(),
                refresh_per_second=2,  # drawing takes the GIL from the writer
            ) as bar:
                task = bar.add_task("loading", read=0, rate=0.0)
                started = time.perf_counter()

                def progress(read: int, stored: int) -> None:
                    rate = read / max(time.perf_counter() - started, 1e-6)
                    bar.update(task, read=read, rate=rate)

                count = workers if workers is not None else max(0, (os.cpu_count() or 1) - 1)
                preparer = None
                if count > 0:
                    custom = [(c.key, c.definition) for c in await system.store.custom_params(target)]
                    preparer = PoolPreparer(count, WorkerConfig(dict(target.settings), custom))
                freeze_heap()  # the parent's collections would compete with its writer
                try:
                    report = await load_paths(
                        system.services,
                        target,
                        list(paths),
                        report_path=report_path,
                        progress=progress,
                        preparer=preparer,
                    )
                finally:
                    if preparer is not None:
                        preparer.close()
        finally:
            await system.close()
        click.echo(
            f"{report.read:,} resources from {report.files} files in {report.seconds:.1f} s "
            f"({report.rate:,.0f}/s): {report.stored:,} stored, {report.unchanged:,} "
            f"unchanged, {report.rejected:,} rejected"
        )
        if report.rejected:
            click.echo(f"rejected resources and reasons: {report_path}")

    _run(run())


@main.group()
def tenant() -> None:
    """Create, list and remove tenants (organisations sharing this deployment)."""


@tenant.command("create")
@storage_options
@click.argument("name")
@_with_store
async def tenant_create(store: Any, name: str) -> None:
    """Create tenant NAME, served at /t/NAME/fhir (at once, also by a running server)."""
    if not _TENANT_NAME.match(name):
        raise click.BadParameter("use lower-case letters, digits and hyphens (at most 63)", param_hint="NAME")
    created = await store.create_tenant(name)
    click.echo(f"created tenant {created.name}: /t/{created.name}/fhir")


@tenant.command("list")
@storage_options
@_with_store
async def tenant_list(store: Any) -> None:
    """List the tenants."""
    for t in await store.tenants():
        if t.name.startswith("_"):
            continue  # reserved (the MPI's identity space): not an organisation
        path = "/fhir" if t.name == "default" else f"/t/{t.name}/fhir"
        click.echo(f"{t.name}\t{path}")


@tenant.command("remove")
@storage_options
@click.argument("name")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@_with_store
async def tenant_remove(store: Any, name: str, yes: bool) -> None:
    """Remove tenant NAME and every resource it holds."""
    if name == "default" or name.startswith("_"):
        raise click.ClickException(f"the {name} tenant is reserved and cannot be removed")
    if not yes and not click.confirm(f"Remove tenant {name} and all its data?"):
        raise click.Abort()
    if not await store.remove_tenant(name):
        raise click.ClickException(f"no tenant called {name}")
    click.echo(f"removed tenant {name}")


@tenant.command("set")
@storage_options
@click.argument("name")
@click.argument("key", type=click.Choice([s.name for s in TENANT_SETTINGS]))
@click.argument("value")
@_with_store
async def tenant_set(store: Any, name: str, key: str, value: str) -> None:
    """Set one of tenant NAME's settings (see docs/settings.md), e.g. validate_profiles true."""
    if name.startswith("_"):
        raise click.ClickException(f"the {name} tenant is reserved")
    setting = next(s for s in TENANT_SETTINGS if s.name == key)
    try:
        parsed = setting.parse(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="VALUE") from None
    current = await store.tenant(name)
    if current is None:
        raise click.ClickException(f"no tenant called {name}")
    updated = await store.update_tenant_settings(name, {**current.settings, key: parsed})
    click.echo(f"{name}: {key} = {updated.settings[key]}")


@tenant.command("show")
@storage_options
@click.argument("name")
@_with_store
async def tenant_show(store: Any, name: str) -> None:
    """Show tenant NAME's settings."""
    current = await store.tenant(name)
    if current is None:
        raise click.ClickException(f"no tenant called {name}")
    for setting in TENANT_SETTINGS:
        click.echo(f"{setting.name} = {current.settings.get(setting.name, setting.default)}")


# [postgres] commands (migrate)
@main.command()
@storage_options
@click.option("--check", is_flag=True, help="Only list pending migrations; exit 1 if there are any.")
def migrate(data_dir: Path | None, database: str | None, check: bool) -> None:
    """Create or upgrade the database schema (numbered migrations; safe to run from several
    processes at once). SQLite databases are migrated whenever they are opened."""
    settings = _settings(data_dir=data_dir, database=database)
    if not settings.database.startswith(("postgres://", "postgresql://")):
        _run(_open_and_close(settings.with_overrides(migrate_on_start=True)))
        click.echo("SQLite: the schema is current (it is migrated whenever the database is opened)")
        return
    from careweave.store.sql.pg_admin import apply_migrations

    try:
        pending, applied = apply_migrations(settings.database, dry_run=check)
    except CareweaveError as exc:
        raise click.ClickException(exc.diagnostics or exc.meaning) from None
    if check:
        click.echo("pending: " + (", ".join(pending) or "none"))
        if pending:
            sys.exit(1)
        return
    click.echo("applied: " + (", ".join(applied) or "nothing (the schema is current)"))


async def _open_and_close(settings: Settings) -> None:
    store = open_store(settings)
    await store.close()


# [events] commands (worker, subscription dead letters and replay)


def _with_system(fn: Callable[..., Coroutine[Any, Any, T]]) -> Callable[..., T]:
    """[events] Run ``fn(system, ...)`` with a built system (no HTTP server)."""

    @wraps(fn)
    def wrapper(data_dir: Path | None, database: str | None, **kwargs: Any) -> T:
        from careweave.system import build_system

        settings = _settings(data_dir=data_dir, database=database)

        async def run() -> T:
            system = build_system(settings)
            try:
                return await fn(system, **kwargs)
            finally:
                await system.close()

        return _run(run())

    return wrapper


@main.command()
@storage_options
@click.option(
    "--base-url", default=None, help="Public base URL the notifications name. Env: CAREWEAVE_BASE_URL."
)
def worker(data_dir: Path | None, database: str | None, base_url: str | None) -> None:
    """Run subscription delivery (dispatcher and delivery worker) as its own process; Ctrl-C stops it.

    Several may run beside `careweave serve` (start the server with CAREWEAVE_EVENTS_WORKER=false to
    leave delivery to these): they share the queue through the database."""
    import signal

    from careweave.system import build_system

    settings = _settings(data_dir=data_dir, database=database, base_url=base_url)
    logging.basicConfig(
        level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s %(message)s"
    )

    async def run() -> None:
        system = build_system(settings)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        try:
            assert system.events is not None
            click.echo(f"careweave {__version__}: delivering notifications (data in {settings.data_dir})")
            await system.events.run(stop, websocket=False)
        finally:
            await system.close()

    _run(run())


@main.group()
def subscription() -> None:
    """Subscriptions: delivery status, dead letters and replay."""


def _tenant_option(fn: F) -> F:
    return click.option("--tenant", "tenant_name", default="default", help="The subscriptions' tenant.")(fn)


async def _subscription_tenant(system: Any, name: str) -> Any:
    found = await system.store.tenant(name)
    if found is None:
        raise click.ClickException(f"no tenant called {name}")
    return found


@subscription.command("status")
@storage_options
@_tenant_option
@click.argument("subscription_id", required=False)
@_with_system
async def subscription_status(system: Any, tenant_name: str, subscription_id: str | None) -> None:
    """Each subscription's delivery status: events so far, notifications pending, done and dead."""
    from careweave.store.sql import events as events_sql

    tenant = await _subscription_tenant(system, tenant_name)
    rows = await system.store.sql_read(lambda sql: events_sql.subscriptions(sql, tenant.key))
    click.echo("subscription\tstatus\tchannel\tevents\tpending\tdone\tdead\terror")
    for row in rows:
        if subscription_id is not None and row.sid != subscription_id:
            continue
        counts = await system.store.sql_read(lambda sql, skey=row.skey: events_sql.counts(sql, skey))
        click.echo(
            f"{row.sid}\t{row.status}\t{row.channel}\t{row.last_number}\t{counts.get('pending', 0)}\t"
            f"{counts.get('done', 0)}\t{counts.get('dead', 0)}\t{row.error or ''}"
        )


@subscription.command("dead-letters")
@storage_options
@_tenant_option
@click.argument("subscription_id", required=False)
@_with_system
async def subscription_dead_letters(system: Any, tenant_name: str, subscription_id: str | None) -> None:
    """Notifications whose retries gave up (all subscriptions of the tenant, or one)."""
    from careweave.store.sql import events as events_sql

    tenant = await _subscription_tenant(system, tenant_name)
    subs = {
        r.skey: r.sid
        for r in await system.store.sql_read(lambda sql: events_sql.subscriptions(sql, tenant.key))
    }
    dead = await system.store.sql_read(
        lambda sql: events_sql.list_deliveries(sql, tenant.key, state="dead", limit=100_000)
    )
    click.echo("subscription\tnotification\tkind\tevent\tattempts\terror")
    for d in dead:
        sid = subs.get(d.skey, "?")
        if subscription_id is None or sid == subscription_id:
            number = d.first_number if d.kind == "event" else "-"
            click.echo(f"{sid}\t{d.uuid}\t{d.kind}\t{number}\t{d.attempts}\t{d.last_error or ''}")


@subscription.command("replay")
@storage_options
@_tenant_option
@click.argument("subscription_id")
@click.option(
    "--notification", "notifications", multiple=True, help="Only this notification id (repeatable)."
)
@_with_system
async def subscription_replay(
    system: Any, tenant_name: str, subscription_id: str, notifications: tuple[str, ...]
) -> None:
    """Queue a subscription's dead notifications again (oldest first) and make it active again."""
    import time as _time

    from careweave.interactions.operations.subscription import replay_job
    from careweave.store.sql import events as events_sql

    tenant = await _subscription_tenant(system, tenant_name)
    row = await system.store.sql_read(lambda sql: events_sql.subscription(sql, tenant.key, subscription_id))
    if row is None:
        raise click.ClickException(f"no notifications for Subscription/{subscription_id} in {tenant_name}")
    indexer = (await system.services.search.of(tenant)).indexer
    job = replay_job(
        row.skey, subscription_id, list(notifications), _time.time_ns() // 1_000_000, indexer.index
    )
    count = await system.store.sql_write_tenant(tenant, job)
    click.echo(f"Subscription/{subscription_id}: {count} notification(s) queued again")


# [hl7] commands (mllp, hl7 send/route/replay/errors)


def _with_gateway(fn: Callable[..., Coroutine[Any, Any, T]]) -> Callable[..., T]:
    """Run ``fn(system, ...)`` with a built system (the gateway needs validation and indexing)."""

    @wraps(fn)
    def wrapper(data_dir: Path | None, database: str | None, **kwargs: Any) -> T:
        from careweave.system import build_system

        settings = _settings(data_dir=data_dir, database=database)

        async def run() -> T:
            system = build_system(settings)
            try:
                return await fn(system, **kwargs)
            finally:
                await system.close()

        return _run(run())

    return wrapper


def _address(value: str) -> tuple[str, int]:
    host, _, port = value.rpartition(":")
    if not host or not port.isdigit():
        raise click.BadParameter(f"use HOST:PORT, not {value!r}")
    return host, int(port)


@main.command()
@storage_options
@click.option("--host", default=None, help="Address to listen on (default 127.0.0.1).")
@click.option("--port", type=int, default=None, help="Port to listen on (default 2575).")
@click.option("--tls-cert", default=None, help="PEM certificate chain: MLLP over TLS.")
@click.option("--tls-key", default=None, help="PEM private key of --tls-cert (default: in that file).")
@click.option("--tls-client-ca", default=None, help="PEM CA file: require client certificates it signed.")
def mllp(
    data_dir: Path | None,
    database: str | None,
    host: str | None,
    port: int | None,
    tls_cert: str | None,
    tls_key: str | None,
    tls_client_ca: str | None,
) -> None:
    """Run the HL7 v2 MLLP listener alone (no HTTP API); stop it with Ctrl-C."""
    import signal

    from careweave.gateway import serve_mllp
    from careweave.system import build_system, mllp_tls

    settings = _settings(
        data_dir=data_dir, database=database, mllp_host=host, mllp_port=port,
        mllp_tls_cert=tls_cert, mllp_tls_key=tls_key, mllp_tls_client_ca=tls_client_ca,
    )  # fmt: skip
    try:
        tls = mllp_tls(settings)
    except (OSError, ValueError) as exc:  # ssl.SSLError is an OSError
        raise click.UsageError(f"cannot use the TLS certificate or key: {exc}") from None
    logging.basicConfig(
        level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s %(message)s"
    )

    async def run() -> None:
        system = build_system(settings)
        gateway = system.gateway
        assert gateway is not None
        try:
            await gateway.start()
            listen_port = settings.mllp_port or 2575
            server = await serve_mllp(settings.mllp_host, listen_port, gateway.handle, ssl_context=tls)
            secure = " (TLS)" if tls is not None else ""
            click.echo(f"careweave {__version__}: HL7 v2 MLLP{secure} on {settings.mllp_host}:{listen_port}")
            stop = asyncio.Event()
            for sig in (signal.SIGINT, signal.SIGTERM):
                asyncio.get_running_loop().add_signal_handler(sig, stop.set)
            await stop.wait()
            server.close()
            await gateway.close()
        finally:
            await system.close()

    _run(run())


@main.group()
def hl7() -> None:
    """The HL7 v2 gateway: send files, route facilities to tenants, the error queue and replay."""


@hl7.command("send")
@click.argument("files", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False))
@click.option("--to", "to", required=True, help="HOST:PORT of an MLLP listener.")
def hl7_send(files: tuple[str, ...], to: str) -> None:
    """Send the messages in FILES (one or many per file; a batch file as one batch) and print
    each ACK; the exit status is 1 when any was not accepted."""
    from careweave.gateway import send_messages
    from careweave.hl7v2 import is_batch

    host, port = _address(to)
    payloads: list[bytes] = []
    for name in files:
        data = Path(name).read_bytes()
        payloads.extend([data] if is_batch(data) else _split_messages(data))
    acks = _run(send_messages(host, port, payloads))
    refused = 0
    for ack in acks:
        for code, control, text in _parse_acks(ack):
            refused += code not in ("AA", "CA")
            click.echo(f"{control}\t{code}" + (f"\t{text}" if text else ""))
    if refused:
        raise SystemExit(1)


def _split_messages(data: bytes) -> list[bytes]:
    """The messages of a file: each starts at an MSH segment (CR, LF or CRLF line ends)."""
    lines = data.replace(b"\r\n", b"\r").replace(b"\n", b"\r").split(b"\r")
    messages: list[list[bytes]] = []
    for line in lines:
        if line.lstrip(b"\xef\xbb\xbf").startswith(b"MSH") or not messages:
            messages.append([])
        if line.strip():
            messages[-1].append(line)
    return [b"\r".join(m) + b"\r" for m in messages if m]


def _parse_acks(ack: bytes) -> list[tuple[str, str, str]]:
    """(MSA-1, MSA-2, first ERR text) of each ACK in a reply (one ACK, or a batch of them)."""
    from careweave.hl7v2 import is_batch, parse, split_batch

    out = []
    for one in split_batch(ack).messages if is_batch(ack) else [ack]:
        message = parse(one)
        msa, err = message.segment("MSA"), message.segment("ERR")
        text = (err.get(8) or err.get(1, 4, 2)) if err is not None else ""
        out.append((msa.get(1) if msa else "?", msa.get(2) if msa else "?", text))
    return out


@hl7.command("route")
@storage_options
@click.argument("facility")
@click.argument("tenant_name", metavar="TENANT")
@click.option("--ack-to", default=None, help="HOST:PORT to send enhanced-mode application ACKs to.")
@_with_gateway
async def hl7_route(system: Any, facility: str, tenant_name: str, ack_to: str | None) -> None:
    """Send messages from sending facility FACILITY (MSH-4) to TENANT."""
    route = await system.gateway.set_route(facility, tenant_name, _address(ack_to) if ack_to else None)
    click.echo(f"{route.facility} -> {tenant_name}")


@hl7.command("routes")
@storage_options
@_with_gateway
async def hl7_routes(system: Any) -> None:
    """List the routes (unrouted facilities go to the default tenant)."""
    for route, name in await system.gateway.routes():
        ack = f"\tACKs to {route.ack_host}:{route.ack_port}" if route.ack_host else ""
        click.echo(f"{route.facility}\t{name}{ack}")


@hl7.command("unroute")
@storage_options
@click.argument("facility")
@_with_gateway
async def hl7_unroute(system: Any, facility: str) -> None:
    """Remove FACILITY's route (its messages go to the default tenant again)."""
    if not await system.gateway.remove_route(facility):
        raise click.ClickException(f"no route for {facility}")
    click.echo(f"removed the route of {facility.strip().upper()}")


async def _hl7_tenants(system: Any, name: str | None) -> list[Any]:
    if name is None:
        return list(await system.store.tenants())
    found = await system.store.tenant(name)
    if found is None:
        raise click.ClickException(f"no tenant called {name}")
    return [found]


@hl7.command("errors")
@storage_options
@click.option("--tenant", "tenant_name", default=None, help="Only this tenant (default: all).")
@click.option("--status", default="error,rejected", show_default=True, help="Statuses to list.")
@click.option("--limit", type=int, default=100, show_default=True)
@_with_gateway
async def hl7_errors(system: Any, tenant_name: str | None, status: str, limit: int) -> None:
    """List the error queue: messages that could not be mapped, validated or read."""
    statuses = tuple(s for s in status.split(",") if s)
    for tenant in await _hl7_tenants(system, tenant_name):
        for row in await system.gateway.messages(tenant, statuses, None, limit):
            fields = (row.id, tenant.name, row.status, row.kind, row.control_id, row.reason or "")
            click.echo("\t".join(map(str, fields)))


async def _find_message(system: Any, id: int, tenant_name: str | None) -> tuple[Any, Any]:
    for tenant in await _hl7_tenants(system, tenant_name):
        try:
            return tenant, await system.gateway.message(tenant, id)
        except CareweaveError:
            continue
    raise click.ClickException(f"no HL7 v2 message {id}")


@hl7.command("show")
@storage_options
@click.argument("id", type=int)
@click.option("--tenant", "tenant_name", default=None, help="The message's tenant (default: any).")
@_with_gateway
async def hl7_show(system: Any, id: int, tenant_name: str | None) -> None:
    """Show message ID: status, reason, its text and the ACK it was answered with."""
    tenant, row = await _find_message(system, id, tenant_name)
    click.echo(f"id {row.id} in {tenant.name}: {row.status} ({row.kind} {row.control_id} from "
               f"{row.sender}/{row.facility}, {row.attempts} attempts, via {row.source})")  # fmt: skip
    if row.reason:
        click.echo(f"reason: {row.reason}")
    for title, data in (("message", row.raw), ("original", row.original), ("reply", row.reply),
                        ("application ACK", row.app_ack)):  # fmt: skip
        if data:
            click.echo(f"--- {title}\n" + data.decode("utf-8", "replace").replace("\r", "\n").rstrip())


@hl7.command("replay")
@storage_options
@click.argument("ids", nargs=-1, required=True, type=int)
@click.option("--tenant", "tenant_name", default=None, help="The messages' tenant (default: any).")
@click.option(
    "--file",
    "corrected",
    default=None,
    type=click.Path(exists=True, dir_okay=False),
    help="A corrected text for the message (one ID only).",
)
@_with_gateway
async def hl7_replay(
    system: Any, ids: tuple[int, ...], tenant_name: str | None, corrected: str | None
) -> None:
    """Process messages IDS again (after a mapping fix, or with --file's corrected text)."""
    if corrected is not None and len(ids) != 1:
        raise click.UsageError("--file replaces the text of one message: give one ID")
    failed = 0
    for id in ids:
        tenant, _ = await _find_message(system, id, tenant_name)
        row = await system.gateway.replay(tenant, id, Path(corrected).read_bytes() if corrected else None)
        failed += row.status != "processed"
        reason = f"\t{row.reason}" if row.reason and row.status != "processed" else ""
        click.echo(f"{row.id}\t{row.status}{reason}")
    if failed:
        raise SystemExit(1)


@hl7.command("acks")
@storage_options
@click.option("--tenant", "tenant_name", default=None, help="Only this tenant (default: all).")
@click.option("--state", default="failed,pending", show_default=True, help="Application ACK states.")
@click.option("--limit", type=int, default=100, show_default=True)
@_with_gateway
async def hl7_acks(system: Any, tenant_name: str | None, state: str, limit: int) -> None:
    """List enhanced-mode application ACKs by delivery state: id, tenant, state, attempts, error."""
    states = tuple(s for s in state.split(",") if s)
    for tenant in await _hl7_tenants(system, tenant_name):
        for row in await system.gateway.messages(tenant, (), None, limit, states):
            delivery = await system.gateway.ack_delivery(tenant, row.id)
            attempts, last = (delivery.attempts, delivery.last_error or "") if delivery else (0, "")
            fields = (row.id, tenant.name, row.app_ack_state, attempts, row.kind, row.control_id, last)
            click.echo("\t".join(map(str, fields)))


@hl7.command("resend-ack")
@storage_options
@click.argument("ids", nargs=-1, required=True, type=int)
@click.option("--tenant", "tenant_name", default=None, help="The messages' tenant (default: any).")
@_with_gateway
async def hl7_resend_ack(system: Any, ids: tuple[int, ...], tenant_name: str | None) -> None:
    """Send the application ACKs of messages IDS again (exit 1 if one is not delivered now)."""
    failed = 0
    for id in ids:
        tenant, _ = await _find_message(system, id, tenant_name)
        try:
            row = await system.gateway.resend_ack(tenant, id)
        except CareweaveError as exc:
            raise click.ClickException(str(exc)) from exc
        failed += row.app_ack_state != "sent"
        click.echo(f"{row.id}\t{row.app_ack_state}")
    if failed:
        raise SystemExit(1)


# [mpi] commands (mpi evaluate, review)
def _mpi_commands() -> click.Group:
    import contextlib
    from collections.abc import AsyncIterator

    from careweave.identity.commands import mpi_group
    from careweave.identity.service import IdentityService

    @contextlib.asynccontextmanager
    async def open_identity(data_dir: Path | None, database: str | None) -> AsyncIterator[IdentityService]:
        from careweave.system import build_system

        system = build_system(_settings(data_dir=data_dir, database=database))
        try:
            assert system.services.identity is not None
            yield system.services.identity
        finally:
            await system.close()

    return mpi_group(open_identity)


main.add_command(_mpi_commands())


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
