"""Subscriptions speed: deciding, building and signing notifications, delivering them.

Run as ``python bench/events_bench.py [--seconds 3]``. Prints one table:

* ``decide``: trigger decisions per second (a topic with previous/current criteria and a filter,
  in-memory matching, index rows of both versions built beforehand);
* ``build+sign``: notification Bundles built, rendered to JSON and signed per second (id-only and
  full-resource, one event each);
* ``rest-hook cN``: RestHookChannel deliveries per second to a real receiver (uvicorn in another
  process on 127.0.0.1) with N deliveries in flight;
* ``jetstream cN``: JetStream publishes per second, each awaited for its ack from a file-backed
  stream (skipped when NATS is not at 127.0.0.1:4222).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import secrets
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402
from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402

from careweave.events.channels.base import Delivery  # noqa: E402
from careweave.events.channels.resthook import RestHookChannel  # noqa: E402
from careweave.events.notification import EventInfo, ResourceRef, StatusInfo, notification_bundle, render_json  # noqa: E402
from careweave.events.signing import sign  # noqa: E402
from careweave.events.subscription import read_subscription  # noqa: E402
from careweave.events.topic import read_topic  # noqa: E402
from careweave.events.trigger import ChangeEvent, Version, compile_subscription, compile_topic, decide  # noqa: E402
from careweave.search.indexer import Indexer  # noqa: E402
from careweave.search.params import SearchContext  # noqa: E402
from careweave.system import load_definitions  # noqa: E402
from tests.events.conftest import discharge_topic_native, subscription  # noqa: E402
from tests.events.receiver import free_port  # noqa: E402

SECRET = b"bench-secret"


def timed(fn: Callable[[], object], seconds: float) -> float:
    n, start = 0, time.perf_counter()
    while (elapsed := time.perf_counter() - start) < seconds:
        for _ in range(100):
            fn()
        n += 100
    return n / elapsed


async def timed_async(
    fn: Callable[[], Awaitable[bool]], concurrency: int, seconds: float
) -> tuple[float, int]:
    done = failed = 0
    stop = time.perf_counter() + seconds

    async def worker() -> None:
        nonlocal done, failed
        while time.perf_counter() < stop:
            if await fn():
                done += 1
            else:
                failed += 1

    start = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return done / (time.perf_counter() - start), failed


def encounter(status: str) -> dict:
    return {"resourceType": "Encounter", "id": "e1", "meta": {"versionId": "2"}, "status": status,
            "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "IMP"},
            "subject": {"reference": "Patient/p1"}, "period": {"start": "2024-06-01T09:00:00Z"}}


def pure_rows(seconds: float) -> list[tuple[str, float, str]]:
    defs = load_definitions()
    ctx = SearchContext(defs.search_params, defs.model.resource_types, "https://example.org/fhir")
    indexer = Indexer(defs.search_params, defs.engine, defs.code_systems)
    topic, _ = compile_topic(read_topic(discharge_topic_native())[0], ctx, defs.engine)
    spec, _ = read_subscription(subscription(filters=("Encounter?patient=Patient/p1",)))
    sub, _ = compile_subscription(spec, topic, ctx)
    before, after = encounter("in-progress"), encounter("finished")
    event = ChangeEvent("Encounter", "e1", "update", Version(before, indexer.index(before)),
                        Version(after, indexer.index(after)))
    rows = [("decide (topic + filter)", timed(lambda: decide(event, sub, now_ms=0), seconds), "decisions/s")]
    status = StatusInfo("sub-1", "active", "event-notification", topic.url, 42)
    for content in ("id-only", "full-resource"):
        info = EventInfo(42, 1_717_243_200_000, ResourceRef("Encounter", "e1", 2), "update", after)

        def build(content: str = content, info: EventInfo = info) -> None:
            body = render_json(notification_bundle(status, [info], content=content,
                                                   base_url="https://example.org/fhir",
                                                   bundle_id="6f1c7a0e-2b4d-4c1e-9f5a-0d1e2f3a4b5c",
                                                   timestamp_ms=1_717_243_200_000))
            sign(SECRET, body, 1_717_243_200)

        rows.append((f"build+sign ({content})", timed(build, seconds), "notifications/s"))
    return rows


def start_receiver(port: int) -> subprocess.Popen[bytes]:
    code = ("import time; from tests.events.receiver import Receiver; "
            f"Receiver({port}).start(); time.sleep(3600)")
    proc = subprocess.Popen([sys.executable, "-c", code], cwd=ROOT)
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        try:
            httpx.post(f"http://127.0.0.1:{port}/hook", content=b"{}", timeout=1)
            return proc
        except httpx.HTTPError:
            time.sleep(0.1)
    proc.kill()
    raise RuntimeError("the receiver did not start")


async def resthook_rows(seconds: float) -> list[tuple[str, float, str]]:
    port = free_port()
    proc = start_receiver(port)
    rows = []
    try:
        limits = httpx.Limits(max_connections=64, max_keepalive_connections=64)
        async with httpx.AsyncClient(limits=limits) as client:
            channel = RestHookChannel(client)
            body = b'{"resourceType":"Bundle","type":"history","entry":[]}' * 20
            for concurrency in (1, 8, 32):
                async def send() -> bool:
                    delivery = Delivery(secrets.token_hex(8), "trust-a", "sub-1", body,
                                        endpoint=f"http://127.0.0.1:{port}/hook", signing_secret=SECRET)
                    return (await channel.deliver(delivery)).ok

                rate, failed = await timed_async(send, concurrency, seconds)
                rows.append((f"rest-hook c{concurrency}", rate, f"deliveries/s ({failed} failed)"))
    finally:
        proc.kill()
        proc.wait()
    return rows


async def jetstream_rows(seconds: float) -> list[tuple[str, float, str]]:
    try:
        import nats

        from careweave.events.channels.jetstream import JetStreamChannel, StreamSpec, ensure_stream

        _, writer = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", 4222), 2)
        writer.close()
        nc = await asyncio.wait_for(nats.connect("nats://127.0.0.1:4222", allow_reconnect=False), 5)
    except Exception as exc:
        return [("jetstream", 0.0, f"skipped: {exc!r}")]
    tag = secrets.token_hex(4)
    spec = StreamSpec(name=f"CWBENCH_{tag}", subject_prefix=f"cwbench{tag}", max_age_s=600)
    rows = []
    try:
        js = nc.jetstream()
        await ensure_stream(js, spec)
        channel = JetStreamChannel(js, spec)
        body = b'{"resourceType":"Bundle","type":"history","entry":[]}' * 20
        for concurrency in (1, 8, 32):
            async def publish() -> bool:
                delivery = Delivery(secrets.token_hex(8), "trust-a", "sub-1", body, signing_secret=SECRET)
                return (await channel.deliver(delivery)).ok

            rate, failed = await timed_async(publish, concurrency, seconds)
            rows.append((f"jetstream c{concurrency} (file, acked)", rate, f"publishes/s ({failed} failed)"))
    finally:
        await nc.jetstream().delete_stream(spec.name)
        await nc.close()
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=3.0)
    args = parser.parse_args()
    rows = pure_rows(args.seconds)
    rows += asyncio.run(resthook_rows(args.seconds))
    rows += asyncio.run(jetstream_rows(args.seconds))
    table = Table(title=f"careweave events ({os.cpu_count()} cores, Python {platform.python_version()})")
    table.add_column("scenario")
    table.add_column("rate", justify="right")
    table.add_column("unit")
    for name, rate, unit in rows:
        table.add_row(name, f"{rate:,.0f}", unit)
    Console(width=120).print(table)


if __name__ == "__main__":
    main()
