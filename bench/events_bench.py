"""Subscriptions speed: deciding, building and signing notifications, delivering them.

Run as ``python bench/events_bench.py [--seconds 3]``. Prints one table:

* ``decide``: trigger decisions per second (a topic with previous/current criteria and a filter,
  in-memory matching, index rows of both versions built beforehand);
* ``build+sign``: notification Bundles built, rendered to JSON and signed per second (id-only and
  full-resource, one event each);
* ``rest-hook (httpx|careweave) cN``: deliveries per second to a real receiver (uvicorn in another
  process on 127.0.0.1) with N deliveries in flight, through RestHookChannel (httpx) and through
  FastRestHookChannel (careweave's own HTTP/1.1 client, the one the worker uses);
* ``jetstream cN``: JetStream publishes per second, each awaited for its ack from a file-backed
  stream (skipped when NATS is not at 127.0.0.1:4222);
* ``commit->webhook``: a real ``careweave serve`` (in-process worker), ten rest-hook subscriptions and a
  receiver process; an open-loop load of 200 Observation writes/s, each matching one subscription:
  p50 / p99 of receive time minus the event's commit timestamp;
* ``notifications/s``: ten more subscriptions matching every write, a burst of writes, and the rate
  at which the receiver gets the notifications.
* ``commit->websocket``: a ``careweave serve`` with its in-process worker off and one
  ``careweave worker`` process dispatching; one websocket client bound to the server; an open-loop
  load of 100 writes/s: p50 / p99 of receive time minus the event's timestamp (both processes find
  the other's work by polling, ``CAREWEAVE_EVENTS_POLL_MS`` = 100 here).
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
import orjson  # noqa: E402
from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402

from careweave.events.channels.base import Channel, Delivery  # noqa: E402
from careweave.events.channels.hookclient import FastRestHookChannel, HookClient  # noqa: E402
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
    return {
        "resourceType": "Encounter",
        "id": "e1",
        "meta": {"versionId": "2"},
        "status": status,
        "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "IMP"},
        "subject": {"reference": "Patient/p1"},
        "period": {"start": "2024-06-01T09:00:00Z"},
    }


def pure_rows(seconds: float) -> list[tuple[str, float, str]]:
    defs = load_definitions()
    ctx = SearchContext(defs.search_params, defs.model.resource_types, "https://example.org/fhir")
    indexer = Indexer(defs.search_params, defs.engine, defs.code_systems)
    topic, _ = compile_topic(read_topic(discharge_topic_native())[0], ctx, defs.engine)
    spec, _ = read_subscription(subscription(filters=("Encounter?patient=Patient/p1",)))
    sub, _ = compile_subscription(spec, topic, ctx)
    before, after = encounter("in-progress"), encounter("finished")
    event = ChangeEvent(
        "Encounter",
        "e1",
        "update",
        Version(before, indexer.index(before)),
        Version(after, indexer.index(after)),
    )
    rows = [("decide (topic + filter)", timed(lambda: decide(event, sub, now_ms=0), seconds), "decisions/s")]
    status = StatusInfo("sub-1", "active", "event-notification", topic.url, 42)
    for content in ("id-only", "full-resource"):
        info = EventInfo(42, 1_717_243_200_000, ResourceRef("Encounter", "e1", 2), "update", after)

        def build(content: str = content, info: EventInfo = info) -> None:
            body = render_json(
                notification_bundle(
                    status,
                    [info],
                    content=content,
                    base_url="https://example.org/fhir",
                    bundle_id="6f1c7a0e-2b4d-4c1e-9f5a-0d1e2f3a4b5c",
                    timestamp_ms=1_717_243_200_000,
                )
            )
            sign(SECRET, body, 1_717_243_200)

        rows.append((f"build+sign ({content})", timed(build, seconds), "notifications/s"))
    return rows


def start_receiver(port: int) -> subprocess.Popen[bytes]:
    code = (
        f"import time; from tests.events.receiver import Receiver; Receiver({port}).start(); time.sleep(3600)"
    )
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
    """Deliveries/s to a real receiver process: the httpx channel and careweave's own client."""
    port = free_port()
    proc = start_receiver(port)
    rows = []
    body = b'{"resourceType":"Bundle","type":"history","entry":[]}' * 20
    try:
        limits = httpx.Limits(max_connections=64, max_keepalive_connections=64)
        async with httpx.AsyncClient(limits=limits) as client:
            hook_client = HookClient()
            channels = {"httpx": RestHookChannel(client), "careweave": FastRestHookChannel(hook_client)}
            for name, channel in channels.items():
                for concurrency in (1, 8, 32):

                    async def send(channel: Channel = channel) -> bool:
                        delivery = Delivery(
                            secrets.token_hex(8),
                            "trust-a",
                            "sub-1",
                            body,
                            endpoint=f"http://127.0.0.1:{port}/hook",
                            signing_secret=SECRET,
                        )
                        return (await channel.deliver(delivery)).ok

                    rate, failed = await timed_async(send, concurrency, seconds)
                    rows.append(
                        (f"rest-hook ({name}) c{concurrency}", rate, f"deliveries/s ({failed} failed)")
                    )
            await hook_client.aclose()
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


# -- end to end: careweave serve -> dispatcher -> worker -> webhook ---------------------------------------
RECEIVER_APP = """
import time, orjson
from datetime import datetime
latencies = []
firsts = {}
async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    body = b""
    while True:
        m = await receive()
        body += m.get("body", b"")
        if not m.get("more_body"):
            break
    now = time.time()
    if scope["method"] == "GET":
        out = orjson.dumps({"latencies": latencies, "count": len(latencies)})
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": out})
        return
    if body:
        for p in orjson.loads(body)["entry"][0]["resource"]["parameter"]:
            if p["name"] == "notification-event":
                for part in p["part"]:
                    if part["name"] == "timestamp":
                        at = datetime.fromisoformat(part["valueInstant"]).timestamp()
                        latencies.append((now, now - at))
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b""})
"""


def _start(
    args: list[str], env: dict[str, str] | None = None, log: Path | None = None
) -> subprocess.Popen[bytes]:
    out = open(log, "wb") if log else subprocess.DEVNULL  # noqa: SIM115
    return subprocess.Popen(
        args, cwd=ROOT, env={**os.environ, **(env or {})}, stdout=out, stderr=subprocess.STDOUT
    )


def _wait_http(url: str) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            httpx.get(url, timeout=1)
            return
        except httpx.HTTPError:
            time.sleep(0.1)
    raise RuntimeError(f"{url} did not come up")


_TOPIC = "https://careweave.org/fhir/SubscriptionTopic/bench-observation"


def _topics_file(tmp: str) -> str:
    """A built-in topic: Observations created with status final."""
    topic = {
        "resourceType": "SubscriptionTopic",
        "url": _TOPIC,
        "status": "active",
        "resourceTrigger": [
            {
                "resource": "Observation",
                "supportedInteraction": ["create"],
                "queryCriteria": {"current": "status=final"},
            }
        ],
    }
    path = Path(tmp, "topics.json")
    path.write_bytes(orjson.dumps([topic]))
    return str(path)


def _subscription(hook: str, filter_: str | None) -> dict:
    """A backport rest-hook subscription on the bench topic (id-only notification Bundles)."""
    backport = "http://hl7.org/fhir/uv/subscriptions-backport/StructureDefinition/"
    sub: dict = {
        "resourceType": "Subscription",
        "status": "active",
        "reason": "bench",
        "criteria": _TOPIC,
        "channel": {
            "type": "rest-hook",
            "endpoint": hook,
            "payload": "application/fhir+json",
            "_payload": {
                "extension": [{"url": backport + "backport-payload-content", "valueCode": "id-only"}]
            },
        },
    }
    if filter_:
        sub["_criteria"] = {
            "extension": [{"url": backport + "backport-filter-criteria", "valueString": filter_}]
        }
    return sub


def _observation(code: str) -> dict:
    return {
        "resourceType": "Observation",
        "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": code}]},
        "valueQuantity": {"value": 1},
    }


async def _steady(client: httpx.AsyncClient, rate: float, seconds: float, codes: list[str]) -> int:
    """Open loop: one write every 1/rate s, whatever the responses take."""
    interval, start, sent = 1.0 / rate, time.perf_counter(), 0
    pending: set[asyncio.Task[httpx.Response]] = set()
    while time.perf_counter() - start < seconds:
        due = start + sent * interval
        if due > time.perf_counter():
            await asyncio.sleep(due - time.perf_counter())
        task = asyncio.create_task(
            client.post("/fhir/Observation", json=_observation(codes[sent % len(codes)]))
        )
        pending.add(task)
        task.add_done_callback(pending.discard)
        sent += 1
    await asyncio.gather(*pending)
    return sent


def e2e_rows(seconds: float) -> list[tuple[str, float, str]]:
    import tempfile

    rows: list[tuple[str, float, str]] = []
    rport, sport = free_port(), free_port()
    with tempfile.TemporaryDirectory(prefix="cw-events-bench-") as tmp:
        app_file = Path(tmp, "bench_receiver.py")
        app_file.write_text(RECEIVER_APP)
        receiver = _start(
            [
                sys.executable,
                "-m",
                "uvicorn",
                "--app-dir",
                tmp,
                "bench_receiver:app",
                "--port",
                str(rport),
                "--log-level",
                "error",
                "--no-access-log",
                "--loop",
                "uvloop",
                "--http",
                "httptools",
            ]
        )
        server = _start(
            [
                sys.executable,
                "-m",
                "careweave.cli",
                "serve",
                "--data",
                str(Path(tmp, "data")),
                "--port",
                str(sport),
            ],
            {"CAREWEAVE_LOG_LEVEL": "warning", "CAREWEAVE_EVENTS_TOPICS": _topics_file(tmp)},
            Path(tmp, "server.log"),
        )
        base, hook = f"http://127.0.0.1:{sport}", f"http://127.0.0.1:{rport}/hook"
        try:
            _wait_http(f"http://127.0.0.1:{rport}/stats")
            _wait_http(base + "/health")
            codes = [f"bench-{i}" for i in range(10)]
            with httpx.Client(base_url=base, timeout=30) as c:
                for code in codes:
                    sub = _subscription(hook, f"Observation?code=http://loinc.org|{code}")
                    assert c.post("/fhir/Subscription", json=sub).status_code == 201
            time.sleep(1.0)

            async def steady() -> int:
                limits = httpx.Limits(max_connections=64)
                async with httpx.AsyncClient(base_url=base, timeout=30, limits=limits) as client:
                    return await _steady(client, 200, seconds, codes)

            sent = asyncio.run(steady())
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                stats = httpx.get(f"http://127.0.0.1:{rport}/stats").json()
                if stats["count"] >= sent:
                    break
                time.sleep(0.2)
            lat = sorted(x[1] * 1000 for x in stats["latencies"])
            p50, p99 = lat[len(lat) // 2], lat[int(len(lat) * 0.99) - 1]
            rows.append(
                ("commit->webhook p50 (200 writes/s, 10 subs)", p50, f"ms ({len(lat)}/{sent} delivered)")
            )
            rows.append(("commit->webhook p99 (200 writes/s, 10 subs)", p99, "ms (goal < 250)"))
        finally:
            server.terminate()
            server.wait(10)
        rows += _drain_rows(tmp, hook, rport)
        receiver.terminate()
        receiver.wait(10)
    return rows


def _drain_rows(tmp: str, hook: str, rport: int) -> list[tuple[str, float, str]]:
    """Max notifications/s: a backlog queued with delivery off (events_worker=false), then drained by
    one and by two ``careweave worker`` processes (each dispatching and delivering)."""
    rows = []
    sport = free_port()
    env = {
        "CAREWEAVE_EVENTS_WORKER": "false",
        "CAREWEAVE_LOG_LEVEL": "warning",
        "CAREWEAVE_EVENTS_TOPICS": _topics_file(tmp),
    }
    data = Path(tmp, "drain")
    server = _start(
        [sys.executable, "-m", "careweave.cli", "serve", "--data", str(data), "--port", str(sport)],
        env,
        Path(tmp, "server2.log"),
    )
    base = f"http://127.0.0.1:{sport}"
    try:
        _wait_http(base + "/health")
        with httpx.Client(base_url=base, timeout=30) as c:
            for _ in range(10):
                sub = _subscription(hook, None)
                assert c.post("/fhir/Subscription", json=sub).status_code == 201
        for workers in (1, 2):
            before = httpx.get(f"http://127.0.0.1:{rport}/stats").json()["count"]

            async def backlog() -> int:
                async with httpx.AsyncClient(base_url=base, timeout=60) as client:
                    return await _steady(client, 1000, 0.5, ["drain"])

            expected = before + asyncio.run(backlog()) * 10
            code = "from careweave.cli import main; main()"
            procs = [
                _start(
                    [sys.executable, "-c", code, "worker", "--data", str(data)],
                    {**env, "CAREWEAVE_BASE_URL": base},
                    Path(tmp, f"worker{workers}-{i}.log"),
                )
                for i in range(workers)
            ]
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline:
                stats = httpx.get(f"http://127.0.0.1:{rport}/stats").json()
                if stats["count"] >= expected:
                    break
                time.sleep(0.2)
            for proc in procs:
                proc.terminate()
                proc.wait(10)
            arrivals = sorted(x[0] for x in stats["latencies"][before:])
            span = max(arrivals[-1] - arrivals[0], 1e-6) if arrivals else 1.0
            rows.append(
                (
                    f"notifications/s, {workers} worker process(es)",
                    len(arrivals) / span,
                    f"notifications/s ({len(arrivals)}/{expected - before} drained; goal >= 1,000)",
                )
            )
    finally:
        server.terminate()
        server.wait(10)
    return rows


def websocket_rows(seconds: float) -> list[tuple[str, float, str]]:
    import tempfile

    import websockets

    sport = free_port()
    with tempfile.TemporaryDirectory(prefix="cw-events-ws-") as tmp:
        env = {
            "CAREWEAVE_EVENTS_WORKER": "false",
            "CAREWEAVE_LOG_LEVEL": "warning",
            "CAREWEAVE_EVENTS_TOPICS": _topics_file(tmp),
            "CAREWEAVE_EVENTS_POLL_MS": "100",
        }
        data = Path(tmp, "data")
        server = _start(
            [sys.executable, "-m", "careweave.cli", "serve", "--data", str(data), "--port", str(sport)],
            env,
            Path(tmp, "server.log"),
        )
        base = f"http://127.0.0.1:{sport}"
        code = "from careweave.cli import main; main()"
        worker = None
        try:
            _wait_http(base + "/health")  # migrated before the worker opens the database
            worker = _start(
                [sys.executable, "-c", code, "worker", "--data", str(data)],
                {**env, "CAREWEAVE_BASE_URL": base},
                Path(tmp, "worker.log"),
            )
            sub = _subscription("http://unused.invalid/", None)
            sub["channel"] = {**sub["channel"], "type": "websocket"}
            del sub["channel"]["endpoint"]
            sid = httpx.post(base + "/fhir/Subscription", json=sub, timeout=30).json()["id"]
            grant = httpx.post(f"{base}/fhir/Subscription/{sid}/$get-ws-binding-token", timeout=30).json()
            params = {p["name"]: p for p in grant["parameter"]}
            url = params["websocket-url"]["valueUrl"].replace("http://", "ws://")
            latencies: list[float] = []

            async def run() -> int:
                async with websockets.connect(url) as ws:
                    await ws.send(f"bind-with-token {params['token']['valueString']}")
                    await ws.recv()  # the handshake

                    async def listen() -> None:
                        async for text in ws:
                            bundle = orjson.loads(text)
                            status = bundle["entry"][0]["resource"]["parameter"]
                            for p in status:
                                if p["name"] == "notification-event":
                                    stamp = next(x for x in p["part"] if x["name"] == "timestamp")
                                    at = _instant_s(stamp["valueInstant"])
                                    latencies.append((time.time() - at) * 1000)

                    listener = asyncio.create_task(listen())
                    async with httpx.AsyncClient(base_url=base, timeout=30) as client:
                        sent = await _steady(client, 100, seconds, ["ws"])
                    deadline = time.monotonic() + 30
                    while len(latencies) < sent and time.monotonic() < deadline:
                        await asyncio.sleep(0.1)
                    listener.cancel()
                    return sent

            sent = asyncio.run(run())
        finally:
            if worker is not None:
                worker.terminate()
                worker.wait(10)
            server.terminate()
            server.wait(10)
    lat = sorted(latencies)
    if not lat:
        return [("commit->websocket (worker process)", 0.0, f"ms (0/{sent} delivered)")]
    p50, p99 = lat[len(lat) // 2], lat[max(0, int(len(lat) * 0.99) - 1)]
    return [
        ("commit->websocket p50 (100 writes/s, worker process)", p50, f"ms ({len(lat)}/{sent} delivered)"),
        ("commit->websocket p99 (100 writes/s, worker process)", p99, "ms (two polls of 100 ms on the way)"),
    ]


def _instant_s(text: str) -> float:
    from datetime import datetime

    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--only-e2e", action="store_true", help="Only the end-to-end (server) rows.")
    parser.add_argument("--only-ws", action="store_true", help="Only the websocket row.")
    args = parser.parse_args()
    rows = []
    if not args.only_e2e and not args.only_ws:
        rows = pure_rows(args.seconds)
        rows += asyncio.run(resthook_rows(args.seconds))
        rows += asyncio.run(jetstream_rows(args.seconds))
    if not args.only_ws:
        rows += e2e_rows(max(args.seconds, 5.0))
    rows += websocket_rows(max(args.seconds, 5.0))
    table = Table(title=f"careweave events ({os.cpu_count()} cores, Python {platform.python_version()})")
    table.add_column("scenario")
    table.add_column("rate", justify="right")
    table.add_column("unit")
    for name, rate, unit in rows:
        table.add_row(name, f"{rate:,.1f}" if rate < 100 else f"{rate:,.0f}", unit)
    Console(width=120).print(table)


if __name__ == "__main__":
    main()
