"""The HL7 v2 gateway's pure layers, sans-IO: MLLP framing, parsing, ACKs, batches, and (in
:mod:`careweave.hl7v2.mapping`) the map to FHIR R4 transaction Bundles.

Public API::

    from careweave.hl7v2 import Framer, frame, parse, build_ack, outcome_of, ACCEPTED
    framer = Framer(max_frame_size=...)           # one per connection
    for event in framer.feed(chunk): ...          # Frame | Junk | BrokenFrame
    message = parse(payload)                      # Message, or raises Hl7v2Error
    ack = build_ack(message_or_bytes, ACCEPTED | outcome_of(exc), timestamp=..., control_id=...)

Layers: :mod:`.syntax` (delimiters, escaping), :mod:`.charset` (MSH-18), :mod:`.message`
(parse/encode), :mod:`.mllp` (framer), :mod:`.ack` (acknowledgements; the one outcome -> ACK code
table), :mod:`.batch` (FHS/BHS batches), :mod:`.tables` (v2 tables as data), :mod:`.mapping`
(v2 -> FHIR). Nothing here opens a socket, reads a clock or touches storage.
"""

from careweave.hl7v2.ack import (
    ACCEPTED,
    ACK_CODES,
    AckError,
    Outcome,
    ack_wanted,
    build_ack,
    is_enhanced,
    outcome_of,
)
from careweave.hl7v2.batch import Batch, build_batch_ack, is_batch, split_batch
from careweave.hl7v2.errors import Hl7v2Error, Location
from careweave.hl7v2.message import Message, Repetition, Segment, parse, read_header
from careweave.hl7v2.mllp import BrokenFrame, Frame, Framer, Junk, frame
from careweave.hl7v2.syntax import STANDARD, Syntax, escape, unescape

__all__ = [
    "ACCEPTED",
    "ACK_CODES",
    "STANDARD",
    "AckError",
    "Batch",
    "BrokenFrame",
    "Frame",
    "Framer",
    "Hl7v2Error",
    "Junk",
    "Location",
    "Message",
    "Outcome",
    "Repetition",
    "Segment",
    "Syntax",
    "ack_wanted",
    "build_ack",
    "build_batch_ack",
    "escape",
    "frame",
    "is_batch",
    "is_enhanced",
    "outcome_of",
    "parse",
    "read_header",
    "split_batch",
    "unescape",
]
