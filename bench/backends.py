"""SQLite and PostgreSQL side by side in one run, on the same generated population.

For each backend: ingest (``careweave load`` of NDJSON, and transaction Bundles POSTed over HTTP),
read by id, the search set of bench/search.py, and a mixed workload (60% read, 25% search, 15%
update) at 16 clients with 1, 2 and 4 server worker processes (granian workers sharing one port and
one database). Beside them, the limits measured on the same tables in the same run: plain inserts
(SQLite) and COPY (PostgreSQL) of the same resource and history rows, plain SELECTs by id, and the
hand-written SQL of bench/search.py for each search kind.
"""

from __future__ import annotations

import json
import os
import random
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import psycopg

from bench.crud import PATIENT, free_port, wait_up, wrk
from bench.search import hand_sql, queries, url
from careweave.store.sql.pg_sql import to_pyformat

HERE = Path(__file__).parent
PG_ADMIN = os.environ.get("CAREWEAVE_BENCH_POSTGRES", "postgresql://postgres@127.0.0.1:5432/postgres")
NHS = "https://fhir.nhs.uk/Id/nhs-number"
MIXED_LUA = """
local ids, urls = {}, {}
for line in io.lines(os.getenv("BENCH_IDS")) do ids[#ids + 1] = line end
for line in io.lines(os.getenv("BENCH_URLS")) do urls[#urls + 1] = line end
local f = io.open(os.getenv("BENCH_BODY"), "rb")
local template = f:read("*a")
f:close()
math.randomseed(os.time() + tonumber(tostring({}):sub(8), 16) % 100000)
request = function()
  local r = math.random()
  if r < 0.60 then
    return wrk.format("GET", "/fhir/Patient/" .. ids[math.random(#ids)])
  elseif r < 0.85 then
    return wrk.format("GET", urls[math.random(#urls)])
  end
  local id = ids[math.random(#ids)]
  local body = template:gsub("__ID__", id):gsub("__N__", tostring(math.random(1000000000)))
  return wrk.format("PUT", "/fhir/Patient/" .. id, {["Content-Type"] = "application/fhir+json"}, body)
end
dofile(os.getenv("BENCH_LUA_DIR") .. "/report.lua")
"""


def careweave(*args: str, env: dict[str, str] | None = None) -> str:
    out = subprocess.run(
        [sys.executable, "-m", "careweave.cli", *args],
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        check=True,
    )
    return out.stdout


@contextmanager
def postgres_database(name: str) -> Iterator[str]:
    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {name}")
        conn.execute(f"CREATE DATABASE {name}")
    try:
        yield PG_ADMIN.rsplit("/", 1)[0] + "/" + name
    finally:
        with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


@contextmanager
def server(database: str, data: Path, workers: int) -> Iterator[str]:
    port = free_port()
    env = {
        **os.environ,
        "CAREWEAVE_DATA_DIR": str(data),
        "CAREWEAVE_DATABASE": database,
        "CAREWEAVE_CURSOR_SECRET": "bench",
        "CAREWEAVE_MPI_ENABLED": "false",
        "CAREWEAVE_PG_POOL_SIZE": "12",
    }
    cmd = [
        sys.executable,
        "-m",
        "granian",
        "--interface",
        "asgi",
        "--factory",
        "--loop",
        "uvloop",
        "--workers",
        str(workers),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--log-level",
        "warning",
        "careweave.system:create_app",
    ]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_up(f"http://127.0.0.1:{port}/health", proc)
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait()


def generate(root: Path, patients: int) -> Path:
    gen = root / f"gen-{patients}"
    if not (gen / "summary.json").exists():
        careweave(
            "generate", str(gen), "--patients", str(patients), "--formats", "ndjson,bundles", "--seed", "1"
        )
    return gen


def samples(gen: Path, rng: random.Random) -> dict[str, Any]:
    """What to query with, read from the generated files (the same for both backends)."""
    patients, names, nhs, codes = [], [], [], {}
    for line in (gen / "ndjson" / "Patient.ndjson").read_bytes().splitlines():
        p = json.loads(line)
        patients.append(p["id"])
        names += [n["family"].lower() for n in p.get("name", ()) if n.get("family")]
        nhs += [i["value"] for i in p.get("identifier", ()) if i.get("system") == NHS]
    for line in (gen / "ndjson" / "Observation.ndjson").read_bytes().splitlines():
        for c in json.loads(line).get("code", {}).get("coding", ()):
            codes[(c.get("system"), c.get("code"))] = codes.get((c.get("system"), c.get("code")), 0) + 1
    common = sorted(codes, key=codes.__getitem__, reverse=True)[:40]
    return {"patients": patients, "names": names, "nhs": nhs, "codes": common, "rng": rng}


def timed(fn: Callable[[], Any]) -> float:
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


def post_bundles(base: str, bundles: list[Path], clients: int = 4) -> float:
    """Entries per second, POSTing the transaction Bundles with ``clients`` at once."""
    from concurrent.futures import ThreadPoolExecutor

    entries = 0

    def one(path: Path) -> int:
        body = path.read_bytes()
        r = client.post(
            f"{base}/t/bundles/fhir", content=body, headers={"content-type": "application/fhir+json"}
        )
        r.raise_for_status()
        return len(json.loads(body)["entry"])

    with httpx.Client(timeout=300) as client, ThreadPoolExecutor(clients) as pool:
        started = time.perf_counter()
        entries = sum(pool.map(one, bundles))
        return entries / (time.perf_counter() - started)


# -- limits -----------------------------------------------------------------------------------------
def rows_of(gen: Path, limit: int = 20000) -> list[tuple[str, str, bytes]]:
    out = []
    for path in sorted((gen / "ndjson").glob("*.ndjson")):
        for line in path.read_bytes().splitlines():
            r = json.loads(line)
            out.append((r["resourceType"], r["id"], line))
            if len(out) >= limit:
                return out
    return out


def insert_limit(backend: str, database: str, rows: list[tuple[str, str, bytes]]) -> float:
    """Resource + history rows per second, written the fastest plain way (no index rows)."""
    if backend == "sqlite":
        conn = sqlite3.connect(database, isolation_level=None)
        conn.executescript(
            "CREATE TEMP TABLE r AS SELECT * FROM resource WHERE 0;"
            "CREATE TEMP TABLE h AS SELECT * FROM history WHERE 0;"
        )
        started = time.perf_counter()
        conn.execute("BEGIN")
        conn.executemany(
            "INSERT INTO r (rk, tid, type, id, version, updated_ms, deleted, body) "
            "VALUES (?, 9, ?, ?, 1, 0, 0, ?)",
            [(i, t, x, b) for i, (t, x, b) in enumerate(rows)],
        )
        conn.executemany(
            "INSERT INTO h (seq, tid, rk, type, id, version, updated_ms, method, body) "
            "VALUES (?, 9, ?, ?, ?, 1, 0, 'PUT', ?)",
            [(i, i, t, x, b) for i, (t, x, b) in enumerate(rows)],
        )
        conn.execute("COMMIT")
        elapsed = time.perf_counter() - started
        conn.close()
        return len(rows) / elapsed
    with psycopg.connect(database) as pg:
        pg.execute("CREATE TEMP TABLE r (LIKE resource INCLUDING ALL)")
        pg.execute("CREATE TEMP TABLE h (LIKE history INCLUDING ALL)")
        started = time.perf_counter()
        with pg.cursor().copy(
            "COPY r (rk, tid, type, id, version, updated_ms, deleted, body) FROM STDIN"
        ) as c:
            for i, (t, x, b) in enumerate(rows):
                c.write_row((i, 9, t, x, 1, 0, 0, b))
        with pg.cursor().copy(
            "COPY h (seq, tid, rk, type, id, version, updated_ms, method, body) FROM STDIN"
        ) as c:
            for i, (t, x, b) in enumerate(rows):
                c.write_row((i, 9, i, t, x, 1, 0, "PUT", b))
        pg.commit()
        return len(rows) / (time.perf_counter() - started)


def select_limit(backend: str, database: str, ids: list[str], seconds: float) -> float:
    """Plain SELECTs of a Patient body by id on one connection, per second."""
    sql = "SELECT body FROM resource WHERE tid = 1 AND type = 'Patient' AND id = ?"
    conn: Any = (
        sqlite3.connect(database)
        if backend == "sqlite"
        else psycopg.connect(database, autocommit=True, prepare_threshold=0)
    )
    if backend != "sqlite":
        sql = to_pyformat(sql)
    n, started = 0, time.perf_counter()
    while time.perf_counter() - started < seconds:
        conn.execute(sql, (ids[n % len(ids)],)).fetchone()
        n += 1
    conn.close()
    return n / (time.perf_counter() - started)


def hand_limit(backend: str, database: str, kind: str, items: list[dict[str, str]]) -> float:
    """p50 ms of the hand-written SQL for one search kind."""
    conn: Any = (
        sqlite3.connect(database) if backend == "sqlite" else psycopg.connect(database, autocommit=True)
    )
    pid = dict(conn.execute("SELECT key, pid FROM param").fetchall())
    times = []
    for q in items[:60]:
        sql, params = hand_sql(kind, q, pid)
        if backend != "sqlite":
            sql = to_pyformat(sql)
        started = time.perf_counter()
        conn.execute(sql, params).fetchall()
        times.append((time.perf_counter() - started) * 1000)
    conn.close()
    times.sort()
    return times[len(times) // 2]


# -- one backend --------------------------------------------------------------------------------------
def measure(
    backend: str,
    database: str,
    data: Path,
    gen: Path,
    s: dict[str, Any],
    seconds: int,
    clients: int,
    workers: tuple[int, ...],
) -> dict[str, Any]:
    out: dict[str, Any] = {}
    db_env = ["--data", str(data), "--database", database]
    count = sum(1 for p in (gen / "ndjson").glob("*.ndjson") for _ in p.open("rb"))
    elapsed = timed(
        lambda: careweave(
            "load", str(gen / "ndjson"), *db_env, "--report", str(data.parent / f"rejected-{backend}.ndjson")
        )
    )
    out["load"] = count / elapsed
    careweave("tenant", "create", "bundles", *db_env)
    sql_path = str(data / "careweave.db") if backend == "sqlite" else database
    if backend == "sqlite":
        sqlite3.connect(sql_path).execute("ANALYZE").connection.close()
    else:
        with psycopg.connect(database, autocommit=True) as pg:
            pg.execute("ANALYZE")
    work = data.parent / f"work-{backend}"
    work.mkdir(exist_ok=True)
    ids = work / "ids.txt"
    ids.write_text("\n".join(s["patients"]) + "\n")
    body = work / "update.json"
    body.write_text(json.dumps({**PATIENT, "id": "__ID__", "name": [{"family": "Lewis__N__"}]}))
    qs = queries(s)
    every = work / "urls-all.txt"
    every.write_text("\n".join(url(q) for items in qs.values() for q in items) + "\n")
    lua = work / "mixed.lua"
    lua.write_text(MIXED_LUA)
    with server(database, data, 1) as base:
        out["bundles"] = post_bundles(base, sorted((gen / "bundles").glob("*.json")))
        env = {"BENCH_IDS": str(ids), "BENCH_PREFIX": "/fhir/Patient/"}
        wrk(f"{base}/", "read.lua", clients, 2, env)
        out["read"] = wrk(f"{base}/", "read.lua", clients, seconds, env)
        out["search"] = {}
        for kind, items in qs.items():
            urls = work / f"urls-{kind}.txt"
            urls.write_text("\n".join(url(q) for q in items) + "\n")
            wrk(f"{base}/", "urls.lua", clients, 1, {"BENCH_URLS": str(urls)})
            out["search"][kind] = wrk(f"{base}/", "urls.lua", clients, seconds, {"BENCH_URLS": str(urls)})
            out["search"][kind]["hand_p50"] = hand_limit(backend, sql_path, kind, items)
    out["mixed"] = {}
    for n in workers:
        with server(database, data, n) as base:
            env = {"BENCH_IDS": str(ids), "BENCH_URLS": str(every), "BENCH_BODY": str(body)}
            wrk(f"{base}/", str(lua), clients, 2, env)
            out["mixed"][n] = wrk(f"{base}/", str(lua), clients, seconds, env)
    out["insert_limit"] = insert_limit(backend, sql_path, rows_of(gen))
    out["select_limit"] = select_limit(backend, sql_path, s["patients"], min(seconds, 3))
    return out


def run(
    patients: int = 300, seconds: int = 5, clients: int = 16, workers: tuple[int, ...] = (1, 2, 4)
) -> dict[str, Any]:
    root = Path(os.environ.get("CAREWEAVE_BENCH_DIR", tempfile.gettempdir())) / "cw-backends"
    root.mkdir(parents=True, exist_ok=True)
    gen = generate(root, patients)
    s = samples(gen, random.Random(7))
    result: dict[str, Any] = {"patients": patients, "seconds": seconds, "clients": clients}
    with tempfile.TemporaryDirectory(dir=root) as tmp:
        result["sqlite"] = measure("sqlite", "", Path(tmp) / "sqlite", gen, s, seconds, clients, workers)
    with tempfile.TemporaryDirectory(dir=root) as tmp, postgres_database("careweave_bench") as pg:
        result["postgres"] = measure("postgres", pg, Path(tmp) / "pg", gen, s, seconds, clients, workers)
    return result


def table(result: dict[str, Any], printer: Callable[..., Any], title: str) -> None:
    from rich.table import Table

    t = Table(title=title)
    for col in ("scenario", "SQLite", "PostgreSQL", "limit (SQLite / PostgreSQL)"):
        t.add_column(col, justify="left" if col == "scenario" else "right")
    sq, pg = result["sqlite"], result["postgres"]

    def rate(r: dict[str, float]) -> str:
        return f"{r['rate']:,.0f}/s  p99 {r['p99']:.1f} ms" + (
            f"  ({r['errors']:.0f} err)" if r["errors"] else ""
        )

    t.add_row(
        "load NDJSON (resources/s)",
        f"{sq['load']:,.0f}",
        f"{pg['load']:,.0f}",
        f"plain insert {sq['insert_limit']:,.0f} / COPY {pg['insert_limit']:,.0f} rows/s",
    )
    t.add_row(
        "transaction Bundles, 4 clients (entries/s)", f"{sq['bundles']:,.0f}", f"{pg['bundles']:,.0f}", ""
    )
    t.add_row(
        f"read by id, {result['clients']} clients",
        rate(sq["read"]),
        rate(pg["read"]),
        f"plain SELECT, 1 conn: {sq['select_limit']:,.0f} / {pg['select_limit']:,.0f}/s",
    )
    for kind in sq["search"]:
        a, b = sq["search"][kind], pg["search"][kind]
        t.add_row(
            f"search {kind}", rate(a), rate(b), f"hand SQL p50 {a['hand_p50']:.2f} / {b['hand_p50']:.2f} ms"
        )
    for n in sq["mixed"]:
        t.add_row(f"mixed 60/25/15, {n} worker(s)", rate(sq["mixed"][n]), rate(pg["mixed"][n]), "")
    printer(t)


def save(result: dict[str, Any]) -> None:
    out = HERE / "results"
    out.mkdir(exist_ok=True)
    (out / f"backends-{int(time.time())}.json").write_text(json.dumps(result, indent=2, default=str))
