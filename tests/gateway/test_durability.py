"""Kill -9 a real server while HL7 v2 messages stream in over MLLP: every acknowledged message is
there after the restart, processed, with its resources (the ACK is sent only after the commit)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import pytest

from careweave.gateway import send_messages
from tests.gateway.conftest import enhanced, msa
from tests.gateway.test_service import visit
from tests.support import ServerProcess, free_port


async def _stream(port: int, connections: int, per: int, killed: asyncio.Event, mode: str) -> list[str]:
    """Send messages on several connections until the server dies; the ACKed control ids."""
    acked: list[str] = []

    async def one(c: int) -> None:
        for i in range(per):
            n = c * per + i
            message = visit(n % 60, "A01", 1000 + n).replace(f"|ORD-{n % 60}|".encode(), f"|K9-{n}|".encode())
            if mode == "enhanced":
                message = enhanced(message, "AL", "NE")
            try:
                [ack] = await send_messages("127.0.0.1", port, [message], timeout=10)
            except (OSError, TimeoutError):
                return  # the server is gone: this message was not acknowledged
            code, control = msa(ack)
            assert code == ("CA" if mode == "enhanced" else "AA"), ack
            acked.append(control)
            if len(acked) == 40:
                killed.set()

    await asyncio.gather(*(one(c) for c in range(connections)))
    return acked


@pytest.mark.parametrize("mode", ["original", "enhanced"])
def test_acknowledged_messages_survive_kill_9(tmp_path: Path, mode: str) -> None:
    """Original mode: the AA follows the commit of message and resources. Enhanced mode: the CA
    follows the commit of the raw message; what was not processed yet is processed at start-up."""
    mllp = free_port()
    env = {"CAREWEAVE_MLLP_PORT": str(mllp), "CAREWEAVE_SQLITE_SYNCHRONOUS": "FULL"}
    server = ServerProcess(tmp_path / "srv", env).start()

    async def run() -> list[str]:
        killed = asyncio.Event()
        sending = asyncio.create_task(_stream(mllp, 4, 60, killed, mode))
        await asyncio.wait_for(killed.wait(), 60)
        server.kill9()
        return await sending

    try:
        acked = asyncio.run(run())
    finally:
        server.stop()
    assert len(acked) >= 40
    again = ServerProcess(tmp_path / "srv", env).start()
    try:
        stored = httpx.get(f"{again.url}/hl7v2/messages?_count=1000", timeout=30).json()["messages"]
        by_control = {m["controlId"]: m["status"] for m in stored}
        assert all(by_control.get(c) == "processed" for c in acked), set(acked) - set(by_control)
        for control in acked[:10] + acked[-10:]:
            n = int(control.split("-")[1])
            found = httpx.get(f"{again.url}/fhir/Patient?identifier=RJ1{1000 + n}", timeout=30).json()
            assert len(found.get("entry", [])) == 1, control
        # nothing is left half-done: every stored message reached a final status
        assert {m["status"] for m in stored} == {"processed"}
    finally:
        again.stop()


def test_a_message_left_received_is_processed_when_the_server_starts(tmp_path: Path) -> None:
    """The state a crash between the two commits of enhanced mode leaves behind."""
    from careweave.settings import Settings
    from careweave.store.sql import hl7 as hl7sql
    from careweave.system import open_store
    from tests.gateway.conftest import corpus, enhanced

    data = tmp_path / "srv"

    async def leave_one() -> None:
        store = open_store(Settings(data_dir=data))
        try:
            tenant = await store.tenant("default")
            assert tenant is not None
            raw = enhanced(corpus("adt_a01.hl7"), "AL", "NE")
            row = hl7sql.NewMessage(
                tenant.key, "PAS", "RJ1", "RJ1-A01-0001", "ADT^A01", "received", 1, "t", raw
            )
            await store.sql_write(lambda conn: hl7sql.insert(conn, row))
        finally:
            await store.close()

    asyncio.run(leave_one())
    server = ServerProcess(data).start()
    try:
        [message] = httpx.get(f"{server.url}/hl7v2/messages", timeout=30).json()["messages"]
        assert message["status"] == "processed" and message["attempts"] == 1
        found = httpx.get(f"{server.url}/fhir/Patient?identifier=RJ10012345", timeout=30).json()
        assert len(found["entry"]) == 1
    finally:
        server.stop()
