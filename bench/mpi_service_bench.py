"""The MPI service's follower: Patients matched per second with 10,000 and 100,000 stored.

Usage: ``.venv/bin/python bench/mpi_service_bench.py [--records 10000,100000] [--tail 2000]
[--cache /tmp/careweave-mpi-bench]``

For each size it takes a generated hard population (the same cache as ``bench/mpi_bench.py``),
spreads its Patients over three tenants by organisation, stores all but the last ``--tail`` of
them in a fresh SQLite database (``synchronous=NORMAL``, through ``store.write`` with the real
indexer) and lets the follower catch up (``IdentityService.catch_up``: change log, normalise,
blocking keys, candidate lookups, scoring, links, Persons, cursor, in one transaction per batch).
Then it stores the last ``--tail`` Patients and times the follower on them alone: the rate with
that many Patients already stored. The machine's limit it is compared with: the pure core on
the same records (normalise, blocking keys and scoring every candidate pair in memory, no
storage), i.e. what matching alone costs per record.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent.parent))

RECORDS_PER_PERSON = 1.539
TENANTS = ("trust-a", "trust-b", "gp-c")


def _machine() -> str:
    cpu = next(
        (line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
         if line.startswith("model name")),
        "unknown CPU",
    )  # fmt: skip
    return f"{os.cpu_count()} cores, {cpu}, Python {platform.python_version()}"


def _population(cache: Path, records: int, seed: int) -> Path:
    from careweave.generate import GeneratorConfig, generate

    persons = round(records / RECORDS_PER_PERSON)
    out = cache / f"hard-p{persons}-s{seed}"
    if not (out / "summary.json").exists():
        config = GeneratorConfig(
            patients=persons, organisations=24, seed=seed, difficulty="hard",
            formats=frozenset({"ndjson"}), resources_per_patient=20,
        )  # fmt: skip
        generate(config, out)
    return out


async def _store_all(
    system: Any, tenants: dict[str, Any], patients: list[tuple[str, dict[str, Any]]]
) -> float:
    from careweave.store import writes

    indexer = system.services.search.base.indexer
    started = time.perf_counter()
    by_tenant: dict[str, list[dict[str, Any]]] = {}
    for tenant, p in patients:
        by_tenant.setdefault(tenant, []).append(p)
    for tenant, items in by_tenant.items():
        for i in range(0, len(items), 500):
            chunk = [writes.Prepared("Patient", p, indexer.index(p)) for p in items[i : i + 500]]

            def run(tx: Any, chunk: list[writes.Prepared] = chunk) -> None:
                for prepared in chunk:
                    writes.update(tx, prepared, prepared.resource["id"])

            await system.store.write(tenants[tenant], run)
    return time.perf_counter() - started


def _core_rate(patients: list[dict[str, Any]]) -> float:
    """Records per second the pure core matches (normalise, keys, score the candidates)."""
    from careweave import mpi
    from careweave.identity.models import load_model

    model = load_model(None)
    nicknames = mpi.NicknameIndex.from_table()
    started = time.perf_counter()
    records = [mpi.normalise(p, nicknames) for p in patients]
    index = mpi.build_index(records)
    for i, j in mpi.candidate_pairs(index):
        mpi.decide(mpi.score(records[i], records[j], model), model.thresholds)
    return len(records) / (time.perf_counter() - started)


async def _measure(directory: Path, tail: int) -> dict[str, Any]:
    import orjson

    from careweave.mpi.dataset import read_truth
    from careweave.settings import Settings
    from careweave.system import build_system

    truth = read_truth(directory)
    lines = (directory / "ndjson" / "Patient.ndjson").read_bytes().splitlines()
    patients = [orjson.loads(line) for line in lines if line.strip()]
    orgs = sorted({str((p.get("managingOrganization") or {}).get("reference")) for p in patients})
    tenant_of = {org: TENANTS[i % len(TENANTS)] for i, org in enumerate(orgs)}
    placed = [(tenant_of[str((p.get("managingOrganization") or {}).get("reference"))], p) for p in patients]
    with tempfile.TemporaryDirectory(prefix="careweave-mpi-service-") as tmp:
        system = build_system(Settings(data_dir=Path(tmp), sqlite_synchronous="NORMAL"))
        try:
            tenants = {name: await system.store.create_tenant(name) for name in TENANTS}
            identity = system.services.identity
            assert identity is not None
            await identity.space()
            head, rest = placed[:-tail], placed[-tail:]
            store_head = await _store_all(system, tenants, head)
            started = time.perf_counter()
            await identity.catch_up()
            follow_head = time.perf_counter() - started
            store_tail = await _store_all(system, tenants, rest)
            before = identity.matched
            started = time.perf_counter()
            await identity.catch_up()
            follow_tail = time.perf_counter() - started
            matched_tail = identity.matched - before
            rows = await system.store.sql_read(
                lambda sql: sql.execute("SELECT patient, person FROM mpi_record").fetchall()
            )
            people_in: dict[str, set[str]] = {}
            for patient, person in rows:
                people_in.setdefault(person, set()).add(truth[patient].person_id)
            persons = len(people_in)
            merged = sum(len(people) > 1 for people in people_in.values())
            reviews = len(await identity.reviews("open", 0, 1_000_000))
        finally:
            await system.close()
    return {
        "records": len(patients),
        "people": len({t.person_id for t in truth.values()}),
        "persons": persons,
        "wrongly_merged": merged,
        "reviews": reviews,
        "store_head_s": store_head,
        "follow_head_s": follow_head,
        "head_rate": len(head) / follow_head,
        "store_tail_s": store_tail,
        "follow_tail_s": follow_tail,
        "tail_rate": matched_tail / follow_tail,
        "core_rate": _core_rate(patients),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--records", default="10000,100000")
    parser.add_argument("--tail", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=3)
    parser.add_argument("--cache", type=Path, default=Path("/tmp/careweave-mpi-bench"))
    args = parser.parse_args()
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"careweave MPI follower ({_machine()}, SQLite synchronous=NORMAL)")
    for column in ("stored Patients", "people", "Persons", "Persons of 2+ people", "review items", "store s",
                   "catch-up s", "catch-up /s", f"last {args.tail:,} /s", "pure core /s",
                   "follower / core"):  # fmt: skip
        table.add_column(column, justify="right")
    for records in (int(s) for s in args.records.split(",")):
        r = asyncio.run(_measure(_population(args.cache, records, args.seed), args.tail))
        table.add_row(
            f"{r['records']:,}", f"{r['people']:,}", f"{r['persons']:,}", str(r["wrongly_merged"]),
            f"{r['reviews']:,}",
            f"{r['store_head_s']:.1f}", f"{r['follow_head_s']:.1f}", f"{r['head_rate']:,.0f}",
            f"{r['tail_rate']:,.0f}", f"{r['core_rate']:,.0f}", f"{r['tail_rate'] / r['core_rate']:.0%}",
        )  # fmt: skip
    Console(width=200).print(table)


if __name__ == "__main__":
    main()
