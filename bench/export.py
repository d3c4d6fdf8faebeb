"""Bulk Data $export at scale: resources/s and the server's peak memory while it writes the files.

Uses the search benchmark's data directory (~1M generated resources, built once by bench/search.py's
``prepare``). Starts ``careweave serve`` on it, kicks off a system-level ``$export``, polls the status
URL until the manifest is ready, then reads the server's peak resident memory (VmHWM) from /proc. The
limit beside it: reading the same rows' bodies straight out of SQLite and writing them to NDJSON files,
with nothing else in between.
"""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from bench.crud import free_port, wait_up
from bench.search import prepare


def _vm(pid: int, key: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1]) * 1024
    return 0


def _raw_limit(db: Path, out: Path) -> tuple[int, float]:
    """Bodies straight from SQLite into one NDJSON file per type: the machine's limit."""
    out.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(db)
    started = time.perf_counter()
    files: dict[str, Any] = {}
    count = 0
    try:
        for rtype, body in conn.execute(
            "SELECT type, body FROM resource WHERE tid = 1 AND deleted = 0 ORDER BY type, rk"
        ):
            f = files.get(rtype)
            if f is None:
                f = files[rtype] = open(out / f"{rtype}.ndjson", "wb")  # noqa: SIM115
            f.write(body)
            f.write(b"\n")
            count += 1
    finally:
        for f in files.values():
            f.close()
        conn.close()
    return count, time.perf_counter() - started


def run(patients: int = 20000, data_root: Path | None = None) -> dict[str, Any]:
    root = data_root or Path(os.environ.get("CAREWEAVE_BENCH_DIR", tempfile.gettempdir())) / "cw-search"
    data = root / "data"
    data.mkdir(parents=True, exist_ok=True)
    prepare(data, patients)
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "careweave.cli", "serve", "--data", str(data), "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_up(f"{base}/health", proc)
        rss_before = _vm(proc.pid, "VmRSS")
        with httpx.Client(timeout=60) as client:
            started = time.perf_counter()
            kick = client.get(
                f"{base}/fhir/$export",
                headers={"Accept": "application/fhir+json", "Prefer": "respond-async"},
            )
            assert kick.status_code == 202, kick.text
            status_url = kick.headers["content-location"]
            samples: list[tuple[float, int]] = []  # (seconds, RSS) while the export runs
            while True:
                poll = client.get(status_url)
                samples.append((time.perf_counter() - started, _vm(proc.pid, "VmRSS")))
                if poll.status_code == 200:
                    break
                assert poll.status_code == 202, poll.text
                time.sleep(0.5)
            elapsed = time.perf_counter() - started
            manifest = poll.json()
        peak = _vm(proc.pid, "VmHWM")
        exported = sum(int(o.get("count", 0)) for o in manifest["output"])
        files = len(manifest["output"])
    finally:
        proc.terminate()
        proc.wait(30)
    limit_count, limit_s = _raw_limit(data / "careweave.db", root / "raw-export")
    return {
        "resources": exported,
        "files": files,
        "seconds": elapsed,
        "rate": exported / elapsed,
        "rss_before_mb": rss_before / 2**20,
        "peak_rss_mb": peak / 2**20,
        # flat memory: the largest RSS seen in the first quarter of the run beside the last quarter's
        "rss_first_quarter_mb": max((r for t, r in samples if t <= elapsed / 4), default=0) / 2**20,
        "rss_last_quarter_mb": max((r for t, r in samples if t >= elapsed * 3 / 4), default=0) / 2**20,
        "limit_resources": limit_count,
        "limit_rate": limit_count / limit_s,
    }
