"""No byte sequence crashes or hangs the gateway: mutated corpus messages and random bytes get an
ACK (AA/AE/AR, or CA/CE/CR) and are stored, or a closed frame; the listener goes on serving."""

from __future__ import annotations

import asyncio
import random

import pytest

from careweave.gateway import Gateway, send_messages
from careweave.hl7v2 import Framer, is_batch, parse
from careweave.hl7v2.mllp import Frame
from tests.gateway.conftest import CORPUS, corpus, msa

pytestmark = pytest.mark.anyio

SEEDS = [p.read_bytes() for p in sorted(CORPUS.glob("*.hl7"))]
ALPHABET = list(b"|^~\\&\r\n#!0123456789ABCMSHPIDXZ .\xff\xc3\x00\x0b\x1c")
CODES = {"AA", "AE", "AR", "CA", "CE", "CR"}


def mutations(seed: int, count: int) -> list[bytes]:
    rng = random.Random(seed)
    out = []
    for _ in range(count):
        if rng.random() < 0.2:
            out.append(bytes(rng.randrange(256) for _ in range(rng.randrange(300))))
            continue
        data = bytearray(rng.choice(SEEDS))
        for _ in range(rng.randint(1, 8)):
            if not data:
                break
            at = rng.randrange(len(data))
            action = rng.choice(("flip", "drop", "insert"))
            if action == "flip":
                data[at] = rng.choice(ALPHABET)
            elif action == "drop":
                del data[at]
            else:
                data.insert(at, rng.choice(ALPHABET))
        out.append(bytes(data))
    return out


async def test_every_payload_is_answered_and_kept(gateway: Gateway) -> None:
    payloads = mutations(7, 300)
    stored: set[int] = set()
    for payload in payloads:
        received = await asyncio.wait_for(gateway.receive(payload, "fuzz"), 10)
        if received.reply:
            answers = parse(received.reply) if not is_batch(received.reply) else None
            if answers is not None:
                assert answers.segment("MSA").get(1) in CODES  # type: ignore[union-attr]
        assert received.id is not None or received.duplicate or is_batch(payload)
        if received.id is not None:
            stored.add(received.id)
    await gateway.drain()
    tenant = await gateway.services.store.tenant("default")
    assert tenant is not None
    counts = await gateway.counts(tenant)
    assert sum(counts.values()) == len(stored) and counts.get("received", 0) == 0


async def _raw_exchange(port: int, data: bytes) -> list[bytes]:
    """Write bytes as they are (framed or not) and read frames until the server closes or goes quiet."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    framer = Framer(1 << 20)
    frames: list[bytes] = []
    try:
        writer.write(data)
        await writer.drain()
        writer.write_eof()
        while True:
            try:
                chunk = await asyncio.wait_for(reader.read(65536), 2.0)
            except TimeoutError:
                break
            if not chunk:
                break
            frames += [e.payload for e in framer.feed(chunk) if isinstance(e, Frame)]
    finally:
        writer.close()
    return frames


async def test_the_listener_survives_any_stream(mllp_port: int) -> None:
    rng = random.Random(11)
    for payload in mutations(3, 40):
        framed = rng.random() < 0.7
        data = b"\x0b" + payload + b"\x1c\r" if framed else payload
        if rng.random() < 0.2:
            data = data[: rng.randrange(len(data) + 1)]  # cut short
        for reply in await asyncio.wait_for(_raw_exchange(mllp_port, data), 15):
            assert reply == b"" or is_batch(reply) or msa(reply)[0] in CODES
    [ack] = await send_messages("127.0.0.1", mllp_port, [corpus("adt_a04.hl7")])
    assert msa(ack) == ("AA", "RJ1-A04-0001")
