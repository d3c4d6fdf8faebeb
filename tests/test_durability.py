"""An acknowledged write survives kill -9 of the server; a failed write leaves nothing behind."""

from __future__ import annotations

import threading

import httpx
import pytest

from tests.support import ServerProcess

pytestmark = pytest.mark.slow


def test_acknowledged_writes_survive_kill_9(tmp_path) -> None:
    srv = ServerProcess(tmp_path / "d").start()
    acknowledged: list[str] = []
    stop = threading.Event()

    def writer(n: int) -> None:
        with httpx.Client(base_url=srv.url, timeout=5) as client:
            i = 0
            while not stop.is_set():
                i += 1
                try:
                    r = client.post(
                        "/fhir/Observation",
                        json={
                            "resourceType": "Observation",
                            "status": "final",
                            "code": {"text": f"w{n}-{i}"},
                        },
                        headers={"content-type": "application/fhir+json"},
                    )
                except httpx.TransportError:
                    return
                if r.status_code == 201:
                    acknowledged.append(r.json()["id"])

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    while len(acknowledged) < 300:
        threading.Event().wait(0.02)
    srv.kill9()  # mid-stream: writers are still sending
    stop.set()
    for t in threads:
        t.join()
    seen = list(acknowledged)
    srv2 = ServerProcess(srv.data_dir).start()
    try:
        with httpx.Client(base_url=srv2.url) as client:
            missing = [i for i in seen if client.get(f"/fhir/Observation/{i}").status_code != 200]
        assert missing == [], f"{len(missing)} acknowledged writes lost"
        assert len(seen) >= 300
    finally:
        srv2.stop()
