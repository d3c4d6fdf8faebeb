"""Create, read by id and update over real HTTP on loopback, beside the limits of this machine.

Limits measured in the same run:
- a bare ASGI app on the same server stack answering with the same bytes as a read;
- plain SQLite inserts of the same rows (resource, history and index rows), in one transaction
  (the raw insert limit) and in commits of one client-count batch with synchronous=FULL (what
  group commit with that many clients can at best do).
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import httpx

HERE = Path(__file__).parent
LUA = HERE / "lua"

PATIENT = {
    "resourceType": "Patient",
    "identifier": [
        {
            "system": "https://fhir.nhs.uk/Id/nhs-number",
            "value": "9434765919",
            "extension": [
                {
                    "url": "https://fhir.hl7.org.uk/StructureDefinition/"
                    "Extension-UKCore-NHSNumberVerificationStatus",
                    "valueCodeableConcept": {
                        "coding": [
                            {
                                "system": "https://fhir.hl7.org.uk/CodeSystem/"
                                "UKCore-NHSNumberVerificationStatusEngland",
                                "code": "01",
                                "display": "Number present and verified",
                            }
                        ]
                    },
                }
            ],
        },
        {"system": "https://fhir.rxr.nhs.uk/Id/mrn", "value": "RXR1234567"},
    ],
    "active": True,
    "name": [{"use": "official", "family": "Lewis", "given": ["Ada", "Mary"], "prefix": ["Ms"]}],
    "telecom": [{"system": "phone", "value": "07700 900123", "use": "mobile"}],
    "gender": "female",
    "birthDate": "1985-12-10",
    "address": [
        {
            "use": "home",
            "line": ["12 Mill Lane"],
            "city": "Leeds",
            "district": "West Yorkshire",
            "postalCode": "LS1 4AP",
            "country": "GB",
        }
    ],
    "generalPractitioner": [{"reference": "Organization/B82005"}],
}


@dataclass
class Row:
    name: str
    rate: float
    p50_ms: float | None
    p99_ms: float | None
    limit_name: str
    limit_rate: float | None
    errors: int = 0

    @property
    def ratio(self) -> float | None:
        return self.rate / self.limit_rate if self.limit_rate else None


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_up(url: str, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}")
        try:
            httpx.get(url, timeout=1)
            return
        except httpx.TransportError:
            time.sleep(0.1)
    raise RuntimeError(f"{url} did not come up")


def wait_idle(proc: subprocess.Popen[bytes], timeout: float = 900.0) -> float:
    """Wait until the server has used under 5% of a core for two seconds (a server started on
    freshly loaded data first has the MPI follow the whole change log); returns the seconds waited."""
    started = time.monotonic()
    ticks = os.sysconf("SC_CLK_TCK")

    def cpu() -> float:
        fields = Path(f"/proc/{proc.pid}/stat").read_text().rpartition(")")[2].split()
        return (int(fields[11]) + int(fields[12])) / ticks

    quiet = 0
    while time.monotonic() - started < timeout and quiet < 2:
        before = cpu()
        time.sleep(1.0)
        quiet = quiet + 1 if cpu() - before < 0.05 else 0
    return time.monotonic() - started


def start_careweave(data: Path, port: int, server: str) -> subprocess.Popen[bytes]:
    cmd = [sys.executable, "-m", "careweave.cli", "serve", "--data", str(data), "--port", str(port)]
    cmd += ["--server", server]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_up(f"http://127.0.0.1:{port}/health", proc)
    return proc


def start_bare(body_file: Path, port: int, server: str) -> subprocess.Popen[bytes]:
    env = {**os.environ, "BENCH_BARE_BODY": str(body_file), "PYTHONPATH": str(HERE.parent)}
    if server == "granian":
        cmd = [sys.executable, "-m", "granian", "--interface", "asgi", "--loop", "uvloop",
               "--host", "127.0.0.1", "--port", str(port), "bench.bare_app:app"]
    else:
        cmd = [sys.executable, "-m", "uvicorn", "bench.bare_app:app", "--host", "127.0.0.1",
               "--port", str(port), "--loop", "uvloop", "--http", "httptools", "--no-access-log",
               "--log-level", "warning"]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_up(f"http://127.0.0.1:{port}/", proc)
    return proc


def wrk(url: str, script: str, clients: int, seconds: int, env: dict[str, str]) -> dict[str, float]:
    out = subprocess.run(
        ["wrk", "-t", str(min(2, clients)), "-c", str(clients), "-d", f"{seconds}s", "--timeout", "10s",
         "-s", str(LUA / script), url],
        env={**os.environ, "BENCH_LUA_DIR": str(LUA), **env},
        capture_output=True, text=True, check=True,
    ).stdout
    line = next(raw for raw in out.splitlines() if raw.startswith("{"))
    data = json.loads(line)
    return {
        "rate": data["requests"] / data["seconds"],
        "p50": data["p50"] / 1000,
        "p99": data["p99"] / 1000,
        "errors": data["errors"],
    }


def preload(base: str, count: int) -> list[str]:
    def one(i: int) -> str:
        body = {**PATIENT, "name": [{"family": f"Lewis{i}", "given": ["Ada"]}]}
        r = client.post(f"{base}/fhir/Patient", json=body,
                        headers={"content-type": "application/fhir+json"})
        r.raise_for_status()
        return str(r.json()["id"])

    with httpx.Client(timeout=30) as client, ThreadPoolExecutor(16) as pool:
        return list(pool.map(one, range(count)))


def sqlite_limits(work: Path, body: bytes, batch: int, seconds: float = 3.0) -> tuple[float, float]:
    """Rows per second for plain inserts of the same rows: (one transaction, batches at FULL)."""
    results = []
    for mode in ("bulk", "batched"):
        path = work / f"raw-{mode}.db"
        conn = sqlite3.connect(path, isolation_level=None)
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("PRAGMA synchronous = FULL")
        conn.executescript(
            "CREATE TABLE resource (rk INTEGER PRIMARY KEY, tid INT, type TEXT, id TEXT, version INT,"
            " updated_ms INT, deleted INT, body BLOB);"
            "CREATE UNIQUE INDEX rkey ON resource (tid, type, id);"
            "CREATE TABLE history (seq INTEGER PRIMARY KEY AUTOINCREMENT, tid INT, rk INT, type TEXT,"
            " id TEXT, version INT, updated_ms INT, method TEXT, body BLOB);"
            "CREATE UNIQUE INDEX hv ON history (rk, version); CREATE INDEX ht ON history (tid, seq);"
            "CREATE INDEX hty ON history (tid, type, seq);"
            "CREATE TABLE ix_token (tid INT, pid INT, system TEXT, code TEXT, rk INT);"
            "CREATE INDEX itc ON ix_token (tid, pid, code, system); CREATE INDEX itr ON ix_token (rk);"
        )
        n = 0
        started = time.perf_counter()
        size = 100_000 if mode == "bulk" else batch
        while time.perf_counter() - started < seconds:
            conn.execute("BEGIN IMMEDIATE")
            for _ in range(size):
                n += 1
                rid = f"{n:032x}"
                cur = conn.execute(
                    "INSERT INTO resource (tid, type, id, version, updated_ms, deleted, body) "
                    "VALUES (1, 'Patient', ?, 1, ?, 0, ?)", (rid, n, body))
                rk = cur.lastrowid
                conn.execute(
                    "INSERT INTO history (tid, rk, type, id, version, updated_ms, method, body) "
                    "VALUES (1, ?, 'Patient', ?, 1, ?, 'POST', ?)", (rk, rid, n, body))
                conn.executemany(
                    "INSERT INTO ix_token (tid, pid, system, code, rk) VALUES (1, 1, ?, ?, ?)",
                    [("https://fhir.nhs.uk/Id/nhs-number", "9434765919", rk),
                     ("https://fhir.rxr.nhs.uk/Id/mrn", "RXR1234567", rk)])
                if mode == "bulk" and time.perf_counter() - started > seconds:
                    break
            conn.execute("COMMIT")
        results.append(n / (time.perf_counter() - started))
        conn.close()
    return results[0], results[1]


def run(server: str = "uvicorn", clients: int = 16, seconds: int = 10) -> list[Row]:
    with tempfile.TemporaryDirectory(prefix="cw-bench-") as tmp:
        work = Path(tmp)
        port, bare_port = free_port(), free_port()
        cw = start_careweave(work / "data", port, server)
        base = f"http://127.0.0.1:{port}"
        bare = None
        try:
            ids = preload(base, 2000)
            (work / "ids.txt").write_text("\n".join(ids) + "\n")
            sample = httpx.get(f"{base}/fhir/Patient/{ids[0]}").content
            (work / "bare.json").write_bytes(sample)
            (work / "create.json").write_text(json.dumps(PATIENT))
            update = {**PATIENT, "id": "__ID__", "name": [{"family": "Lewis__N__"}]}
            (work / "update.json").write_text(json.dumps(update))
            bare = start_bare(work / "bare.json", bare_port, server)
            env = {"BENCH_IDS": str(work / "ids.txt"), "BENCH_PREFIX": "/fhir/Patient/"}
            wrk(f"http://127.0.0.1:{bare_port}/", "read.lua", clients, 2, env)  # warm up
            bare_r = wrk(f"http://127.0.0.1:{bare_port}/", "read.lua", clients, seconds, env)
            wrk(f"{base}/", "read.lua", clients, 2, env)
            read_r = wrk(f"{base}/", "read.lua", clients, seconds, env)
            create_r = wrk(f"{base}/fhir/Patient", "create.lua", clients, seconds,
                           {"BENCH_BODY": str(work / "create.json")})
            update_r = wrk(f"{base}/", "update.lua", clients, seconds,
                           {**env, "BENCH_BODY": str(work / "update.json")})
        finally:
            cw.terminate()
            cw.wait()
            if bare is not None:
                bare.terminate()
                bare.wait()
        bulk, batched = sqlite_limits(work, sample, clients)
    return [
        Row("bare ASGI, same bytes", bare_r["rate"], bare_r["p50"], bare_r["p99"], "-", None,
            int(bare_r["errors"])),
        Row("read by id", read_r["rate"], read_r["p50"], read_r["p99"], "bare ASGI",
            bare_r["rate"], int(read_r["errors"])),
        Row("create", create_r["rate"], create_r["p50"], create_r["p99"],
            "SQLite inserts, 1 transaction", bulk, int(create_r["errors"])),
        Row("create (vs commits per client batch)", create_r["rate"], None, None,
            f"SQLite inserts, commit per {clients}, FULL", batched),
        Row("update", update_r["rate"], update_r["p50"], update_r["p99"],
            "SQLite inserts, 1 transaction", bulk, int(update_r["errors"])),
        Row("plain SQLite inserts, 1 transaction", bulk, None, None, "-", None),
        Row(f"plain SQLite inserts, commit per {clients}", batched, None, None, "-", None),
    ]
