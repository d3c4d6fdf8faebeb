"""One message on its way through the gateway: what parsing and mapping made of it (pure, no
awaits), and the small values the service stamps on what it sends.

Rules:
1. :func:`study` parses and maps in this process; :func:`read` only parses (a worker process maps,
   ``workers.map_and_prepare``), and :func:`glance` only reads the MSH segment (the worker parses
   the rest; a message it cannot take is read again with :func:`read`, so what is stored and
   answered stays the same). None of them raises: a failure is kept in the :class:`Work`.
2. The header fields kept for the inbox (MSH-3, MSH-4 upper case, MSH-10, MSH-9) are cut to their
   column sizes; a message whose MSH cannot be read has them empty.
3. The control ids of the ACKs this process sends are unique without a system call per ACK.
"""

from __future__ import annotations

import itertools
import logging
import time
from dataclasses import dataclass
from typing import Any

from careweave.gateway.workers import Mapped
from careweave.hl7v2.ack import Outcome, is_enhanced
from careweave.hl7v2.charset import decode
from careweave.hl7v2.errors import Hl7v2Error
from careweave.hl7v2.mapping import MapOptions, map_message
from careweave.hl7v2.message import Message, Segment, parse, read_header, read_syntax
from careweave.hl7v2.syntax import Syntax

__all__ = ["ControlIds", "Work", "failure_reason", "glance", "now_ms", "read", "study"]

log = logging.getLogger("careweave.gateway")


@dataclass(slots=True)
class Work:
    """One message on its way through: what parsing and mapping made of it."""

    raw: bytes
    source: str
    message: Message | None
    bundle: dict[str, Any] | None
    failure: Exception | None  # a parse or mapping error (Hl7v2Error)
    sender: str
    facility: str
    control_id: str
    kind: str
    mapped: Mapped | None = None  # mapped, validated and indexed in a worker process instead

    @property
    def enhanced(self) -> bool:
        return self.message is not None and is_enhanced(self.message)

    @property
    def ready(self) -> bool:
        """Mapped without a failure: there is something to write."""
        return self.failure is None and (self.bundle is not None or self.mapped is not None)

    @property
    def urls(self) -> list[str]:
        if self.mapped is not None:
            return [url for url, _, _ in self.mapped.entries]
        return [] if self.bundle is None else [e["request"]["url"] for e in self.bundle["entry"]]

    @property
    def keys(self) -> list[str]:
        return [url for url in self.urls if url.startswith("Patient/")]


def now_ms() -> int:
    return time.time_ns() // 1_000_000


class ControlIds:
    """MSH-10 of the ACKs this process sends: unique, at most 20 characters (``CW`` + the start
    time in base 36 + a counter); no per-ACK system call."""

    def __init__(self) -> None:
        self._prefix = "CW" + _base36(time.time_ns() // 1_000_000)
        self._next = itertools.count(1)

    def __call__(self) -> str:
        return f"{self._prefix}{_base36(next(self._next)):0>7}"


def _base36(n: int) -> str:
    digits = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"
    out = ""
    while True:
        n, r = divmod(n, 36)
        out = digits[r] + out
        if not n:
            return out


def failure_reason(outcome: Outcome) -> str:
    return "; ".join(f"{e.code} {e.location or ''}: {e.text}".replace(" :", ":") for e in outcome.errors)


def study(raw: bytes, source: str, options: MapOptions) -> Work:
    """Parse and map (pure, no awaits): the message, its Bundle, or the error."""
    message: Message | None = None
    bundle = None
    failure: Exception | None = None
    try:
        message = parse(raw)
        bundle = map_message(message, options)
    except Hl7v2Error as exc:
        failure = exc
    except Exception as exc:  # a mapper bug: the message goes to the error queue, not lost
        log.error("mapping raised %s", type(exc).__name__)
        failure = exc
    header = message.msh if message is not None else read_header(raw)
    if header is None:
        return Work(raw, source, None, None, failure, "", "", "", "")
    kind = "^".join(p for p in (header.get(9, 1), header.get(9, 2)) if p)
    return Work(
        raw, source, message, bundle, failure,
        header.get(3)[:200], header.get(4).strip().upper()[:200], header.get(10)[:200], kind[:40],
    )  # fmt: skip


def read(raw: bytes, source: str) -> Work:
    """Parse only (the worker maps): the message, or the parse error; ``bundle`` stays None."""
    message: Message | None = None
    failure: Exception | None = None
    try:
        message = parse(raw)
    except Hl7v2Error as exc:
        failure = exc
    header = message.msh if message is not None else read_header(raw)
    if header is None:
        return Work(raw, source, None, None, failure, "", "", "", "")
    kind = "^".join(p for p in (header.get(9, 1), header.get(9, 2)) if p)
    return Work(
        raw, source, message, None, failure,
        header.get(3)[:200], header.get(4).strip().upper()[:200], header.get(10)[:200], kind[:40],
    )  # fmt: skip


_SYNTAXES: dict[tuple[str, str], Syntax] = {}  # by the MSH line's first 10 characters, charset


def glance(raw: bytes, source: str) -> Work:
    """:func:`read` for the MSH segment alone (rule 1): ``message`` holds only the header, which
    is all the service reads of it when a worker maps (enhanced mode, the ACKs). The header is
    the one :func:`parse` would give (the delimiters :func:`read_syntax` reads lie in the first
    10 characters, so syntaxes are remembered by them); a message whose header cannot be read
    this way is :func:`read` whole."""
    try:
        text, charset = decode(raw)
    except Hl7v2Error:
        return read(raw, source)
    text = text.lstrip("\ufeff \t\r\n")
    line = text[: min((i for i in (text.find("\r"), text.find("\n")) if i >= 0), default=len(text))]
    key = (line[:10], charset)
    syntax = _SYNTAXES.get(key)
    if syntax is None:
        try:
            if not line.startswith("MSH"):
                return read(raw, source)
            syntax = read_syntax(line).with_charset(charset)
        except Hl7v2Error:
            return read(raw, source)
        if len(_SYNTAXES) < 64:
            _SYNTAXES[key] = syntax
    fields = line.split(syntax.field)
    fields.insert(1, syntax.field)
    header = Segment("MSH", tuple(fields), syntax)
    kind = "^".join(p for p in (header.get(9, 1), header.get(9, 2)) if p)
    return Work(
        raw, source, Message(syntax, (header,)), None, None,
        header.get(3)[:200], header.get(4).strip().upper()[:200], header.get(10)[:200], kind[:40],
    )  # fmt: skip
