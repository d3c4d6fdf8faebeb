"""Property tests: no byte sequence makes the parser, header reader, framer, ACK builder or the
mapping raise anything but Hl7v2Error (the CI counterpart of fuzz/hl7v2/)."""

from __future__ import annotations

import contextlib
from datetime import UTC, datetime

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from careweave.hl7v2 import ACCEPTED, Framer, Hl7v2Error, build_ack, parse, read_header
from careweave.hl7v2.batch import split_batch
from careweave.hl7v2.mapping import map_message
from tests.hl7v2.conftest import corpus_files

SEEDS = [p.read_bytes() for p in corpus_files()]
NOW = datetime(2024, 1, 1, tzinfo=UTC)


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    """A corpus message with a few bytes flipped, dropped or inserted, or random bytes."""
    if draw(st.booleans()):
        return draw(st.binary(max_size=300))
    data = bytearray(draw(st.sampled_from(SEEDS)))
    alphabet = st.sampled_from(list(b"|^~\\&\r\n#!0123456789ABCMSHPIDXZ .\xff\xc3\x00\x0b\x1c"))
    for _ in range(draw(st.integers(1, 8))):
        if not data:
            break
        at = draw(st.integers(0, len(data) - 1))
        action = draw(st.sampled_from(["flip", "drop", "insert"]))
        if action == "flip":
            data[at] = draw(alphabet)
        elif action == "drop":
            del data[at]
        else:
            data.insert(at, draw(alphabet))
    return bytes(data)


@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow])
@given(data=mutated())
def test_parse_and_map_raise_only_hl7v2_error(data, options):
    try:
        message = parse(data)
    except Hl7v2Error:
        message = None
    if message is not None:
        message.encode()
        with contextlib.suppress(Hl7v2Error):
            map_message(message, options)
    read_header(data)
    ack = build_ack(data, ACCEPTED, timestamp=NOW, control_id="1")
    assert parse(ack).segment("MSA") is not None
    with contextlib.suppress(Hl7v2Error):
        split_batch(data)


@settings(max_examples=300)
@given(data=st.binary(max_size=500), size=st.integers(1, 100))
def test_framer_never_raises(data, size):
    Framer(size).feed(data)
