"""Search at scale: ~1M generated resources, eight kinds of query, beside hand-written SQL.

For each query kind: p50/p99 over HTTP (wrk, 1 and 16 connections, a list of varied URLs), the
search engine's own time in-process (the same queries through Store.search), and the same query
written by hand in SQL on the same tables (the limit). The query plans SQLite chose are printed.
The data set is built once per data directory (generate + load) and reused.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from bench.crud import free_port, wrk

HERE = Path(__file__).parent
# SQLite index rows are keyed rk << 24 | ordinal (careweave/store/sql/schema.py): one resource's rows
_ROWS_OF = "{a}.ik BETWEEN ({rk} << 24) AND (({rk} << 24) | 16777215)"
NHS = "https://fhir.nhs.uk/Id/nhs-number"
# a fixed pseudo-random order of rows (the same samples on every run: runs compare)
_SHUFFLED = "(rowid * 7919) % 1000003, rowid"


def prepare(data: Path, patients: int) -> None:
    """Generate and load the population once; ANALYZE so the planner knows the tables."""
    marker = data / f"loaded-{patients}"
    if marker.exists():
        return
    gen = data.parent / f"gen-{patients}"
    if not (gen / "summary.json").exists():
        subprocess.run([sys.executable, "-m", "careweave.cli", "generate", str(gen), "--patients",
                        str(patients), "--formats", "ndjson", "--seed", "1"], check=True)
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "careweave.cli", "load", str(gen / "ndjson"), "--data",
                    str(data), "--report", str(data.parent / "rejected.ndjson")], check=True)
    print(f"loaded in {time.perf_counter() - started:.0f} s")
    conn = sqlite3.connect(data / "careweave.db")
    conn.execute("ANALYZE")
    conn.close()
    marker.write_text("ok")


def samples(db: Path, n: int, seed: int = 7) -> dict[str, list[Any]]:
    """Values to query with: patients, codes, names, identifiers, dates."""
    rng = random.Random(seed)
    conn = sqlite3.connect(db)
    pid = dict(conn.execute("SELECT key, pid FROM param"))
    patients = [r[0] for r in conn.execute(
        "SELECT id FROM resource WHERE tid = 1 AND type = 'Patient' ORDER BY " + _SHUFFLED + " LIMIT ?",
        (n,))]
    codes = [r for r in conn.execute(
        "SELECT system, code, count(*) c FROM ix_token WHERE tid = 1 AND pid = ? "
        "GROUP BY system, code ORDER BY c DESC LIMIT 40", (pid["Observation.code"],))]
    rare = [c for c in codes if c[2] < 20000] or codes
    names = [r[0] for r in conn.execute(
        "SELECT norm FROM ix_string WHERE tid = 1 AND pid = ? ORDER BY " + _SHUFFLED + " LIMIT ?",
        (pid["Patient.family"], n))]
    nhs = [r[0] for r in conn.execute(
        "SELECT code FROM ix_token WHERE tid = 1 AND pid = ? AND system = ? ORDER BY " + _SHUFFLED + " "
        "LIMIT ?", (pid["Patient.identifier"], NHS, n))]
    conn.close()
    return {"patients": patients, "codes": [(s, c) for s, c, _ in rare], "names": names,
            "nhs": nhs, "pid": pid, "rng": rng}


def queries(s: dict[str, Any]) -> dict[str, list[dict[str, str]]]:
    """Eight query kinds, each a list of parameter sets (path, params)."""
    rng: random.Random = s["rng"]

    def pick(key: str) -> Any:
        return rng.choice(s[key])

    out: dict[str, list[dict[str, str]]] = {k: [] for k in (
        "token", "patient+date", "string", "chained", "_has", "_include", "_sort=-date",
        "_summary=count")}
    for _ in range(200):
        system, code = pick("codes")
        patient = pick("patients")
        out["token"].append({"path": "Observation", "code": f"{system}|{code}"})
        out["patient+date"].append({"path": "Observation", "patient": f"Patient/{patient}",
                                    "date": "ge2015-01-01", "date2": "lt2025-01-01"})
        out["string"].append({"path": "Patient", "name": pick("names")[:5]})
        out["chained"].append({"path": "Observation",
                               "patient.identifier": f"{NHS}|{pick('nhs')}"})
        out["_has"].append({"path": "Patient", "_has:Observation:patient:code": code,
                            "name": pick("names")[:4]})
        out["_include"].append({"path": "Observation", "patient": f"Patient/{patient}",
                                "_include": "Observation:subject"})
        out["_sort=-date"].append({"path": "Observation", "_sort": "-date", "_count": "10"})
        out["_summary=count"].append({"path": "Observation", "code": f"{system}|{code}",
                                      "_summary": "count"})
    return out


def url(q: dict[str, str]) -> str:
    params = [(k.rstrip("2"), v) for k, v in q.items() if k != "path"]
    return f"/fhir/{q['path']}?{urlencode(params)}"


def hand_sql(kind: str, q: dict[str, str], pid: dict[str, int]) -> tuple[str, list[Any]]:
    """The same query, written by hand for these tables: the first page (20) of bodies."""
    if kind in ("token", "_summary=count"):
        system, code = q["code"].split("|")
        select = "count(*)" if kind == "_summary=count" else "r.body"
        limit = "" if kind == "_summary=count" else " ORDER BY r.rk LIMIT 20"
        return (f"SELECT {select} FROM ix_token t JOIN resource r ON r.rk = t.ik >> 24 WHERE t.tid = 1 "
                f"AND t.pid = ? AND t.code = ? AND t.system = ? AND r.deleted = 0{limit}",
                [pid["Observation.code"], code, system])
    if kind in ("patient+date", "_include"):
        patient = q["patient"].split("/")[1]
        if kind == "_include":
            # the page, then the resources its subjects refer to (as the engine does: it does
            # not know they are all the one patient searched for)
            return ("WITH page AS (SELECT r.rk, r.type, r.id, r.version, r.updated_ms, r.body FROM "
                    "ix_reference f JOIN resource r ON r.rk = f.ik >> 24 WHERE f.tid = 1 AND f.pid = ? "
                    "AND f.target_id = ? AND f.target_type = 'Patient' AND r.deleted = 0 ORDER BY r.rk "
                    "LIMIT 21) SELECT * FROM page UNION ALL SELECT p.rk, p.type, p.id, p.version, "
                    "p.updated_ms, p.body FROM resource p WHERE p.tid = 1 AND p.type = 'Patient' AND "
                    "p.deleted = 0 AND p.id IN (SELECT s.target_id FROM page CROSS JOIN ix_reference s "
                    f"NOT INDEXED ON {_ROWS_OF.format(a='s', rk='page.rk')} WHERE s.tid = 1 AND s.pid = ? "
                    "AND s.target_type = 'Patient')",
                    [pid["Observation.patient"], patient, pid["Observation.subject"]])
        return ("SELECT r.body FROM ix_reference f JOIN resource r ON r.rk = f.ik >> 24 "
                f"JOIN ix_date d NOT INDEXED ON {_ROWS_OF.format(a='d', rk='r.rk')} "
                "AND d.tid = 1 AND d.pid = ? WHERE f.tid = 1 AND "
                "f.pid = ? AND f.target_id = ? AND f.target_type = 'Patient' AND r.deleted = 0 "
                "AND d.hi > ? AND d.lo < ? ORDER BY r.rk LIMIT 20",
                [pid["Observation.date"], pid["Observation.patient"], patient, 1420070400000,
                 1735689600000])
    if kind == "string":
        name = q["name"]
        return ("SELECT r.body FROM resource r WHERE r.rk IN (SELECT s.ik >> 24 FROM ix_string s WHERE "
                "s.tid = 1 AND s.pid = ? AND s.norm >= ? AND s.norm < ?) AND r.deleted = 0 "
                "ORDER BY r.rk LIMIT 20", [pid["Patient.name"], name, name + "\U0010ffff"])
    if kind == "chained":
        system, value = q["patient.identifier"].split("|")
        return ("SELECT r.body FROM ix_token t JOIN resource p ON p.rk = t.ik >> 24 "
                "JOIN ix_reference f ON f.tid = 1 AND f.pid = ? AND f.target_type = 'Patient' "
                "AND f.target_id = p.id JOIN resource r ON r.rk = f.ik >> 24 WHERE t.tid = 1 AND t.pid = ? "
                "AND t.code = ? AND t.system = ? AND r.deleted = 0 ORDER BY r.rk LIMIT 20",
                [pid["Observation.patient"], pid["Patient.identifier"], value, system])
    if kind == "_has":
        name = q["name"]
        code = q["_has:Observation:patient:code"]
        return ("SELECT p.body FROM ix_string s JOIN resource p ON p.rk = s.ik >> 24 WHERE s.tid = 1 "
                "AND s.pid = ? AND s.norm >= ? AND s.norm < ? AND EXISTS (SELECT 1 FROM ix_reference f "
                f"JOIN ix_token t NOT INDEXED ON {_ROWS_OF.format(a='t', rk='(f.ik >> 24)')} "
                "AND t.tid = 1 AND t.pid = ? AND t.code = ? "
                "WHERE f.tid = 1 AND f.pid = ? AND f.target_type = 'Patient' AND f.target_id = p.id) "
                "ORDER BY p.rk LIMIT 20",
                [pid["Patient.name"], name, name + "\U0010ffff", pid["Observation.code"], code,
                 pid["Observation.patient"]])
    # _sort=-date
    return ("SELECT r.body FROM ix_date d JOIN resource r ON r.rk = d.ik >> 24 WHERE d.tid = 1 AND d.pid = ? "
            "AND d.flags & 2 = 2 AND r.type = 'Observation' AND r.deleted = 0 ORDER BY d.hi DESC, r.rk "
            "LIMIT 10", [pid["Observation.date"]])


def _pcts(values: list[float]) -> tuple[float, float]:
    values = sorted(values)
    return statistics.median(values), values[min(len(values) - 1, int(len(values) * 0.99))]


def time_engine_and_hand(
    data: Path, db: Path, kind: str, qs: list[dict[str, str]], pid: dict[str, int], passes: int = 3
) -> tuple[tuple[float, float, float], tuple[float, float, float], list[str]]:
    """The search engine alone, in-process (plan, SQL, page: ``Store.search``; parsing and HTTP
    not timed), and the same query by hand in SQL on its own read-only connection, alternated query
    by query (so a machine that speeds up or slows down meanwhile moves both alike). For each:
    p50 and p99 ms, and CPU µs per query (process time: noisy neighbours inflate wall time; the
    engine's includes its reader pool's). Also the plan of the first query."""
    from urllib.parse import parse_qsl

    from careweave.search.params import SearchContext, parse_search
    from careweave.settings import Settings
    from careweave.system import build_system

    hand = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    hand.execute("PRAGMA cache_size = -65536")

    async def run() -> tuple[tuple[float, float, float], tuple[float, float, float], list[str]]:
        system = build_system(Settings(data_dir=data))
        tenant = await system.store.tenant("default")
        ctx = SearchContext(system.definitions.search_params, system.services.resource_types, "",
                            None)
        plans = [parse_search((q["path"],), parse_qsl(url(q).split("?", 1)[1]), ctx, count=20,
                              max_count=1000).plan for q in qs]
        statements = [hand_sql(kind, q, pid) for q in qs]
        engine: list[float] = []
        by_hand: list[float] = []
        cpu = [0.0, 0.0]
        for _ in range(passes):
            for plan, (sql, params) in zip(plans, statements, strict=True):
                c, t = time.process_time(), time.perf_counter()
                await system.store.search(tenant, plan)
                engine.append((time.perf_counter() - t) * 1000)
                cpu[0] += time.process_time() - c
                c, t = time.process_time(), time.perf_counter()
                hand.execute(sql, params).fetchall()
                by_hand.append((time.perf_counter() - t) * 1000)
                cpu[1] += time.process_time() - c
        plan_text = await system.store.explain(tenant, plans[0])  # type: ignore[attr-defined]
        await system.close()
        n = len(engine)
        return ((*_pcts(engine[10:]), cpu[0] / n * 1e6), (*_pcts(by_hand[10:]), cpu[1] / n * 1e6),
                plan_text)

    try:
        return asyncio.run(run())
    finally:
        hand.close()


def run(patients: int = 20000, seconds: int = 8, data_root: Path | None = None) -> dict[str, Any]:
    root = data_root or Path(os.environ.get("CAREWEAVE_BENCH_DIR", tempfile.gettempdir())) / "cw-search"
    data = root / "data"
    data.mkdir(parents=True, exist_ok=True)
    prepare(data, patients)
    db = data / "careweave.db"
    conn = sqlite3.connect(db)
    total = conn.execute("SELECT count(*) FROM resource WHERE tid = 1").fetchone()[0]
    conn.close()
    s = samples(db, 200)
    qs = queries(s)
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "careweave.cli", "serve", "--data", str(data),
                             "--port", str(port)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    from bench.crud import wait_idle, wait_up

    wait_up(f"http://127.0.0.1:{port}/health", proc)
    print(f"server idle after {wait_idle(proc):.0f} s", flush=True)  # the MPI catches up first
    rows = []
    try:
        for kind, items in qs.items():
            urls = root / f"urls-{kind}.txt"
            urls.write_text("\n".join(url(q) for q in items) + "\n")
            env = {"BENCH_URLS": str(urls)}
            http = {}
            for clients in (1, 16):
                wrk(f"http://127.0.0.1:{port}/", "urls.lua", clients, 2, env)
                http[clients] = wrk(f"http://127.0.0.1:{port}/", "urls.lua", clients, seconds, env)
            engine, hand, plan = time_engine_and_hand(data, db, kind, items, s["pid"])
            rows.append({"query": kind, "http": http, "engine": engine, "hand": hand,
                         "plan": plan, "example": url(items[0])})
    finally:
        proc.terminate()
        proc.wait()
    return {"resources": total, "rows": rows}


def table(result: dict[str, Any], printer: Callable[..., None]) -> None:
    from rich.table import Table

    t = Table(title=f"careweave search, {result['resources']:,} resources (SQLite)")
    for col in ("query", "1 client p50/p99 ms", "16 clients p50/p99 ms", "16 clients req/s",
                "engine p50/p99 ms", "hand SQL p50/p99 ms", "engine/hand p50", "engine/hand CPU"):
        t.add_column(col, justify="left" if col == "query" else "right")
    for r in result["rows"]:
        h1, h16 = r["http"][1], r["http"][16]
        ratio = r["engine"][0] / r["hand"][0] if r["hand"][0] else float("nan")
        cpu = r["engine"][2] / r["hand"][2] if len(r["hand"]) > 2 and r["hand"][2] else float("nan")
        t.add_row(r["query"], f"{h1['p50']:.2f} / {h1['p99']:.2f}", f"{h16['p50']:.2f} / {h16['p99']:.2f}",
                  f"{h16['rate']:,.0f}", f"{r['engine'][0]:.2f} / {r['engine'][1]:.2f}",
                  f"{r['hand'][0]:.2f} / {r['hand'][1]:.2f}", f"{ratio:.1f}x", f"{cpu:.1f}x")
    printer(t)
    for r in result["rows"]:
        printer(f"[bold]{r['query']}[/bold]  {r['example']}")
        for line in r["plan"]:
            printer(f"    {line}")


def save(result: dict[str, Any]) -> None:
    out = HERE / "results"
    out.mkdir(exist_ok=True)
    (out / f"search-{int(time.time())}.json").write_text(json.dumps(result, indent=2, default=str))
