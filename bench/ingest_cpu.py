"""CPU per resource on the write path: validation, index extraction, and the whole bulk load.

Run: ``.venv/bin/python bench/ingest_cpu.py /tmp/cwA/g1k/ndjson [--repeat 3] [--cli]``
(make the data with ``careweave generate --patients 1000 --formats ndjson --seed 1 OUT``).

Everything is CPU time (``time.process_time``: every thread of this process, the SQLite writer
included), so the figures hold on a busy machine where wall-clock rates do not:

1. validate: ``services.validate(resource, tenant)``, the call the loader makes per resource;
2. index: the tenant's ``Indexer.index(resource)``, likewise;
3. load: ``load_paths`` (the ``careweave load --workers 0`` path: read, parse, references,
   validate, index, write) of each NDJSON file in turn into a fresh data directory;
4. ``--cli``: the real ``careweave load --workers 0`` and ``--workers 1`` in a subprocess, with the
   wall-clock rate it reports, the CPU of its own process (the parent: reading, the event loop, the
   SQLite writer; rusage of itself) and that of its worker processes (rusage of its children);
5. ``--writer``: the SQLite writer alone (what the parent of ``--workers 1`` spends per resource
   apart from start-up): every resource prepared first, then written as the loader writes them
   (``WRITE_SIZE`` resources per write job, three jobs in flight) into a fresh store, and loaded
   again (all unchanged); beside it the limit, the raw insert of the same rows (resource, history,
   index and full-text rows, precomputed) with the store's statements, in transactions of the
   same size. CPU of the whole process and resources/s (wall clock).

Each in-process figure is the smallest of ``--repeat`` runs (``--writer``: wall rates the largest).
"""

from __future__ import annotations

import asyncio
import os
import re
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import click
import orjson
from rich.console import Console
from rich.table import Table

from careweave.interactions.loading import WRITE_SIZE, Chunk, Tools, load_paths, prepare_chunk
from careweave.settings import from_environment
from careweave.store import writes
from careweave.store.base import Tenant
from careweave.store.sql import sqlite as sqlite_store
from careweave.system import System, build_system, load_definitions


def _read(directory: Path, limit: int | None) -> dict[Path, list[dict[str, Any]]]:
    out: dict[Path, list[dict[str, Any]]] = {}
    for path in sorted(directory.glob("*.ndjson")):
        lines = [line for line in path.read_bytes().splitlines() if line.strip()]
        out[path] = [orjson.loads(line) for line in lines[:limit]]
    return out


def _cpu_us(run: Callable[[], None], count: int, repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        started = time.process_time()
        run()
        best = min(best, time.process_time() - started)
    return best * 1e6 / max(count, 1)


def _each(call: Callable[[dict[str, Any]], object], resources: list[dict[str, Any]]) -> Callable[[], None]:
    def run() -> None:
        for r in resources:
            call(r)

    return run


async def _load_cpu(files: dict[Path, list[dict[str, Any]]], repeat: int, scratch: Path) -> dict[str, float]:
    """µs CPU per resource of load_paths, per file, best of ``repeat`` fresh data directories."""
    best: dict[str, float] = {}
    defs = load_definitions()
    for attempt in range(repeat):
        data = scratch / f"load-{attempt}"
        sources = scratch / f"src-{attempt}"
        sources.mkdir()
        system = build_system(from_environment({"data_dir": data}), defs)
        try:
            tenant = await system.store.tenant("default")
            assert tenant is not None
            await _warm(system, tenant)
            for path, resources in files.items():
                # the file as limited by --limit (so every figure covers the same resources)
                source = sources / path.name
                source.write_bytes(b"\n".join(orjson.dumps(r) for r in resources) + b"\n")
                started = time.process_time()
                report = await load_paths(system.services, tenant, [source], report_path=None)
                spent = time.process_time() - started
                assert report.rejected == 0, f"{path.name}: {report.rejected} rejected"
                type_ = path.stem
                best[type_] = min(best.get(type_, float("inf")), spent * 1e6 / max(report.read, 1))
        finally:
            await system.close()
    return best


async def _warm(system: System, tenant: Tenant) -> None:
    # the indexer compiles each type's plan on first use; do not charge that to the first file
    indexer = (await system.services.search.of(tenant)).indexer
    for type_ in system.definitions.model.resource_types:
        indexer.plan(type_)


# runs the CLI in a child process and reports, on stderr, the CPU of that process (the parent: reading,
# the event loop, the SQLite writer) apart from its worker processes'
_CLI_RUSAGE = """
import json, resource, sys
from careweave.cli import main
try:
    main(sys.argv[1:], standalone_mode=False)
finally:
    own = resource.getrusage(resource.RUSAGE_SELF)
    workers = resource.getrusage(resource.RUSAGE_CHILDREN)
    print(json.dumps([own.ru_utime + own.ru_stime, workers.ru_utime + workers.ru_stime]), file=sys.stderr)
"""


def _cli(directory: Path, workers: int, scratch: Path) -> tuple[str, float, float, float]:
    """(the CLI's summary line, its reported rate, CPU µs per resource of the CLI's own process and
    of its worker processes)."""
    data = scratch / f"cli-{workers}"
    data.mkdir()
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            _CLI_RUSAGE,
            "load",
            "--data",
            str(data),
            "--workers",
            str(workers),
            "--report",
            str(scratch / f"rejected-{workers}.ndjson"),
            str(directory),
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    own, children = orjson.loads(done.stderr.strip().splitlines()[-1])
    line = done.stdout.strip().splitlines()[-1]
    m = re.search(r"([\d,]+) resources .*\(([\d,]+)/s\)", line)
    read, rate = (int(m[1].replace(",", "")), float(m[2].replace(",", ""))) if m else (0, 0.0)
    return line, rate, own * 1e6 / max(read, 1), children * 1e6 / max(read, 1)


# -- the writer alone, and the raw insert of the same rows -------------------------------------------
def _prepare_all(files: dict[Path, list[dict[str, Any]]], tools: Tools) -> list[writes.Serialised]:
    out: list[writes.Serialised] = []
    for path, resources in files.items():
        prepared = prepare_chunk(Chunk([orjson.dumps(r) for r in resources], str(path)), tools)
        assert not prepared.rejected and not prepared.waiting, f"{path.name}: rejected or waiting"
        out += prepared.resources
    return out


def _groups(resources: list[writes.Serialised], size: int) -> list[list[writes.Serialised]]:
    return [resources[i : i + size] for i in range(0, len(resources), size)]


async def _writer_pass(
    system: System, tenant: Tenant, resources: list[writes.Serialised]
) -> tuple[float, float, int]:
    """(CPU seconds, wall seconds, versions stored) of writing ``resources`` as the loader does: a
    job per chunk of 250, ``WRITE_SIZE`` resources per transaction, three transactions in flight."""
    store = system.store
    assert isinstance(store, sqlite_store.SqliteStore)
    writing: list[asyncio.Future[list[int]]] = []
    stored = 0
    cpu, wall = time.process_time(), time.perf_counter()
    for group in _groups(resources, WRITE_SIZE):
        jobs = [partial(writes.update_serialised, batch=chunk) for chunk in _groups(group, 250)]
        writing.append(asyncio.ensure_future(store.write_all(tenant, jobs)))
        while len(writing) > 2:
            stored += sum(await writing.pop(0))
    for pending in writing:
        stored += sum(await pending)
    return time.process_time() - cpu, time.perf_counter() - wall, stored


async def _writer(
    resources: list[writes.Serialised], scratch: Path, attempt: int
) -> dict[str, tuple[float, float]]:
    """µs CPU per resource and resources/s of a fresh load and of a reload (all unchanged)."""
    system = build_system(from_environment({"data_dir": scratch / f"writer-{attempt}"}))
    try:
        tenant = await system.store.tenant("default")
        assert tenant is not None
        n = len(resources)
        out = {}
        for label, expected in (("writer: load", n), ("writer: reload (unchanged)", 0)):
            cpu, wall, stored = await _writer_pass(system, tenant, resources)
            assert stored == expected, (label, stored)
            out[label] = (cpu * 1e6 / n, n / wall)
        return out
    finally:
        await system.close()


def _raw_rows(resources: list[writes.Serialised], pids: dict[str, int]) -> list[list[tuple[str, list[Any]]]]:
    """Per write job, the statements and rows the writer writes for ``resources`` (all new)."""
    instant = b"2024-01-01T00:00:00.000+00:00"
    jobs = []
    rk = seq = 0
    for group in _groups(resources, WRITE_SIZE):
        rows: dict[str, list[Any]] = {}
        for item in group:
            rk += 1
            seq += 1
            body = writes._joined(item, 1, instant)
            mask = sqlite_store._ixmask(item.index)
            rows.setdefault(sqlite_store._INSERT_RESOURCE, []).append(
                (rk, 1, item.type, item.id, 1, 0, 0, body, mask)
            )
            rows.setdefault(sqlite_store._INSERT_HISTORY, []).append(
                (seq, 1, rk, item.type, item.id, 1, 0, "PUT", body)
            )
            first = rk << sqlite_store.ROW_BITS
            for attr, statement in sqlite_store._INDEX_INSERTS.items():
                values = getattr(item.index, attr)
                if values:
                    rows.setdefault(statement, []).extend(
                        (first + i, 1, pids.setdefault(v[0], len(pids) + 1), *v[1:])
                        for i, v in enumerate(values)
                    )
            if item.index.narrative or item.index.content:
                rows.setdefault(sqlite_store._INSERT_TEXT, []).append(
                    (rk, item.index.narrative, item.index.content, 1)
                )
        jobs.append(list(rows.items()))
    return jobs


def _raw(resources: list[writes.Serialised], scratch: Path, attempt: int) -> tuple[float, float]:
    """µs CPU per resource and resources/s of inserting the writer's rows directly: the limit."""
    data = scratch / f"raw-{attempt}"
    system = build_system(from_environment({"data_dir": data}))  # the schema, as the store makes it
    asyncio.run(system.close())
    pids: dict[str, int] = {}
    jobs = _raw_rows(resources, pids)
    conn = sqlite3.connect(data / "careweave.db", isolation_level=None)
    try:
        for pragma in (
            "journal_mode = WAL",
            "synchronous = FULL",
            "cache_size = -65536",
            "mmap_size = 268435456",
        ):
            conn.execute(f"PRAGMA {pragma}")
        conn.execute("DELETE FROM param")
        conn.executemany("INSERT INTO param (pid, key) VALUES (?, ?)", [(p, k) for k, p in pids.items()])
        cpu, wall = time.process_time(), time.perf_counter()
        for job in jobs:
            conn.execute("BEGIN IMMEDIATE")
            for statement, rows in job:
                conn.executemany(statement, rows)
            conn.execute("COMMIT")
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    finally:
        conn.close()
    return cpu * 1e6 / len(resources), len(resources) / wall


def _writer_table(
    console: Console, files: dict[Path, list[dict[str, Any]]], tools: Tools, repeat: int, scratch: Path
) -> None:
    resources = _prepare_all(files, tools)
    best: dict[str, tuple[float, float]] = {}

    def keep(label: str, figures: tuple[float, float]) -> None:
        old = best.get(label, (float("inf"), 0.0))
        best[label] = (min(old[0], figures[0]), max(old[1], figures[1]))

    for attempt in range(repeat):  # alternated, so a busy spell does not favour one
        for label, figures in asyncio.run(_writer(resources, scratch, attempt)).items():
            keep(label, figures)
        keep("raw insert of the same rows (the limit)", _raw(resources, scratch, attempt))
    table = Table(title=f"SQLite writer alone, {len(resources):,} resources, {WRITE_SIZE} per transaction")
    for column in ("", "CPU µs/resource", "resources/s"):
        table.add_column(column, justify="right")
    for label, (cpu, rate) in best.items():
        table.add_row(label, f"{cpu:,.0f}", f"{rate:,.0f}")
    console.print(table)


def _load_average() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


@click.command()
@click.argument("directory", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--repeat", type=int, default=1, help="Runs per figure; the smallest is kept.")
@click.option("--limit", type=int, default=None, help="At most this many resources per file.")
@click.option("--cli/--no-cli", default=False, help="Also time `careweave load --workers 0|1`.")
@click.option("--skip-load", is_flag=True, help="Only validation and index extraction.")
@click.option("--writer/--no-writer", default=False, help="Also the SQLite writer alone, beside raw inserts.")
def main(directory: Path, repeat: int, limit: int | None, cli: bool, skip_load: bool, writer: bool) -> None:
    """µs of CPU per resource for validation, index extraction and the bulk load, per type."""
    files = _read(directory, limit)
    console = Console(width=160)
    console.print(f"load average before: {_load_average()}")
    with tempfile.TemporaryDirectory(prefix="careweave-ingest-") as tmp:
        scratch = Path(tmp)
        system = build_system(from_environment({"data_dir": scratch / "measure"}))

        async def parts() -> tuple[Callable[..., Any], Callable[..., Any], Tenant]:
            tenant = await system.store.tenant("default")
            assert tenant is not None
            await _warm(system, tenant)
            indexer = (await system.services.search.of(tenant)).indexer
            return system.services.validate, indexer.index, tenant

        validate, index, tenant = asyncio.run(parts())
        tools = Tools(
            lambda r: validate(r, tenant), index, system.services.resource_types, system.services.new_id
        )
        rows: dict[str, dict[str, float]] = {}
        for path, resources in files.items():
            n = len(resources)
            rows[path.stem] = {
                "n": n,
                "validate": _cpu_us(_each(lambda r: validate(r, tenant), resources), n, repeat),
                "index": _cpu_us(_each(index, resources), n, repeat),
            }
        asyncio.run(system.close())
        if not skip_load:
            for type_, us in asyncio.run(_load_cpu(files, repeat, scratch)).items():
                rows[type_]["load"] = us
        _table(console, rows)
        if writer:
            _writer_table(console, files, tools, repeat, scratch)
        if cli:
            cli_table = Table(title="careweave load (whole CLI: wall clock; CPU µs/resource, rusage)")
            columns = ("workers", "resources/s", "CPU parent", "CPU workers", "load average after", "summary")
            for column in columns:
                cli_table.add_column(column, justify="right")
            for workers in (0, 1):
                line, rate, own, children = _cli(directory, workers, scratch)
                cli_table.add_row(
                    str(workers), f"{rate:,.0f}", f"{own:,.0f}", f"{children:,.0f}", _load_average(), line
                )
            console.print(cli_table)
    console.print(f"load average after: {_load_average()}")


def _table(console: Console, rows: dict[str, dict[str, float]]) -> None:
    table = Table(title="CPU µs per resource (process_time, best of --repeat)")
    columns = ("validate", "index", "load")
    table.add_column("type")
    table.add_column("resources", justify="right")
    for column in columns:
        table.add_column(column, justify="right")
    total_n = sum(int(r["n"]) for r in rows.values())
    for type_, r in rows.items():
        table.add_row(type_, f"{int(r['n']):,}", *(f"{r[c]:,.0f}" if c in r else "-" for c in columns))
    overall = [
        sum(r[c] * r["n"] for r in rows.values()) / total_n if all(c in r for r in rows.values()) else None
        for c in columns
    ]
    table.add_row("all", f"{total_n:,}", *("-" if v is None else f"{v:,.0f}" for v in overall), style="bold")
    console.print(table)


if __name__ == "__main__":
    main()
