"""MLLP framing, sans-IO: bytes in, events out (HL7 v2.5.1 Appendix C, MLLP release 2).

Rules:
1. A frame is ``0x0B`` (start block), the payload, ``0x1C 0x0D`` (end block). :func:`frame`
   writes one; :class:`Framer` reads any number of them from a stream cut anywhere.
2. :meth:`Framer.feed` returns the events the new bytes complete, in order: :class:`Frame` (a
   payload), :class:`Junk` (bytes outside any frame, e.g. the CR LF some senders put between
   frames; the caller ignores whitespace), :class:`BrokenFrame` (a frame cut short by a new start
   block, or larger than ``max_frame_size``). The events do not depend on how the stream was
   cut into chunks (a property test holds this), except that junk may arrive in several pieces.
3. A ``0x1C`` not followed by ``0x0D`` still ends the frame (lenient); the following byte is read
   as outside any frame. A ``0x0D`` right after it is swallowed even when it comes in the next
   chunk.
4. A frame whose payload grows past ``max_frame_size`` gives one :class:`BrokenFrame` (reason
   ``"too-large"``, carrying the first ``max_frame_size`` bytes so the header can still be read)
   and the rest of it, up to its end block, is dropped without being kept in memory. A start block
   inside a frame ends it as ``"truncated"`` and starts the next one.
5. The framer holds at most ``max_frame_size`` bytes plus one chunk; it never raises.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

__all__ = [
    "END_BLOCK",
    "START_BLOCK",
    "BrokenFrame",
    "Event",
    "Frame",
    "Framer",
    "Junk",
    "frame",
]

START_BLOCK = b"\x0b"
END_BLOCK = b"\x1c\x0d"
_SB = 0x0B
_EB = 0x1C
_CR = 0x0D

DEFAULT_MAX_FRAME = 16 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class Frame:
    """A complete payload (one message, or a batch)."""

    payload: bytes


@dataclass(frozen=True, slots=True)
class Junk:
    """Bytes outside any frame."""

    data: bytes


@dataclass(frozen=True, slots=True)
class BrokenFrame:
    """A frame that could not be read whole (rule 4); ``head`` is what was kept of it."""

    head: bytes
    reason: Literal["too-large", "truncated"]


Event = Frame | Junk | BrokenFrame


def frame(payload: bytes) -> bytes:
    """One MLLP frame around ``payload``."""
    return START_BLOCK + payload + END_BLOCK


class Framer:
    """Reads MLLP frames from a byte stream (rules 2-5). One per connection."""

    __slots__ = ("_buffer", "_discarding", "_in_frame", "_max", "_swallow_cr")

    def __init__(self, max_frame_size: int = DEFAULT_MAX_FRAME) -> None:
        if max_frame_size < 1:
            raise ValueError("max_frame_size must be positive")
        self._max = max_frame_size
        self._buffer = bytearray()  # the payload of the current frame, so far
        self._in_frame = False
        self._discarding = False  # inside a frame already reported too large
        self._swallow_cr = False

    @property
    def in_frame(self) -> bool:
        """True while a frame has started and not ended (a read timeout here is a stall)."""
        return self._in_frame or self._discarding

    def feed(self, data: bytes) -> list[Event]:
        """Consume ``data``; return the events it completes."""
        events: list[Event] = []
        view = memoryview(data)
        pos, end = 0, len(data)
        if self._swallow_cr and end:
            self._swallow_cr = False
            if data[0] == _CR:
                pos = 1
        while pos < end:
            if self._discarding:
                pos = self._discard(data, pos, end)
            elif self._in_frame:
                pos = self._read_frame(data, view, pos, end, events)
            else:
                start = data.find(_SB, pos)
                stop = end if start < 0 else start
                if stop > pos:
                    events.append(Junk(bytes(view[pos:stop])))
                if start < 0:
                    break
                self._in_frame = True
                pos = start + 1
        return events

    def _read_frame(self, data: bytes, view: memoryview, pos: int, end: int, events: list[Event]) -> int:
        eb = data.find(_EB, pos)
        sb = data.find(_SB, pos, eb if eb >= 0 else end)
        stop = sb if sb >= 0 else eb
        if stop < 0:
            self._append(view[pos:end], events)
            return end
        self._append(view[pos:stop], events)
        if self._discarding:  # grew too large just now: it is reported; skip to its end
            self._discarding = False
            self._in_frame = sb >= 0
        elif sb >= 0:
            events.append(BrokenFrame(bytes(self._buffer), "truncated"))
        else:
            events.append(Frame(bytes(self._buffer)))
            self._in_frame = False
        self._buffer.clear()
        if sb >= 0:
            return sb + 1
        return self._after_end_block(data, eb, end)

    def _after_end_block(self, data: bytes, eb: int, end: int) -> int:
        self._in_frame = False
        if eb + 1 < end:
            return eb + 2 if data[eb + 1] == _CR else eb + 1
        self._swallow_cr = True
        return end

    def _append(self, chunk: memoryview, events: list[Event]) -> None:
        room = self._max - len(self._buffer)
        if len(chunk) <= room:
            self._buffer += chunk
            return
        self._buffer += chunk[:room]
        events.append(BrokenFrame(bytes(self._buffer), "too-large"))
        self._buffer.clear()
        self._discarding = True

    def _discard(self, data: bytes, pos: int, end: int) -> int:
        eb = data.find(_EB, pos)
        sb = data.find(_SB, pos, eb if eb >= 0 else end)
        if sb >= 0:
            self._discarding = False
            self._in_frame = True
            return sb + 1
        if eb < 0:
            return end
        self._discarding = False
        return self._after_end_block(data, eb, end)
