"""The HL7 v2 gateway's transport: an asyncio MLLP server and client (:mod:`.mllp`).

Public API::

    from careweave.gateway import Peer, serve_mllp, send_messages
    server = await serve_mllp("0.0.0.0", 2575, handler)   # handler(payload, peer) -> ACK bytes
    acks = await send_messages("127.0.0.1", 2575, [message_bytes, ...])

The framing, parsing and ACKs are the pure layers of :mod:`careweave.hl7v2`; storage, duplicate
detection and routing belong to the handler the composition root passes in.
"""

from careweave.gateway.mllp import Handler, Peer, send_messages, serve_mllp

__all__ = ["Handler", "Peer", "send_messages", "serve_mllp"]
