"""Generator throughput and memory: resources per second and peak RSS for 1k and 10k patients.

Usage: ``.venv/bin/python bench/generate_bench.py [--sizes 1000,10000] [--formats ndjson,bundles,hl7v2]``

Each size runs in a fresh child process so its peak resident set size is its own.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from careweave.generate import FORMATS, GeneratorConfig, generate


def _child(patients: int, formats: frozenset[str]) -> None:
    config = GeneratorConfig(patients=patients, organisations=24, seed=1, formats=formats)
    with tempfile.TemporaryDirectory() as tmp:
        started = time.perf_counter()
        summary = generate(config, Path(tmp))
        elapsed = time.perf_counter() - started
        size = sum(p.stat().st_size for p in Path(tmp).rglob("*") if p.is_file())
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({
        "patients": patients,
        "records": summary.patients,
        "resources": summary.total_resources,
        "hl7": sum(summary.hl7_messages.values()),
        "seconds": elapsed,
        "bytes": size,
        "peak_mib": peak_kib / 1024,
    }))  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", default="1000,10000")
    parser.add_argument("--formats", default=",".join(sorted(FORMATS)))
    parser.add_argument("--child", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    formats = frozenset(f for f in args.formats.split(",") if f)
    if args.child:
        _child(args.child, formats)
        return
    print(f"formats: {', '.join(sorted(formats)) or '(ground truth only)'}")
    header = f"{'persons':>8} {'Patients':>9} {'resources':>10} {'HL7 msgs':>9} {'seconds':>8} "
    print(header + f"{'resources/s':>12} {'MiB out':>8} {'peak RSS MiB':>13}")
    for size in (int(s) for s in args.sizes.split(",")):
        out = subprocess.run(
            [sys.executable, __file__, "--child", str(size), "--formats", args.formats],
            check=True, capture_output=True, text=True,
        )  # fmt: skip
        r = json.loads(out.stdout)
        print(
            f"{r['patients']:>8} {r['records']:>9} {r['resources']:>10} {r['hl7']:>9} "
            f"{r['seconds']:>8.1f} {r['resources'] / r['seconds']:>12,.0f} "
            f"{r['bytes'] / 2**20:>8.0f} {r['peak_mib']:>13.0f}"
        )


if __name__ == "__main__":
    main()
