"""HL7 v2 gateway end to end: messages per second over MLLP into a real server, and ACK latency.

Run as ``python bench/gateway_bench.py [--seconds 10] [--connections 1,4,8]``. A ``careweave mllp``
server process (SQLite, ``synchronous=FULL``: every ACK follows an fsync'd commit) is fed the
generator's ADT and ORU feeds over several concurrent MLLP connections, each connection sending
a message and waiting for its ACK before the next (as MLLP senders do). Every message gets a fresh
MSH-10, so none is a duplicate. The connections share one cursor through the feed (in the feed's
order), and each row goes on where the last stopped: every message is new content (a patient's
A08 after their A01, a new encounter) until the feed runs out, when it starts again and the
"repeats" column says how many messages the server had already seen (a repeated message's
resources are unchanged, so only its message row and Provenance are written: far cheaper).
The feed is sent in MSH-7 order, as a live feed
would be. ``--patients`` sizes the feed (about 3.3 ADT and 2.3 ORU messages per patient). Rows:

* original mode: MSH-15/16 cleared; one commit holds the message row, its status and its
  resources; the ACK (AA) follows the commit;
* enhanced mode: the feeds as generated (MSH-15=AL, MSH-16=NE); the raw message is committed
  and the CA sent, then the resources are written with the status; "processed/s" counts until
  no message is left ``received`` (ACKs/s may run ahead of processing by the backlog bound);
* limits: the same pipeline without storage on one core in this process (parse, map, validate,
  index: the CPU the server spends per message besides SQL), and the MLLP round trip with a
  handler that only parses and ACKs (the transport).

"CPU ms" is the server's CPU time (user + system, its worker processes included) per message
over the measurement: the figure to compare when other work shares the cores. A timed run does
less work on a busy machine, and more of it is a feed's first pass (new content, every resource
validated and written), which costs more per message: ``--messages N`` sends a fixed N messages
per measurement instead (the same work whatever the load), for comparing CPU ms between runs.
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

# this checkout's careweave, unless PYTHONPATH names another (the server runs the same one)
sys.path.insert(
    0, (os.environ.get("PYTHONPATH") or str(Path(__file__).resolve().parents[1])).split(os.pathsep)[0]
)

import click
from rich.console import Console
from rich.table import Table

from careweave.gateway import Peer, serve_mllp
from careweave.generate import GeneratorConfig, generate
from careweave.hl7v2 import ACCEPTED, Framer, build_ack, frame, parse
from careweave.hl7v2.mapping import MapOptions, map_message
from careweave.hl7v2.mllp import Frame

ROOT = Path(__file__).resolve().parents[1]
CODE = os.environ.get("PYTHONPATH") or str(ROOT)


def feeds(patients: int = 400) -> dict[str, list[bytes]]:
    with tempfile.TemporaryDirectory() as tmp:
        generate(GeneratorConfig(patients=patients, organisations=6, seed=2), Path(tmp))
        return {
            kind.upper(): sorted(
                (m for m in (Path(tmp) / "hl7v2" / f"{kind}.hl7").read_bytes().split(b"\n") if m), key=sent_at
            )
            for kind in ("adt", "oru")
        }


def sent_at(raw: bytes) -> bytes:
    """MSH-7: a live feed sends its messages in time order (the generator writes them patient by
    patient, which would put one patient's messages side by side, each waiting for the last)."""
    return raw.partition(b"\r")[0].split(b"|")[6]


def original(raw: bytes) -> bytes:
    """The message with MSH-15 and MSH-16 cleared (original acknowledgement mode)."""
    msh, sep, rest = raw.partition(b"\r")
    fields = msh.split(b"|")
    for i in (14, 15):
        if i < len(fields):
            fields[i] = b""
    return b"|".join(fields) + sep + rest


def renumber(raw: bytes, control: str) -> bytes:
    msh, sep, rest = raw.partition(b"\r")
    fields = msh.split(b"|")
    fields[9] = control.encode()
    return b"|".join(fields) + sep + rest


class Server:
    """``careweave mllp`` in a child process on a fresh data directory."""

    def __init__(self, port: int, data: Path, workers: int) -> None:
        env = {**os.environ, "CAREWEAVE_SQLITE_SYNCHRONOUS": "FULL", "CAREWEAVE_LOG_LEVEL": "warning",
               "CAREWEAVE_HL7_WORKERS": str(workers), "PYTHONPATH": CODE}  # fmt: skip
        self.log = open(data.parent / f"mllp-{port}.log", "wb")  # noqa: SIM115
        # started outside any checkout: ``python -c`` puts its working directory first on the path,
        # which would run that checkout's careweave whatever PYTHONPATH says
        self.proc = subprocess.Popen(
            [sys.executable, "-c", "from careweave.cli import main; main()", "mllp", "--port", str(port),
             "--data", str(data)],
            env=env, stdout=self.log, stderr=subprocess.STDOUT, cwd=data.parent,
        )  # fmt: skip
        self.port = port

    async def ready(self) -> None:
        for _ in range(300):
            try:
                _, w = await asyncio.open_connection("127.0.0.1", self.port)
                w.close()
                return
            except OSError:
                await asyncio.sleep(0.1)
        raise RuntimeError("the MLLP server did not start")

    def cpu_seconds(self) -> float:
        """User + system CPU time of the server and its worker processes so far."""
        total, pending = 0.0, [self.proc.pid]
        while pending:
            pid = pending.pop()
            try:
                fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
                total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
                for task in Path(f"/proc/{pid}/task").iterdir():
                    pending += [int(c) for c in (task / "children").read_text().split()]
            except (OSError, ValueError):
                continue
        return total

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(20)
        self.log.close()


class Feed:
    """One cursor through a feed's messages, shared by the connections and by successive rows."""

    def __init__(self, messages: list[bytes]) -> None:
        self.messages = messages
        self.sent = 0

    def take(self) -> tuple[bytes, bool]:
        """The next message, and whether it was sent before (the feed ran out and started again)."""
        raw = self.messages[self.sent % len(self.messages)]
        self.sent += 1
        return raw, self.sent > len(self.messages)


async def _sender(
    port: int, feed: Feed, until: float, out: list[float], tag: str, count: int = 0
) -> tuple[int, int]:
    """Send until ``until`` (perf_counter), or ``count`` messages when it is not 0: (sent, repeats)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    framer = Framer(1 << 24)
    sent = repeats = 0
    try:
        while sent < count if count else time.perf_counter() < until:
            message, repeat = feed.take()
            raw = renumber(message, f"{tag}-{sent}")
            repeats += repeat
            started = time.perf_counter()
            writer.write(frame(raw))
            await writer.drain()
            got = False
            while not got:
                chunk = await reader.read(65536)
                if not chunk:
                    raise ConnectionError("closed")
                for event in framer.feed(chunk):
                    if isinstance(event, Frame):
                        got = True
                        if b"|AA|" not in event.payload and b"|CA|" not in event.payload:
                            raise RuntimeError(event.payload[:300])
            out.append(time.perf_counter() - started)
            sent += 1
    finally:
        writer.close()
    return sent, repeats


async def load(
    port: int, feed: Feed, connections: int, seconds: float, tag: str, total: int = 0
) -> dict[str, float]:
    """``seconds`` of load, or ``total`` messages (spread over the connections) when not 0."""
    latencies: list[float] = []
    each = -(-total // connections) if total else 0
    start = time.perf_counter()
    until = start + seconds
    counts = await asyncio.gather(
        *(_sender(port, feed, until, latencies, f"{tag}{c}", each) for c in range(connections))
    )
    elapsed = time.perf_counter() - start
    latencies.sort()
    return {
        "rate": sum(n for n, _ in counts) / elapsed,
        "p50": statistics.median(latencies) * 1000,
        "p99": latencies[int(len(latencies) * 0.99) - 1] * 1000,
        "n": sum(n for n, _ in counts),
        "repeats": sum(r for _, r in counts),
    }


def cpu_limit(messages: list[bytes], seconds: float) -> float:
    """Parse, map, validate and index on one core, no storage (the server's CPU per message)."""
    from careweave.search.indexer import Indexer
    from careweave.store.base import Tenant
    from careweave.system import _validate, load_definitions

    defs = load_definitions()
    indexer = Indexer(defs.search_params, defs.engine, defs.code_systems)
    validate = _validate(defs)
    tenant = Tenant(1, "default")
    options = MapOptions(ZoneInfo("Europe/London"))
    done, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        for entry in map_message(parse(messages[done % len(messages)]), options)["entry"]:
            validate(entry["resource"], tenant)
            indexer.index(entry["resource"])
        done += 1
    return done / (time.perf_counter() - start)


async def transport_limit(messages: list[bytes], connections: int, seconds: float) -> dict[str, float]:
    now = __import__("datetime").datetime(2024, 1, 1)

    async def handler(payload: bytes, peer: Peer) -> bytes:
        return build_ack(parse(payload), ACCEPTED, timestamp=now, control_id="1")

    server = await serve_mllp("127.0.0.1", 0, handler)
    try:
        return await load(server.sockets[0].getsockname()[1], Feed(messages), connections, seconds, "T")
    finally:
        server.close()


def cells(r: dict[str, Any]) -> list[str]:
    processed = f"{r['processed']:,.0f}" if "processed" in r else "-"
    cpu = f"{r['cpu_ms']:.2f}" if "cpu_ms" in r else "-"
    cells = [f"{r['rate']:,.0f}", processed, f"{r['p50']:.1f}", f"{r['p99']:.1f}", cpu, f"{r['n']:,}"]
    return [*cells, f"{r['repeats']:,}" if "cpu_ms" in r else "-"]  # the transport limit stores nothing


async def backlog_cleared(db: Path) -> float:
    """When no message is left ``received`` (enhanced mode processes after the CA)."""
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        while conn.execute("SELECT count(*) FROM hl7_message WHERE status = 'received'").fetchone()[0]:
            await asyncio.sleep(0.02)
        return time.perf_counter()
    finally:
        conn.close()


async def measure(table: Table, data: dict[str, list[bytes]], args: dict[str, Any]) -> None:
    levels, seconds = args["levels"], args["seconds"]
    port = 20000 + os.getpid() % 20000
    for kind in args["kinds"]:
        for mode in args["modes"]:
            messages = [original(m) for m in data[kind]] if mode == "original" else data[kind]
            for w in args["workers"]:
                port += 1
                with tempfile.TemporaryDirectory() as tmp:
                    server = Server(port, Path(tmp) / "data", w)
                    try:
                        await server.ready()
                        feed = Feed(messages)
                        await load(server.port, feed, 2, 1.0, "W")  # warm up
                        for level in levels:
                            started, cpu = time.perf_counter(), server.cpu_seconds()
                            r = await load(server.port, feed, level, seconds, f"{mode[0]}{w}{level}x",
                                           args["messages"])  # fmt: skip
                            settled = await backlog_cleared(Path(tmp) / "data" / "careweave.db")
                            r["processed"] = r["n"] / (settled - started)
                            r["cpu_ms"] = (server.cpu_seconds() - cpu) * 1000 / r["n"]
                            table.add_row(kind, mode, str(w), str(level), *cells(r))
                    finally:
                        server.stop()
        limit = cpu_limit([original(m) for m in data[kind]], min(seconds, 3.0))
        row = ["-", f"{limit:,.0f}", "-", "-", f"{1000 / limit:.2f}", "-", "-"]
        table.add_row(kind, "limit: parse+map+validate+index", "-", "1 core", *row)
        t = await transport_limit(data[kind], levels[-1], min(seconds, 3.0))
        table.add_row(kind, "limit: MLLP + parse + ACK only", "-", str(levels[-1]), *cells(t))


@click.command()
@click.option("--seconds", default=8.0, show_default=True, help="time per measurement")
@click.option("--connections", default="1,4,8", show_default=True, help="concurrent MLLP connections")
@click.option("--kinds", default="ADT,ORU", show_default=True)
@click.option("--modes", default="original,enhanced", show_default=True)
@click.option("--workers", default="0", show_default=True, help="server hl7_workers to compare (0,1)")
@click.option("--messages", default=0, show_default=True, help="messages per row (instead of --seconds)")
@click.option("--patients", default=6000, show_default=True, help="patients in the generated feeds")
def main(
    seconds: float, connections: str, kinds: str, modes: str, workers: str, messages: int, patients: int
) -> None:
    data = feeds(patients)
    import careweave

    where = Path(careweave.__file__).resolve().parents[1]
    title = f"HL7 v2 gateway end to end over MLLP ({os.cpu_count()} cores, SQLite synchronous=FULL, {where})"
    table = Table(title=title)
    columns = (
        "feed",
        "mode",
        "workers",
        "connections",
        "ACKs/s",
        "processed/s",
        "p50 ms",
        "p99 ms",
        "CPU ms",
        "messages",
        "repeats",
    )
    for column in columns:
        table.add_column(column, justify="left" if column in ("feed", "mode") else "right")
    args = {
        "levels": [int(c) for c in connections.split(",")],
        "seconds": seconds,
        "messages": messages,
        "kinds": kinds.split(","),
        "modes": modes.split(","),
        "workers": [int(w) for w in workers.split(",")],
    }
    asyncio.run(measure(table, data, args))
    Console(width=160).print(table)


if __name__ == "__main__":
    main()
