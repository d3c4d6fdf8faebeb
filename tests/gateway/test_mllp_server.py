"""The asyncio MLLP shell with real sockets on localhost (HL7 v2.5.1 Appendix C, MLLP)."""

from __future__ import annotations

import asyncio
import datetime as dt
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest

from careweave.gateway import Peer, send_messages, serve_mllp
from careweave.hl7v2 import ACCEPTED, Framer, build_ack, frame, outcome_of, parse
from careweave.hl7v2.mllp import Frame

pytestmark = pytest.mark.anyio

NOW = dt.datetime(2024, 3, 12, 12, 0, tzinfo=dt.UTC)


def message(control_id: str) -> bytes:
    return (
        f"MSH|^~\\&|PAS|RJ1|CW|CW|20240312093000||ADT^A04^ADT_A01|{control_id}|P|2.5.1\r"
        "PID|1||RJ1001^^^RJ1^MR||Hughes^Eleanor\r"
    ).encode()


async def ack_handler(payload: bytes, peer: Peer) -> bytes:
    """A trivial handler: parse, ACK (AA, or the parse error)."""
    try:
        return build_ack(parse(payload), ACCEPTED, timestamp=NOW, control_id="A")
    except Exception as exc:
        return build_ack(payload, outcome_of(exc), timestamp=NOW, control_id="A")


def msa(ack: bytes) -> tuple[str, str]:
    seg = parse(ack).segment("MSA")
    assert seg is not None
    return seg.get(1), seg.get(2)


Server = Callable[..., Awaitable[int]]


@pytest.fixture
async def start() -> AsyncIterator[Server]:
    servers: list[asyncio.Server] = []

    async def _start(handler=ack_handler, **kw) -> int:
        server = await serve_mllp("127.0.0.1", 0, handler, **kw)
        servers.append(server)
        return server.sockets[0].getsockname()[1]

    yield _start
    for server in servers:
        server.close()
        await server.wait_closed()


async def _read_frames(reader: asyncio.StreamReader, count: int, timeout: float = 5.0) -> list[bytes]:
    framer, out = Framer(), []
    while len(out) < count:
        chunk = await asyncio.wait_for(reader.read(4096), timeout)
        if not chunk:
            break
        out += [e.payload for e in framer.feed(chunk) if isinstance(e, Frame)]
    return out


async def test_several_messages_per_connection_in_order(start):
    port = await start()
    acks = await send_messages("127.0.0.1", port, [message(str(i)) for i in range(20)])
    assert [msa(a) for a in acks] == [("AA", str(i)) for i in range(20)]


async def test_messages_are_handled_one_at_a_time_in_order(start):
    seen: list[str] = []
    busy = 0

    async def slow(payload: bytes, peer: Peer) -> bytes:
        nonlocal busy
        busy += 1
        assert busy == 1
        control = parse(payload).control_id
        await asyncio.sleep(0.02 if int(control) % 2 else 0)
        seen.append(control)
        busy -= 1
        return await ack_handler(payload, peer)

    port = await start(slow)
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"".join(frame(message(str(i))) for i in range(6)))  # all at once
    await writer.drain()
    acks = await _read_frames(reader, 6)
    writer.close()
    assert seen == [str(i) for i in range(6)]
    assert [msa(a)[1] for a in acks] == seen


async def test_split_frames_and_stray_bytes(start):
    port = await start()
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    stream = b"\r\n" + frame(message("1")) + b"\r\n" + frame(message("2"))
    for i in range(0, len(stream), 7):
        writer.write(stream[i : i + 7])
        await writer.drain()
        await asyncio.sleep(0)
    acks = await _read_frames(reader, 2)
    writer.close()
    assert [msa(a) for a in acks] == [("AA", "1"), ("AA", "2")]


async def test_a_broken_frame_with_a_header_gets_ar_and_the_connection_goes_on(start):
    port = await start()
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    truncated = b"\x0b" + message("7")[:60]  # cut short by the next start block
    writer.write(truncated + frame(message("8")))
    await writer.drain()
    acks = await _read_frames(reader, 2)
    writer.close()
    assert [msa(a) for a in acks] == [("AR", "7"), ("AA", "8")]
    assert b"cut short" in acks[0]


async def test_too_large_frame_gets_ar_and_the_rest_is_skipped(start):
    port = await start(max_frame_size=200)
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    big = message("9") + b"NTE|1||" + b"x" * 1000 + b"\r"
    writer.write(frame(big) + frame(message("10")))
    await writer.drain()
    acks = await _read_frames(reader, 2)
    writer.close()
    assert [msa(a) for a in acks] == [("AR", "9"), ("AA", "10")]


async def test_a_broken_frame_without_a_header_closes_the_connection(start):
    port = await start()
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"\x0bnot hl7 at all\x0b" + frame(message("1")))
    await writer.drain()
    assert await asyncio.wait_for(reader.read(), 5) == b""
    writer.close()


async def test_unparseable_message_in_a_good_frame_gets_an_answer(start):
    port = await start()
    acks = await send_messages("127.0.0.1", port, [b"MSH|^~\\&|A|B|C|D|2024||ADT^A01|5|P|2.4\rP!D|x\r"])
    assert msa(acks[0]) == ("AE", "5")


async def test_a_handler_that_raises_still_answers(start):
    async def broken(payload: bytes, peer: Peer) -> bytes:
        raise RuntimeError("boom")

    port = await start(broken)
    acks = await send_messages("127.0.0.1", port, [message("1"), message("2")])
    assert [msa(a) for a in acks] == [("AR", "1"), ("AR", "2")]
    assert b"boom" not in acks[0]


async def test_an_empty_reply_sends_nothing(start):
    async def quiet(payload: bytes, peer: Peer) -> bytes:
        return b"" if parse(payload).control_id == "1" else await ack_handler(payload, peer)

    port = await start(quiet)
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(frame(message("1")) + frame(message("2")))
    await writer.drain()
    acks = await _read_frames(reader, 1)
    writer.close()
    assert [msa(a) for a in acks] == [("AA", "2")]


async def test_a_stalled_client_is_disconnected(start):
    port = await start(read_timeout=0.2, idle_timeout=None)
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"\x0bMSH|^~\\&|half a message")
    await writer.drain()
    assert await asyncio.wait_for(reader.read(), 5) == b""  # closed by the server, not hung
    writer.close()


async def test_an_idle_client_is_disconnected(start):
    port = await start(idle_timeout=0.2)
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    assert await asyncio.wait_for(reader.read(), 5) == b""
    writer.close()


async def test_client_reports_a_server_that_closes(start):
    port = await start()
    with pytest.raises(ConnectionError):
        await send_messages("127.0.0.1", port, [b"\x0bbad\x0b"])  # framed inside: broken, no MSH


async def test_client_times_out_without_an_ack(start):
    async def never(payload: bytes, peer: Peer) -> bytes:
        await asyncio.sleep(10)
        return b""

    port = await start(never)
    with pytest.raises(TimeoutError):
        await send_messages("127.0.0.1", port, [message("1")], timeout=0.2)


def _self_signed(tmp_path: Path) -> tuple[Path, Path]:
    x509 = pytest.importorskip("cryptography.x509", reason="TLS test needs the cryptography package")
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(dt.datetime.now(dt.UTC) - dt.timedelta(minutes=5))
        .not_valid_after(dt.datetime.now(dt.UTC) + dt.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]), critical=False)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return cert_path, key_path


async def test_tls(start, tmp_path):
    cert, key = _self_signed(tmp_path)
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_context.load_cert_chain(cert, key)
    client_context = ssl.create_default_context(cafile=str(cert))
    peers: list[Peer] = []

    async def recording(payload: bytes, peer: Peer) -> bytes:
        peers.append(peer)
        return await ack_handler(payload, peer)

    port = await start(recording, ssl_context=server_context)
    acks = await send_messages("localhost", port, [message("1"), message("2")], ssl_context=client_context)
    assert [msa(a) for a in acks] == [("AA", "1"), ("AA", "2")]
    assert all(p.tls for p in peers)
    with pytest.raises((ssl.SSLError, ConnectionError)):
        await send_messages("localhost", port, [message("3")], ssl_context=ssl.create_default_context())
