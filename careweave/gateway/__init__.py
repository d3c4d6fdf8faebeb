"""The HL7 v2 gateway: an asyncio MLLP server and client (:mod:`.mllp`), and the service behind
them (:mod:`.service`: durable inbox, ACK after the write, duplicates, error queue, replay,
routing, per-patient order), also reachable over HTTP (:mod:`.http`).

Public API::

    from careweave.gateway import Gateway, GatewayConfig, Hl7v2Api, Peer, serve_mllp, send_messages
    gateway = Gateway(services, GatewayConfig(timezone=ZoneInfo("Europe/London")))
    await gateway.recover()                                   # messages left received by a crash
    server = await serve_mllp("0.0.0.0", 2575, gateway.handle)          # ssl_context=server_tls(cert, key)
    acks = await send_messages("127.0.0.1", 2575, [message_bytes, ...])

The framing, parsing, ACKs and mapping are the pure layers of :mod:`careweave.hl7v2`.
"""

from careweave.gateway.http import Hl7v2Api
from careweave.gateway.mllp import Handler, Peer, send_messages, serve_mllp, server_tls
from careweave.gateway.service import Gateway, GatewayConfig, Received

__all__ = [
    "Gateway",
    "GatewayConfig",
    "Handler",
    "Hl7v2Api",
    "Peer",
    "Received",
    "send_messages",
    "serve_mllp",
    "server_tls",
]
