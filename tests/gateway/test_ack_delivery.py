"""Enhanced-mode application ACKs (HL7 v2.5.1 chapter 2, 2.9.3 enhanced acknowledgement mode)
delivered to the route's return address over MLLP, retried with backoff, listed and resent by
operators (delivery.py rules 1-5); real sockets, the in-process system's real store."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from zoneinfo import ZoneInfo

import pytest
from click.testing import CliRunner

from careweave.cli import main
from careweave.gateway import Gateway, GatewayConfig, Peer, send_messages, serve_mllp
from careweave.gateway.delivery import DeliveryConfig, backoff
from careweave.system import System
from tests.gateway.conftest import corpus, enhanced, msa
from tests.support import free_port

pytestmark = pytest.mark.anyio

FAST = {"ack_backoff": 0.05, "ack_backoff_max": 0.2, "ack_timeout": 2.0}


def test_backoff_doubles_up_to_the_cap() -> None:
    config = DeliveryConfig(base=2.0, cap=30.0)
    assert [backoff(n, config) for n in range(1, 7)] == [2.0, 4.0, 8.0, 16.0, 30.0, 30.0]


async def _until(check: Callable[[], Awaitable[bool]], seconds: float = 20.0) -> None:
    for _ in range(int(seconds / 0.05)):
        if await check():
            return
        await asyncio.sleep(0.05)
    raise AssertionError("the condition did not hold in time")


class Receiver:
    """The sending system's ACK listener, started when the test says so."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.received: list[bytes] = []
        self.server: asyncio.Server | None = None

    async def start(self) -> None:
        async def take(payload: bytes, peer: Peer) -> bytes:
            self.received.append(payload)
            return b""

        self.server = await serve_mllp("127.0.0.1", self.port, take)

    def close(self) -> None:
        if self.server is not None:
            self.server.close()


async def _gateway(system: System, attempts: int) -> Gateway:
    config = GatewayConfig(ZoneInfo("Europe/London"), ack_attempts=attempts, **FAST)  # type: ignore[arg-type]
    gateway = Gateway(system.services, config)
    await gateway.start()
    return gateway


async def _send(gateway: Gateway, control: bytes) -> int:
    listener = await serve_mllp("127.0.0.1", 0, gateway.handle)
    try:
        message = enhanced(corpus("adt_a01.hl7").replace(b"RJ1-A01-0001", control), "AL", "AL")
        [ack] = await send_messages("127.0.0.1", listener.sockets[0].getsockname()[1], [message])
        assert msa(ack)[0] == "CA"
        await gateway.drain()
    finally:
        listener.close()
    tenant = await gateway.services.store.tenant("default")
    assert tenant is not None
    [row] = [r for r in await gateway.messages(tenant) if r.control_id == control.decode()]
    return row.id


async def test_a_failed_delivery_is_retried_until_the_sender_listens(system: System) -> None:
    receiver = Receiver(free_port())
    gateway = await _gateway(system, attempts=50)
    tenant = await system.store.tenant("default")
    assert tenant is not None
    try:
        await gateway.set_route("RJ1", "default", ("127.0.0.1", receiver.port))
        id = await _send(gateway, b"RETRY-1")
        first = await gateway.ack_delivery(tenant, id)
        assert first is not None and first.attempts >= 1 and first.last_error  # refused: recorded
        assert (await gateway.message(tenant, id)).app_ack_state == "pending"
        await receiver.start()

        async def sent() -> bool:
            return (await gateway.message(tenant, id)).app_ack_state == "sent"

        await _until(sent)
        delivery = await gateway.ack_delivery(tenant, id)
        assert delivery is not None and delivery.attempts > first.attempts and delivery.last_error is None
        assert [msa(r) for r in receiver.received] == [("AA", "RETRY-1")]
    finally:
        receiver.close()
        await gateway.close()


async def test_failed_acks_are_listed_and_resent_by_an_operator(system: System, client) -> None:
    receiver = Receiver(free_port())
    gateway = await _gateway(system, attempts=2)
    tenant = await system.store.tenant("default")
    assert tenant is not None
    try:
        await gateway.set_route("RJ1", "default", ("127.0.0.1", receiver.port))
        id = await _send(gateway, b"GIVEUP-1")

        async def failed() -> bool:
            return (await gateway.message(tenant, id)).app_ack_state == "failed"

        await _until(failed)
        listed = (await client.get("/hl7v2/messages?ackState=failed")).json()["messages"]
        assert [(m["id"], m["applicationAckState"]) for m in listed] == [(id, "failed")]
        detail = (await client.get(f"/hl7v2/messages/{id}")).json()
        assert detail["applicationAckDelivery"]["attempts"] == 2
        assert "lastError" in detail["applicationAckDelivery"]
        assert (await client.get("/hl7v2/messages?ackState=lost")).status_code == 400
        await receiver.start()
        # the system's own gateway serves the API: it sends through the same route
        resent = await client.post(f"/hl7v2/messages/{id}/$resend-ack")
        assert resent.status_code == 200, resent.text
        assert resent.json()["applicationAckState"] == "sent"
        assert resent.json()["applicationAckDelivery"]["attempts"] == 1  # a new series
        assert [msa(r) for r in receiver.received] == [("AA", "GIVEUP-1")]
        none = await client.post(f"/hl7v2/messages/{id + 1000}/$resend-ack")
        assert none.status_code == 404
    finally:
        receiver.close()
        await gateway.close()


async def test_pending_acks_are_resumed_after_a_restart(system: System) -> None:
    receiver = Receiver(free_port())
    gateway = await _gateway(system, attempts=50)
    tenant = await system.store.tenant("default")
    assert tenant is not None
    await gateway.set_route("RJ1", "default", ("127.0.0.1", receiver.port))
    id = await _send(gateway, b"RESUME-1")
    await gateway.close()  # stopped between attempts: the row stays pending
    assert (await gateway.message(tenant, id)).app_ack_state == "pending"
    await receiver.start()
    again = await _gateway(system, attempts=50)
    try:

        async def sent() -> bool:
            return (await again.message(tenant, id)).app_ack_state == "sent"

        await _until(sent)
        assert [msa(r) for r in receiver.received] == [("AA", "RESUME-1")]
    finally:
        receiver.close()
        await again.close()


async def test_the_cli_lists_and_resends(system: System) -> None:
    receiver = Receiver(free_port())
    gateway = await _gateway(system, attempts=1)
    tenant = await system.store.tenant("default")
    assert tenant is not None
    try:
        await gateway.set_route("RJ1", "default", ("127.0.0.1", receiver.port))
        id = await _send(gateway, b"CLI-ACK-1")
        assert (await gateway.message(tenant, id)).app_ack_state == "failed"
        data = ["--data", str(system.settings.data_dir)]
        runner = CliRunner()
        listed = await asyncio.to_thread(runner.invoke, main, ["hl7", "acks", *data])
        assert listed.exit_code == 0 and listed.output.startswith(
            f"{id}\tdefault\tfailed\t1\tADT^A01\tCLI-ACK-1"
        )
        refused = await asyncio.to_thread(runner.invoke, main, ["hl7", "resend-ack", str(id), *data])
        assert refused.exit_code == 1 and f"{id}\tpending" in refused.output  # still nobody listening
        await receiver.start()
        resent = await asyncio.to_thread(runner.invoke, main, ["hl7", "resend-ack", str(id), *data])
        assert resent.exit_code == 0 and resent.output == f"{id}\tsent\n"
        assert [msa(r) for r in receiver.received] == [("AA", "CLI-ACK-1")]
    finally:
        receiver.close()
        await gateway.close()
