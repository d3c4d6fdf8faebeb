"""`python -m bench [crud] [--server uvicorn|granian] [--clients 16] [--seconds 10]`: prints a table."""

from __future__ import annotations

import json
import platform
import time
from pathlib import Path

import click
from rich.console import Console
from rich.table import Table


def machine() -> str:
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    import os

    return f"{os.cpu_count()} cores, {cpu}, Python {platform.python_version()}, {platform.system()}"


def _fmt(value: float | None, digits: int = 1) -> str:
    return "-" if value is None else f"{value:,.{digits}f}"


@click.group(invoke_without_command=True)
@click.pass_context
def main(ctx: click.Context) -> None:
    """careweave benchmarks. Without a command: crud with both servers."""
    if ctx.invoked_subcommand is None:
        for server in ("uvicorn", "granian"):
            ctx.invoke(crud, server=server)


@main.command()
@click.option("--server", type=click.Choice(["uvicorn", "granian"]), default="uvicorn")
@click.option("--clients", type=int, default=16)
@click.option("--seconds", type=int, default=10)
def crud(server: str, clients: int, seconds: int) -> None:
    """Create, read by id and update over HTTP, beside the bare-ASGI and SQLite limits."""
    from bench.crud import run

    rows = run(server, clients, seconds)
    table = Table(title=f"careweave CRUD, {server}, {clients} clients, {seconds}s each ({machine()})")
    for column in ("scenario", "req/s", "p50 ms", "p99 ms", "errors", "limit", "limit rate", "ratio"):
        table.add_column(column, justify="left" if column in ("scenario", "limit") else "right")
    for r in rows:
        table.add_row(r.name, _fmt(r.rate, 0), _fmt(r.p50_ms, 2), _fmt(r.p99_ms, 2), str(r.errors),
                      r.limit_name, _fmt(r.limit_rate, 0),
                      "-" if r.ratio is None else f"{r.ratio:.0%}")
    Console(width=200).print(table)
    out = Path(__file__).parent / "results"
    out.mkdir(exist_ok=True)
    (out / f"crud-{server}-{int(time.time())}.json").write_text(json.dumps(
        {"machine": machine(), "server": server, "clients": clients, "seconds": seconds,
         "rows": [r.__dict__ for r in rows]}, indent=2))


@main.command()
@click.option("--patients", type=int, default=20000, help="People to generate (20,000: ~1M resources).")
@click.option("--seconds", type=int, default=8)
def search(patients: int, seconds: int) -> None:
    """Eight kinds of search on a generated population, beside hand-written SQL."""
    from bench.search import run, save, table

    result = run(patients, seconds)
    table(result, Console(width=200).print)
    save(result)


@main.command()
@click.option("--patients", type=int, default=20000, help="People to generate (20,000: ~1M resources).")
def export(patients: int) -> None:
    """System-level Bulk Data $export of the search data set: rate and the server's peak memory."""
    from bench.export import run

    r = run(patients)
    table = Table(title=f"careweave $export ({machine()})")
    for column in ("resources", "files", "seconds", "resources/s", "RSS before MB", "RSS 1st quarter MB",
                   "RSS last quarter MB", "peak RSS MB",
                   "limit: raw SQLite to NDJSON/s", "ratio"):
        table.add_column(column, justify="right")
    table.add_row(f"{r['resources']:,}", str(r["files"]), _fmt(r["seconds"]), _fmt(r["rate"], 0),
                  _fmt(r["rss_before_mb"], 0), _fmt(r["rss_first_quarter_mb"], 0),
                  _fmt(r["rss_last_quarter_mb"], 0), _fmt(r["peak_rss_mb"], 0), _fmt(r["limit_rate"], 0),
                  f"{r['rate'] / r['limit_rate']:.0%}")
    Console(width=200).print(table)
    out = Path(__file__).parent / "results"
    out.mkdir(exist_ok=True)
    (out / f"export-{int(time.time())}.json").write_text(json.dumps({"machine": machine(), **r}, indent=2))



@main.command()
@click.option("--patients", type=int, default=300, help="People to generate (300: ~16k resources).")
@click.option("--seconds", type=int, default=5, help="Seconds per measured scenario.")
@click.option("--clients", type=int, default=16)
@click.option("--workers", default="1,2,4", help="Server worker processes for the mixed workload.")
def backends(patients: int, seconds: int, clients: int, workers: str) -> None:
    """SQLite and PostgreSQL side by side: ingest, read, search, mixed load at 1/2/4 workers."""
    from bench.backends import run, save, table

    result = run(patients, seconds, clients, tuple(int(w) for w in workers.split(",")))
    table(result, Console(width=200).print,
          f"careweave storage backends, {patients} patients, {clients} clients ({machine()})")
    save(result)



if __name__ == "__main__":
    main()
