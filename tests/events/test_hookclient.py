"""The lean rest-hook HTTP/1.1 client against real sockets: the real receiver (uvicorn), and raw
asyncio servers that answer in the awkward ways HTTP allows (chunked bodies, bodies to the end of
the connection, Connection: close, kept-alive connections closed under the client, silence)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest

from careweave.events.channels.base import EVENT_ID_HEADER, Delivery
from careweave.events.channels.hookclient import FastRestHookChannel, HookClient
from careweave.events.signing import SIGNATURE_HEADER, verify_signature
from tests.events.receiver import Receiver

pytestmark = pytest.mark.anyio

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


@pytest.fixture
async def client() -> AsyncIterator[HookClient]:
    c = HookClient()
    try:
        yield c
    finally:
        await c.aclose()


async def serve(handler: Handler) -> tuple[asyncio.Server, str]:
    server = await asyncio.start_server(handler, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    return server, f"http://127.0.0.1:{port}/hook?x=1"


async def read_request(reader: asyncio.StreamReader) -> bytes:
    head = await reader.readuntil(b"\r\n\r\n")
    length = next(
        int(line.split(b":", 1)[1])
        for line in head.split(b"\r\n")
        if line.lower().startswith(b"content-length")
    )
    return head + await reader.readexactly(length)


async def settle(client: HookClient) -> None:
    """Close the client's connections and let the servers' handlers see it, before they stop."""
    await client.aclose()
    await asyncio.sleep(0.1)


def delivery(endpoint: str, **kw: object) -> Delivery:
    return Delivery("evt-1", "default", "sub-1", b'{"resourceType":"Bundle"}', endpoint=endpoint, **kw)  # type: ignore[arg-type]


async def test_posts_to_the_real_receiver_signed_and_keeps_the_connection(client, receiver: Receiver) -> None:
    channel = FastRestHookChannel(client)
    for i in range(3):
        result = await channel.deliver(delivery(receiver.url, signing_secret=b"k", attempt=i + 1))
        assert result.ok and result.status == 200
    got = receiver.received
    assert [r.method for r in got] == ["POST"] * 3 and got[0].path == "/hook"
    assert got[0].body == b'{"resourceType":"Bundle"}'
    assert got[0].headers[EVENT_ID_HEADER.lower()] == "evt-1"
    assert verify_signature(
        got[0].headers[SIGNATURE_HEADER.lower()], got[0].body, [b"k"], now_s=int(time.time())
    ).ok
    assert len(client._idle[("http", "127.0.0.1", receiver.port)]) == 1  # one connection, kept alive


async def test_status_classes_and_retry_after(client, receiver: Receiver) -> None:
    channel = FastRestHookChannel(client)
    receiver.fail_with(429, headers=(("Retry-After", "7"),))
    receiver.fail_with(404)
    receiver.fail_with(503)
    r429, r404, r503 = [await channel.deliver(delivery(receiver.url)) for _ in range(3)]
    assert (r429.ok, r429.retryable, r429.retry_after_s) == (False, True, 7.0)
    assert (r404.ok, r404.retryable) == (False, False)
    assert (r503.ok, r503.retryable, r503.error) == (False, True, "HTTP 503")


async def test_chunked_and_close_delimited_bodies(client) -> None:
    requests: list[bytes] = []

    async def chunked(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            try:
                requests.append(await read_request(reader))
            except asyncio.IncompleteReadError:
                break
            writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nabcd\r\n0\r\n\r\n")
            await writer.drain()
        writer.close()

    server, url = await serve(chunked)
    async with server:
        channel = FastRestHookChannel(client)
        assert (await channel.deliver(delivery(url))).ok
        assert (await channel.deliver(delivery(url))).ok  # same connection after a chunked body
        await settle(client)
    assert len(requests) == 2 and requests[0].startswith(b"POST /hook?x=1 HTTP/1.1\r\n")

    async def to_the_end(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b"HTTP/1.0 202 Accepted\r\n\r\nsome body")
        await writer.drain()
        writer.close()

    server, url = await serve(to_the_end)
    async with server:
        result = await FastRestHookChannel(client).deliver(delivery(url))
        assert result.ok and result.status == 202
        await settle(client)


async def test_a_kept_alive_connection_closed_by_the_server_is_retried_once(client) -> None:
    served = 0

    async def one_per_connection(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal served
        await read_request(reader)
        served += 1
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")  # claims keep-alive...
        await writer.drain()
        writer.close()  # ...and closes anyway

    server, url = await serve(one_per_connection)
    async with server:
        channel = FastRestHookChannel(client)
        assert (await channel.deliver(delivery(url))).ok
        await asyncio.sleep(0.05)
        assert (await channel.deliver(delivery(url))).ok
        await settle(client)
    assert served == 2


async def test_silence_times_out_and_refusal_is_retryable(client) -> None:
    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read()  # never answers; ends when the client gives up and closes
        writer.close()

    server, url = await serve(silent)
    async with server:
        result = await FastRestHookChannel(client).deliver(delivery(url, timeout_s=0.3))
        await settle(client)
    assert (result.ok, result.retryable, result.error) == (False, True, "timed out")
    server, url = await serve(silent)
    server.close()
    await server.wait_closed()
    refused = await FastRestHookChannel(client).deliver(delivery(url))
    assert (refused.ok, refused.retryable) == (False, True)
    bad = await FastRestHookChannel(client).deliver(delivery("ftp://example.org/x"))
    assert (bad.ok, bad.retryable) == (False, False)
