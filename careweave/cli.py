"""The ``careweave`` command: serve, tenant, and the tools around them. It only calls system."""

from __future__ import annotations

import asyncio
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
def serve(
    data_dir: Path | None,
    database: str | None,
    host: str | None,
    port: int | None,
    server: str | None,
    base_url: str | None,
    demo: bool | None,
    access_log: bool | None,
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
    )
    logging.basicConfig(
        level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s %(message)s"
    )
    os.environ.update(to_environment(settings))
    base = f"http://{settings.host}:{settings.port}"
    click.echo(f"careweave {__version__}: FHIR API at {base}/fhir  (metadata: {base}/fhir/metadata)")
    click.echo(f"  other tenants at {base}/t/<name>/fhir; data in {settings.data_dir.resolve()}")
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
    from careweave.system import build_system

    settings = _settings(data_dir=data_dir, database=database)

    async def run() -> None:
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
            ) as bar:
                task = bar.add_task("loading", read=0, rate=0.0)
                started = time.perf_counter()

                def progress(read: int, stored: int) -> None:
                    rate = read / max(time.perf_counter() - started, 1e-6)
                    bar.update(task, read=read, rate=rate)

                count = workers if workers is not None else max(0, (os.cpu_count() or 1) - 1)
                preparer = None
                if count > 0:
                    from careweave.loadworkers import PoolPreparer, WorkerConfig

                    custom = [(c.key, c.definition) for c in await system.store.custom_params(target)]
                    preparer = PoolPreparer(count, WorkerConfig(dict(target.settings), custom))
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
        path = "/fhir" if t.name == "default" else f"/t/{t.name}/fhir"
        click.echo(f"{t.name}\t{path}")


@tenant.command("remove")
@storage_options
@click.argument("name")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@_with_store
async def tenant_remove(store: Any, name: str, yes: bool) -> None:
    """Remove tenant NAME and every resource it holds."""
    if name == "default":
        raise click.ClickException("the default tenant cannot be removed")
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


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())


# [postgres] commands (migrate)

# [events] commands (worker, subscription dead letters and replay)

# [hl7] commands (mllp, hl7 send/route/replay/errors)

# [mpi] commands (mpi evaluate, review)
