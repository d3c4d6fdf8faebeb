"""Fixtures for the gateway service tests: the in-process system's gateway behind a real MLLP
listener on localhost, and helpers to read ACKs."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from careweave.gateway import Gateway, serve_mllp
from careweave.hl7v2 import parse
from careweave.system import System

CORPUS = Path(__file__).resolve().parents[1] / "data" / "hl7v2"


def corpus(name: str) -> bytes:
    return (CORPUS / name).read_bytes()


def msa(ack: bytes) -> tuple[str, str]:
    """(MSA-1 acknowledgement code, MSA-2 control id) of an ACK."""
    seg = parse(ack).segment("MSA")
    assert seg is not None
    return seg.get(1), seg.get(2)


def with_control_id(raw: bytes, control_id: str) -> bytes:
    """The message with another MSH-10 (a new message, for duplicate detection)."""
    msh, _, rest = raw.partition(b"\r")
    fields = msh.split(b"|")
    fields[9] = control_id.encode()
    return b"|".join(fields) + b"\r" + rest


def enhanced(raw: bytes, accept: str = "AL", application: str = "AL") -> bytes:
    """The message in enhanced acknowledgement mode: MSH-15 and MSH-16 set."""
    msh, _, rest = raw.partition(b"\r")
    fields = msh.split(b"|")
    fields += [b""] * (17 - len(fields))
    fields[14], fields[15] = accept.encode(), application.encode()
    return b"|".join(fields) + b"\r" + rest


@pytest.fixture
def gateway(system: System) -> Gateway:
    assert system.gateway is not None
    return system.gateway


@pytest.fixture
async def mllp_port(gateway: Gateway) -> AsyncIterator[int]:
    server = await serve_mllp("127.0.0.1", 0, gateway.handle, read_timeout=5.0)
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        server.close()
        await asyncio.wait_for(server.wait_closed(), 5)
        await gateway.close()
