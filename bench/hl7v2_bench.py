"""HL7 v2 gateway speed: parse, parse + map, and a full MLLP round trip, for ADT and ORU.

Run as ``python bench/hl7v2_bench.py [--seconds 3]``. Messages are careweave.generate's own feeds
(a small population written to a temporary directory: ADT A01/A03/A04/A08/A31/A40 and ORU^R01),
cycled. Columns, in messages per second on one core:

* parse: :func:`careweave.hl7v2.parse` (bytes -> Message, fields split; values are read later);
* parse + read: parse, then read every field of every segment (repetitions, components,
  unescaping), which is what a mapping touches at most;
* parse + map: parse and :func:`careweave.hl7v2.mapping.map_message` to a transaction Bundle;
* parse + map + JSON: the same, then the Bundle serialised with orjson (what storage receives);
* MLLP round trip: one client connection sending framed messages one at a time to
  :func:`careweave.gateway.serve_mllp` on localhost with a handler that parses and ACKs;
* ``hl7`` / ``hl7apy``: the PyPI packages' parse rates on the same messages, when installed.
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import click
import orjson
from rich.console import Console
from rich.table import Table

from careweave.gateway import Peer, send_messages, serve_mllp
from careweave.generate import GeneratorConfig, generate
from careweave.hl7v2 import ACCEPTED, build_ack, parse
from careweave.hl7v2.mapping import MapOptions, map_message

OPTIONS = MapOptions(ZoneInfo("Europe/London"))
NOW = datetime(2024, 1, 1, tzinfo=UTC)


def feeds() -> dict[str, list[bytes]]:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        generate(GeneratorConfig(patients=400, organisations=6, seed=2), out)
        return {
            kind.upper(): [m for m in (out / "hl7v2" / f"{kind}.hl7").read_bytes().split(b"\n") if m]
            for kind in ("adt", "oru")
        }


def rate(fn: Callable[[bytes], object], messages: list[bytes], seconds: float) -> float:
    for m in messages[:50]:
        fn(m)
    done, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        for m in messages:
            fn(m)
        done += len(messages)
    return done / (time.perf_counter() - start)


def read_all(raw: bytes) -> None:
    message = parse(raw)
    for seg in message.segments:
        for n in range(3, len(seg.fields)):
            seg.repetitions(n)


def map_json(raw: bytes) -> bytes:
    return orjson.dumps(map_message(parse(raw), OPTIONS))


async def _handler(payload: bytes, peer: Peer) -> bytes:
    return build_ack(parse(payload), ACCEPTED, timestamp=NOW, control_id="1")


async def _round_trip(messages: list[bytes], seconds: float) -> float:
    server = await serve_mllp("127.0.0.1", 0, _handler)
    port = server.sockets[0].getsockname()[1]
    try:
        await send_messages("127.0.0.1", port, messages[:50])
        done, start = 0, time.perf_counter()
        while time.perf_counter() - start < seconds:
            done += len(await send_messages("127.0.0.1", port, messages))
        return done / (time.perf_counter() - start)
    finally:
        server.close()
        await server.wait_closed()


def _others() -> dict[str, Callable[[bytes], object]]:
    found: dict[str, Callable[[bytes], object]] = {}
    try:
        import hl7  # type: ignore[import-untyped, import-not-found, unused-ignore]

        found["hl7 (PyPI) parse"] = lambda raw: hl7.parse(raw.decode("utf-8"))
    except ImportError:
        pass
    try:
        from hl7apy.parser import parse_message  # type: ignore[import-untyped, import-not-found, unused-ignore]

        found["hl7apy parse"] = lambda raw: parse_message(raw.decode("utf-8"), find_groups=False)
    except ImportError:
        pass
    return found


@click.command()
@click.option("--seconds", default=2.0, show_default=True, help="time per measurement")
def main(seconds: float) -> None:
    data = feeds()
    table = Table(title="HL7 v2: messages per second (one core)")
    table.add_column("measure")
    for kind, messages in data.items():
        table.add_column(f"{kind} ({len(messages)} msgs, {sum(map(len, messages)) // len(messages)} B avg)",
                         justify="right")  # fmt: skip
    rows: dict[str, Callable[[bytes], object]] = {
        "parse": parse,
        "parse + read every field": read_all,
        "parse + map": lambda raw: map_message(parse(raw), OPTIONS),
        "parse + map + JSON": map_json,
        **_others(),
    }
    for name, fn in rows.items():
        cells = []
        for messages in data.values():
            try:
                cells.append(f"{rate(fn, messages, seconds):,.0f}")
            except Exception as exc:  # a third-party parser that refuses a message
                cells.append(f"failed: {type(exc).__name__}")
        table.add_row(name, *cells)
    trips = [f"{asyncio.run(_round_trip(m, seconds)):,.0f}" for m in data.values()]
    table.add_row("MLLP round trip (parse + ACK handler)", *trips)
    Console().print(table)


if __name__ == "__main__":
    main()
