"""Delivery survives crashes and shares work across processes: real ``careweave serve`` and
``careweave worker`` processes, a real webhook receiver, ``kill -9``.

The outbox rule under test: an acknowledged write is notified, even when the server dies between
its commit and the notification (or in the middle of sending it); notifications of a subscription
arrive in order (duplicates allowed: at least once), whichever worker sends them."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.events.receiver import Receiver
from tests.support import ServerProcess

pytestmark = pytest.mark.slow

ENV = {
    "CAREWEAVE_EVENTS_LEASE_S": "1",
    "CAREWEAVE_EVENTS_RETRY_FIRST_S": "0.2",
    "CAREWEAVE_EVENTS_RETRY_CAP_S": "0.5",
    "CAREWEAVE_EVENTS_POLL_MS": "100",
    "CAREWEAVE_EVENTS_SECRET": "crash-test",
}


def subscription(endpoint: str) -> dict[str, Any]:
    return {
        "resourceType": "Subscription",
        "status": "active",
        "reason": "crash test",
        "criteria": "Observation?status=final",
        "channel": {"type": "rest-hook", "endpoint": endpoint, "payload": "application/fhir+json"},
    }


def observation(i: int) -> dict[str, Any]:
    return {
        "resourceType": "Observation",
        "status": "final",
        "code": {"text": f"reading {i}"},
        "valueQuantity": {"value": i},
    }


def seen(receiver: Receiver) -> list[int]:
    """Event numbers taken by the receiver, in arrival order (classic R4 notifications PUT the
    resource: the numbers travel in a header)."""
    out = []
    for r in list(receiver.received):
        header = r.headers.get("x-careweave-event-numbers")
        if r.status == 200 and header:
            out.extend(int(n) for n in header.split(","))
    return out


def wait_until(check: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out: {what}")
        time.sleep(0.05)


def write_all(url: str, endpoint: str, n: int) -> None:
    with httpx.Client(base_url=url, timeout=10) as client:
        r = client.post("/fhir/Subscription", json=subscription(endpoint))
        assert r.status_code == 201, r.text
        for i in range(n):
            r = client.post("/fhir/Observation", json=observation(i))
            assert r.status_code == 201, r.text


def test_kill_9_mid_delivery_loses_nothing(tmp_path: Path, receiver: Receiver) -> None:
    receiver.delay_s = 0.05  # slow enough that the kill lands while notifications are queued
    server = ServerProcess(tmp_path / "srv", ENV).start()
    try:
        write_all(server.url, receiver.url, 40)  # every write acknowledged (201) before the kill
        wait_until(lambda: len(seen(receiver)) >= 5, 20, "first notifications")
        server.kill9()
        assert len(set(seen(receiver))) < 40  # the kill really was mid-delivery
        server.start()
        wait_until(lambda: set(seen(receiver)) >= set(range(1, 41)), 30, "every notification")
    finally:
        server.stop()
    numbers = seen(receiver)
    assert list(dict.fromkeys(numbers)) == list(range(1, 41))  # first arrivals in order, none missing
    assert max(numbers) == 40


def _worker(data_dir: Path, env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    code = "from careweave.cli import main; main()"
    with open(log, "wb") as out:
        return subprocess.Popen(
            [sys.executable, "-c", code, "worker", "--data", str(data_dir)],
            env={**os.environ, **env},
            stdout=out,
            stderr=subprocess.STDOUT,
        )


def test_two_worker_processes_share_the_queue_in_order(tmp_path: Path, receiver: Receiver) -> None:
    env = {**ENV, "CAREWEAVE_EVENTS_WORKER": "false"}
    server = ServerProcess(tmp_path / "srv", env).start()
    workers = []
    try:
        write_all(server.url, receiver.url, 30)
        time.sleep(0.5)
        assert seen(receiver) == []  # the server itself does not deliver
        worker_env = {**env, "CAREWEAVE_BASE_URL": server.url}
        workers = [_worker(server.data_dir, worker_env, tmp_path / f"w{i}.log") for i in range(2)]
        wait_until(lambda: set(seen(receiver)) >= set(range(1, 31)), 40, "every notification")
        # one worker dies; the other carries on with what comes next
        workers[0].kill()
        workers[0].wait()
        with httpx.Client(base_url=server.url, timeout=10) as client:
            for i in range(30, 40):
                assert client.post("/fhir/Observation", json=observation(i)).status_code == 201
        wait_until(lambda: set(seen(receiver)) >= set(range(1, 41)), 40, "notifications after a worker died")
    finally:
        for w in workers:
            if w.poll() is None:
                w.terminate()
                w.wait(10)
        server.stop()
    assert list(dict.fromkeys(seen(receiver))) == list(range(1, 41))
