"""The MLLP server and client shells: thin asyncio loops around the sans-IO framer.

Rules:
1. :func:`serve_mllp` accepts connections (TLS when given an ``ssl_context``); each connection
   is read through its own :class:`~careweave.hl7v2.mllp.Framer`, and its frames are handed to
   ``handler(payload, peer)`` one at a time, in order: the next frame is not handled before the
   previous ACK is written. The handler returns the ACK bytes (``b""``: send nothing, as enhanced
   mode may ask); the shell frames and writes them.
2. The handler is where durability, duplicate detection, routing and mapping live (the caller's
   concern); if it raises anyway, the sender gets an AR built from the exception, and the
   connection goes on.
3. A broken frame (too large, or cut short by a new start block) gets an AR when its MSH can be
   read, and the connection goes on; otherwise the connection is closed. Bytes outside frames are
   dropped; more than ``max_frame_size`` of them close the connection.
4. Nothing hangs: a frame that has started must keep arriving (``read_timeout`` between reads),
   an idle connection is closed after ``idle_timeout`` (None: never), and an ACK the peer does
   not read within ``read_timeout`` closes the connection.
5. :func:`send_messages` is the matching client: one connection, each message framed and sent in
   turn, waiting for its ACK frame before sending the next.
6. TLS (:func:`server_tls`): the server's certificate chain and key, TLS 1.2 at least; with a
   client CA, mutual TLS: a client without a certificate that CA signed is refused in the
   handshake, and the handler sees the verified certificate in :class:`Peer`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
import sys
import uuid
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from careweave.errors import Category
from careweave.hl7v2.ack import build_ack, outcome_of
from careweave.hl7v2.errors import Hl7v2Error
from careweave.hl7v2.message import read_header
from careweave.hl7v2.mllp import BrokenFrame, Event, Frame, Framer, Junk, frame

__all__ = ["Handler", "Peer", "send_messages", "serve_mllp", "server_tls"]

log = logging.getLogger("careweave.gateway")

DEFAULT_READ_TIMEOUT = 30.0
DEFAULT_IDLE_TIMEOUT = 3600.0
DEFAULT_MAX_FRAME = 16 * 1024 * 1024
_READ_SIZE = 65536


@dataclass(frozen=True, slots=True)
class Peer:
    """Who sent a message: address, and the client certificate when TLS asked for one."""

    host: str
    port: int
    tls: bool = False
    certificate: Mapping[str, Any] | None = None


Handler = Callable[[bytes, Peer], Awaitable[bytes]]


@dataclass(frozen=True, slots=True)
class _Limits:
    read_timeout: float
    idle_timeout: float | None
    max_frame_size: int


def _peer_of(writer: asyncio.StreamWriter) -> Peer:
    name = writer.get_extra_info("peername")
    host, port = (str(name[0]), int(name[1])) if isinstance(name, tuple) else (str(name), 0)
    ssl_object = writer.get_extra_info("ssl_object")
    certificate = ssl_object.getpeercert() if ssl_object is not None else None
    return Peer(host, port, ssl_object is not None, certificate or None)


def _nak(payload: bytes, exc: BaseException) -> bytes:
    return build_ack(
        payload,
        outcome_of(exc),
        timestamp=datetime.now(UTC),
        control_id=f"CW{uuid.uuid4().hex[:18].upper()}",
    )


async def _reply(handler: Handler, payload: bytes, peer: Peer) -> bytes:
    try:
        return await handler(payload, peer)
    except Exception as exc:  # rule 2: the sender still gets an answer
        log.exception("MLLP handler failed for a message from %s:%s", peer.host, peer.port)
        return _nak(payload, exc)


def _broken(event: BrokenFrame) -> bytes | None:
    """The AR for a broken frame, or None when its header cannot be read (rule 3)."""
    if read_header(event.head) is None:
        return None
    category = Category.TOO_LARGE if event.reason == "too-large" else Category.UNSUPPORTED_MEDIA
    text = (
        "the MLLP frame is larger than the receiver accepts"
        if event.reason == "too-large"
        else ("the MLLP frame was cut short by the start of another")
    )
    return _nak(event.head, Hl7v2Error(text, "199", category))


async def _write(writer: asyncio.StreamWriter, payload: bytes, limits: _Limits) -> None:
    writer.write(frame(payload))
    async with asyncio.timeout(limits.read_timeout):  # no task per call, unlike wait_for
        await writer.drain()


async def _serve_events(
    events: list[Event], handler: Handler, peer: Peer, writer: asyncio.StreamWriter, limits: _Limits
) -> int | None:
    """Handle one chunk's events; returns the junk byte count, or None to close."""
    junk = 0
    for event in events:
        if isinstance(event, Frame):
            reply = await _reply(handler, event.payload, peer)
        elif isinstance(event, BrokenFrame):
            log.warning("broken MLLP frame (%s) from %s:%s", event.reason, peer.host, peer.port)
            found = _broken(event)
            if found is None:
                return None
            reply = found
        else:
            assert isinstance(event, Junk)
            junk += len(event.data)
            continue
        if reply:
            await _write(writer, reply, limits)
    return junk


async def _connection(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, handler: Handler, limits: _Limits
) -> None:
    peer = _peer_of(writer)
    framer = Framer(limits.max_frame_size)
    junk = 0
    try:
        while True:
            timeout = limits.read_timeout if framer.in_frame else limits.idle_timeout
            try:
                async with asyncio.timeout(timeout):
                    chunk = await reader.read(_READ_SIZE)
            except TimeoutError:
                log.info("closing a stalled MLLP connection from %s:%s", peer.host, peer.port)
                break
            if not chunk:
                break
            found = await _serve_events(framer.feed(chunk), handler, peer, writer, limits)
            if found is None:
                break
            junk += found
            if junk > limits.max_frame_size:
                log.warning("closing an MLLP connection sending unframed data: %s", peer.host)
                break
    except (ConnectionError, TimeoutError, ssl.SSLError) as exc:
        log.info("MLLP connection from %s:%s ended: %s", peer.host, peer.port, exc)
    finally:
        writer.close()
        with contextlib.suppress(ConnectionError, TimeoutError, ssl.SSLError, OSError):
            await asyncio.wait_for(writer.wait_closed(), limits.read_timeout)


async def serve_mllp(
    host: str,
    port: int,
    handler: Handler,
    *,
    ssl_context: ssl.SSLContext | None = None,
    read_timeout: float = DEFAULT_READ_TIMEOUT,
    idle_timeout: float | None = DEFAULT_IDLE_TIMEOUT,
    max_frame_size: int = DEFAULT_MAX_FRAME,
) -> asyncio.Server:
    """Start an MLLP server (rules 1-4); the caller owns it (``server.close()``)."""
    limits = _Limits(read_timeout, idle_timeout, max_frame_size)

    async def on_connect(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await _connection(reader, writer, handler, limits)
        except asyncio.CancelledError:
            # the server is stopping; Python 3.11's stream callback would log a cancelled
            # connection task as an error (it asks a cancelled task for its exception)
            if sys.version_info >= (3, 12):
                raise

    return await asyncio.start_server(on_connect, host, port, ssl=ssl_context)


async def _next_frame(
    reader: asyncio.StreamReader, framer: Framer, pending: list[Event], timeout: float
) -> bytes:
    while True:
        while pending:
            event = pending.pop(0)
            if isinstance(event, Frame):
                return event.payload
            if isinstance(event, BrokenFrame):
                raise ConnectionError(f"the server sent a broken MLLP frame ({event.reason})")
        chunk = await asyncio.wait_for(reader.read(_READ_SIZE), timeout)
        if not chunk:
            raise ConnectionError("the server closed the connection before acknowledging")
        pending.extend(framer.feed(chunk))


async def send_messages(
    host: str,
    port: int,
    messages: Iterable[bytes | str],
    *,
    ssl_context: ssl.SSLContext | None = None,
    timeout: float = DEFAULT_READ_TIMEOUT,
    max_frame_size: int = DEFAULT_MAX_FRAME,
) -> list[bytes]:
    """Send each message over one MLLP connection and return the ACK payloads, in order (rule 5).

    Raises :class:`ConnectionError` when the server closes or breaks the stream, and
    :class:`TimeoutError` when an ACK does not come within ``timeout`` seconds.
    """
    reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port, ssl=ssl_context), timeout)
    framer = Framer(max_frame_size)
    pending: list[Event] = []
    acks: list[bytes] = []
    try:
        for message in messages:
            data = message.encode("utf-8") if isinstance(message, str) else message
            writer.write(frame(data))
            await asyncio.wait_for(writer.drain(), timeout)
            acks.append(await _next_frame(reader, framer, pending, timeout))
    finally:
        writer.close()
        with contextlib.suppress(ConnectionError, TimeoutError, ssl.SSLError, OSError):
            await asyncio.wait_for(writer.wait_closed(), timeout)
    return acks


def server_tls(cert: str, key: str = "", client_ca: str = "") -> ssl.SSLContext:
    """Rule 6: a server context from PEM files (``key`` empty: the key is in ``cert``); raises
    OSError or ssl.SSLError when they cannot be read."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(cert, key or None)
    if client_ca:
        context.load_verify_locations(cafile=client_ca)
        context.verify_mode = ssl.CERT_REQUIRED
    return context
