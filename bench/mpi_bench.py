"""MPI matching at scale: the whole pipeline on generated hard populations of growing size.

Usage: ``.venv/bin/python bench/mpi_bench.py [--records 10000,100000,1000000] [--seed 3]
[--cache /tmp/careweave-mpi-bench] [--generate-only]``

For each size it generates (once, then cached) a population with the generator's hard
discrepancy rates (``difficulty="hard"``, 24 organisations, Patients only: the ``ndjson`` format,
20 resources per person, the minimum) whose Patient count is about the size asked for (the hard
setting gives about 1.54 Patient records per person), then runs :func:`careweave.mpi.evaluate` in
a fresh child process, so that peak memory is that run's own. It prints one table: stage timings,
pairs scored per second, time per 1,000 records (flat means linear), peak RSS and the quality
measures. Results are also written to ``bench/results/mpi-<time>.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path

RECORDS_PER_PERSON = 1.539  # measured on hard populations with 24 organisations


def _config(persons: int, seed: int):
    from careweave.generate import GeneratorConfig

    return GeneratorConfig(
        patients=persons,
        organisations=24,
        seed=seed,
        difficulty="hard",
        formats=frozenset({"ndjson"}),
        resources_per_patient=20,
    )


def _ensure(cache: Path, persons: int, seed: int) -> tuple[Path, float | None]:
    from careweave.generate import generate

    out = cache / f"hard-p{persons}-s{seed}"
    if (out / "summary.json").exists():
        return out, None
    started = time.perf_counter()
    generate(_config(persons, seed), out)
    return out, time.perf_counter() - started


def _child(directory: str) -> None:
    from careweave.mpi import evaluate

    report = evaluate(Path(directory))
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({**report.as_json(), "peak_mib": peak_mib}))


def _machine() -> str:
    cpu = next(
        (line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
         if line.startswith("model name")),
        "unknown CPU",
    )  # fmt: skip
    return f"{os.cpu_count()} cores, {cpu}, Python {platform.python_version()}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--records", default="10000,100000,1000000")
    parser.add_argument("--seed", type=int, default=3)
    parser.add_argument("--cache", type=Path, default=Path("/tmp/careweave-mpi-bench"))
    parser.add_argument("--generate-only", action="store_true")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        _child(args.child)
        return
    from rich.console import Console
    from rich.table import Table

    results = []
    for records in (int(s) for s in args.records.split(",")):
        persons = round(records / RECORDS_PER_PERSON)
        directory, generated = _ensure(args.cache, persons, args.seed)
        if generated is not None:
            print(f"generated {persons:,} persons in {generated:.0f} s: {directory}", flush=True)
        if args.generate_only:
            continue
        out = subprocess.run(
            [sys.executable, __file__, "--child", str(directory)], check=True, capture_output=True, text=True
        )
        results.append(json.loads(out.stdout))
        print(f"evaluated {results[-1]['records']:,} records", flush=True)
    if not results:
        return
    table = Table(title=f"careweave MPI on hard populations, seed {args.seed} ({_machine()})")
    columns = ("records", "people", "pairs", "normalise s", "EM s", "block s", "score s",
               "cluster s", "total s", "ms / 1k rec", "pairs/s", "peak MiB", "precision", "recall",
               "merged", "split")  # fmt: skip
    for column in columns:
        table.add_column(column, justify="right")
    for r in results:
        s = r["seconds"]
        table.add_row(
            f"{r['records']:,}", f"{r['persons']:,}", f"{r['candidates']['pairs']:,}",
            f"{s['normalise']:.1f}", f"{s['estimate']:.1f}", f"{s['block']:.1f}", f"{s['score']:.1f}",
            f"{s['cluster']:.1f}", f"{s['total']:.1f}", f"{s['total'] / r['records'] * 1e6:.0f}",
            f"{r['pairs_per_second']:,.0f}", f"{r['peak_mib']:,.0f}",
            f"{r['pairwise']['precision']:.5f}", f"{r['pairwise']['recall']:.4f}",
            str(r["people"]["wrongly_merged_persons"]), f"{r['people']['split_persons']:,}",
        )  # fmt: skip
    console = Console(width=220)
    console.print(table)
    from careweave.mpi.evaluate import MISSED_REASONS

    missed = Table(title="True pairs not linked, by reason (share of all true pairs)")
    for column in ("records", "true pairs", "recall", "placeholder ceiling", "with review", *MISSED_REASONS,
                   "worst weak wrong"):  # fmt: skip
        missed.add_column(column, justify="right")
    for r in results:
        m = r["missed"]
        total = m["true_pairs"] or 1
        missed.add_row(
            f"{r['records']:,}", f"{m['true_pairs']:,}", f"{r['pairwise']['recall']:.4f}",
            f"{m['placeholder_ceiling']:.4f}", f"{r['pairwise']['recall_with_review']:.4f}",
            *(f"{m['by_reason'][reason] / total:.4f}" for reason in MISSED_REASONS),
            f"{m['worst_weakly_corroborated_wrong_pair']:.1f}",
        )  # fmt: skip
    console.print(missed)
    folder = Path(__file__).parent / "results"
    folder.mkdir(exist_ok=True)
    (folder / f"mpi-{int(time.time())}.json").write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
