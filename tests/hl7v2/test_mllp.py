"""MLLP framing (HL7 v2.5.1 Appendix C, MLLP release 2): sans-IO framer under any chunking."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from careweave.hl7v2.mllp import BrokenFrame, Frame, Framer, Junk, frame

PAYLOADS = st.binary(max_size=200).map(lambda b: bytes(c for c in b if c not in (0x0B, 0x1C)))


def _feed_all(framer: Framer, chunks: list[bytes]) -> list[Frame | Junk | BrokenFrame]:
    return [event for chunk in chunks for event in framer.feed(chunk)]


def _cut(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(data) + 1) for c in cuts})
    edges = [0, *points, len(data)]
    return [data[a:b] for a, b in itertools.pairwise(edges)]


def _summary(events: list[Frame | Junk | BrokenFrame]) -> tuple[list[object], bytes]:
    """Frames and broken frames in order, and the junk concatenated (it may come in pieces)."""
    kept = [e for e in events if not isinstance(e, Junk)]
    junk = b"".join(e.data for e in events if isinstance(e, Junk))
    return kept, junk


@settings(max_examples=300)
@given(
    payloads=st.lists(PAYLOADS, min_size=1, max_size=6),
    gaps=st.lists(st.sampled_from([b"", b"\r\n", b"\n", b"noise"]), min_size=6, max_size=6),
    cuts=st.lists(st.integers(min_value=0, max_value=10_000), max_size=20),
)
def test_any_chunking_yields_the_same_frames(payloads, gaps, cuts):
    stream = b"".join(gap + frame(p) for gap, p in zip(gaps, payloads, strict=False))
    whole = _feed_all(Framer(), [stream])
    assert [e.payload for e in whole if isinstance(e, Frame)] == payloads
    chunked = _feed_all(Framer(), _cut(stream, cuts))
    assert _summary(chunked) == _summary(whole)
    bytewise = _feed_all(Framer(), [stream[i : i + 1] for i in range(len(stream))])
    assert _summary(bytewise) == _summary(whole)


@settings(max_examples=300)
@given(
    stream=st.binary(max_size=400),
    cuts=st.lists(st.integers(0, 1000), max_size=10),
    limit=st.integers(min_value=1, max_value=64),
)
def test_arbitrary_streams_are_chunking_invariant_and_bounded(stream, cuts, limit):
    whole = _feed_all(Framer(limit), [stream])
    chunked = _feed_all(Framer(limit), _cut(stream, cuts))
    assert _summary(chunked) == _summary(whole)
    for event in whole:
        if isinstance(event, Frame | BrokenFrame):
            payload = event.payload if isinstance(event, Frame) else event.head
            assert len(payload) <= limit


@pytest.mark.parametrize(
    ("chunks", "expected"),
    [
        ([b"\x0bA\x1c\r"], [Frame(b"A")]),
        ([b"\x0bA\x1c", b"\r\x0bB\x1c\r"], [Frame(b"A"), Frame(b"B")]),
        ([b"\x0bA\x1cX"], [Frame(b"A"), Junk(b"X")]),  # lenient end block
        ([b"\x0bA\x1c", b"X"], [Frame(b"A"), Junk(b"X")]),
        ([b"\x0bA\x1c\r\r\n"], [Frame(b"A"), Junk(b"\r\n")]),
        ([b"\x0bA\x0bB\x1c\r"], [BrokenFrame(b"A", "truncated"), Frame(b"B")]),
        ([b"\x0b123456\x1c\r\x0bok\x1c\r"], [BrokenFrame(b"1234", "too-large"), Frame(b"ok")]),
        ([b"\x0b12", b"34", b"56", b"78\x1c\r"], [BrokenFrame(b"1234", "too-large")]),
        ([b"\x0b1234\x1c\r"], [Frame(b"1234")]),
        ([b"\x0b123456\x0bok\x1c\r"], [BrokenFrame(b"1234", "too-large"), Frame(b"ok")]),
        ([b"\x0bpar"], []),
    ],
)
def test_framer_cases(chunks, expected):
    assert _feed_all(Framer(max_frame_size=4), chunks) == expected


def test_in_frame_tells_a_stall_from_an_idle_connection():
    framer = Framer()
    assert not framer.in_frame
    framer.feed(b"\x0bMSH")
    assert framer.in_frame
    framer.feed(b"\x1c\r")
    assert not framer.in_frame


def test_max_frame_size_must_be_positive():
    with pytest.raises(ValueError):
        Framer(0)
