"""HL7 v2 batches (FHS/BHS ... BTS/FTS): split into their messages, and acknowledge them.

Rules:
1. :func:`is_batch` is true when the first segment (after a BOM and whitespace) is FHS or BHS.
2. :func:`split_batch` works on the raw bytes (any ASCII-compatible character set): each message
   starts at an ``MSH`` line and runs to the next MSH, BTS or FTS; its segments are re-joined with
   CR, so each message can be handed to :func:`~careweave.hl7v2.message.parse` (and to the
   gateway's handler) on its own. A segment before the first MSH other than FHS/BHS is an error
   (100), as is anything that is not a batch.
3. BTS-1 (batch message count) is reported as ``declared_count``; a mismatch is for the caller to
   judge (``Batch.count_matches``).
4. :func:`build_batch_ack` wraps the ACK of each message in ``BHS ... BTS`` (with FHS/FTS when the
   batch had them), BHS-12 naming the batch it answers (BHS-11).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from careweave.errors import Category
from careweave.hl7v2.errors import Hl7v2Error, Location
from careweave.hl7v2.message import Segment, read_syntax
from careweave.hl7v2.syntax import STANDARD, escape

__all__ = ["Batch", "build_batch_ack", "is_batch", "split_batch"]

_BOM = b"\xef\xbb\xbf"


@dataclass(frozen=True, slots=True)
class Batch:
    headers: tuple[Segment, ...]  # FHS and/or BHS
    messages: tuple[bytes, ...]
    trailers: tuple[Segment, ...]  # BTS and/or FTS

    @property
    def declared_count(self) -> int | None:
        for seg in self.trailers:
            if seg.name == "BTS" and seg.get(1).strip().isdecimal():
                return int(seg.get(1).strip())
        return None

    @property
    def count_matches(self) -> bool:
        declared = self.declared_count
        return declared is None or declared == len(self.messages)

    def header(self, name: str) -> Segment | None:
        return next((s for s in self.headers if s.name == name), None)


def _lines(data: bytes) -> list[bytes]:
    if data.startswith(_BOM):
        data = data[3:]
    return [line for line in data.replace(b"\r\n", b"\r").replace(b"\n", b"\r").split(b"\r") if line.strip()]


def is_batch(data: bytes) -> bool:
    """Rule 1."""
    head = data[3:] if data.startswith(_BOM) else data
    return head.lstrip()[:3] in (b"FHS", b"BHS")


def _segment(line: bytes) -> Segment:
    text = line.decode("latin-1")
    syntax = read_syntax(text)
    fields = text.split(syntax.field)
    fields.insert(1, syntax.field)
    return Segment(fields[0], tuple(fields), syntax)


def _plain(line: bytes) -> Segment:
    text = line.decode("latin-1")
    sep = text[3:4] or "|"
    return Segment(text[:3], tuple(text.split(sep)), STANDARD)


def split_batch(data: bytes) -> Batch:
    """The parts of a batch (rules 2-3); raises :class:`Hl7v2Error`."""
    if not is_batch(data):
        raise Hl7v2Error("not a batch: no FHS or BHS", "100", Category.UNSUPPORTED_MEDIA, Location("BHS"))
    headers: list[Segment] = []
    trailers: list[Segment] = []
    messages: list[list[bytes]] = []
    for line in _lines(data):
        name = line.lstrip()[:3]
        if name in (b"FHS", b"BHS"):
            headers.append(_segment(line.lstrip()))
        elif name in (b"BTS", b"FTS"):
            trailers.append(_plain(line))
        elif name == b"MSH":
            messages.append([line])
        elif messages and not trailers:
            messages[-1].append(line)
        else:
            where = Location(name.decode("latin-1") if name.isalnum() else "???")
            raise Hl7v2Error("a segment outside any message of the batch", "100", location=where)
    return Batch(tuple(headers), tuple(b"\r".join(m) + b"\r" for m in messages), tuple(trailers))


def build_batch_ack(batch: Batch, acks: Sequence[bytes], *, timestamp: datetime, control_id: str) -> bytes:
    """One batch holding the ACK of each message (rule 4)."""
    bhs = batch.header("BHS") or batch.header("FHS")
    syntax = bhs.syntax if bhs is not None else STANDARD
    f = syntax.field

    def raw(n: int) -> str:
        return bhs.raw(n) if bhs is not None else ""

    stamp = timestamp.strftime("%Y%m%d%H%M%S") + timestamp.strftime("%z")[:5]
    fields = [raw(5), raw(6), raw(3), raw(4), stamp, "", "", "", escape(control_id, syntax), raw(11)]
    head = f.join(fields).rstrip(f)
    out = [f"{name}{f}{syntax.encoding_characters}{f}{head}" for name in ("FHS", "BHS")
           if batch.header(name) is not None or name == "BHS"]  # fmt: skip
    body = b"".join(a if a.endswith(b"\r") else a + b"\r" for a in acks)
    tail = f"BTS{f}{len(acks)}\r" + (f"FTS{f}1\r" if batch.header("FHS") is not None else "")
    return ("\r".join(out) + "\r").encode("latin-1", errors="replace") + body + tail.encode("ascii")
