"""Parse and encode HL7 v2 ER7 messages (versions 2.1 to 2.9), sans-IO.

Rules:
1. :func:`parse` takes the bytes (or text) of one message and returns a :class:`Message`, or
   raises :class:`Hl7v2Error`, never anything else. Bytes are decoded by :mod:`.charset`
   (MSH-18, a BOM); segments may end with CR, LF or CRLF; blank lines are skipped.
2. The delimiters come from MSH-1 and MSH-2 (:mod:`.syntax`). A message must start with ``MSH``
   (leading whitespace allowed); every segment name is three characters, a capital letter then
   capitals or digits, so Z-segments are kept like any other. A second ``MSH`` is an error: a
   batch is read with :func:`careweave.hl7v2.batch.parse_batch`.
3. Segments keep their fields as written (escaped), so parsing costs one split per segment; the
   accessors split repetitions, components and sub-components and unescape on demand.
   ``fields[n]`` is field n for every segment, MSH included (``MSH-1`` is the field separator).
4. Accessors never raise: a missing field, repetition or component is ``""``, and so is the
   explicit null ``""`` (two double quotes). Numbers are 1-based, as in ``PID-3.4``.
5. :meth:`Message.encode` writes the message back, in its own syntax or another one (then every
   value is unescaped and escaped again), segments ended by CR.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from dataclasses import field as dataclass_field

from careweave.errors import Category
from careweave.hl7v2.charset import decode
from careweave.hl7v2.errors import Hl7v2Error, Location
from careweave.hl7v2.syntax import NOT_USED, Syntax, escape, unescape

__all__ = ["Message", "Repetition", "Segment", "parse", "parse_text", "read_header", "read_syntax"]

_SEGMENT_NAME = re.compile(r"[A-Z][A-Z0-9]{2}\Z")
_NULL = '""'


@dataclass(frozen=True, slots=True)
class Repetition:
    """One repetition of a field: its components, each a tuple of unescaped sub-components."""

    components: tuple[tuple[str, ...], ...]

    def get(self, component: int = 1, subcomponent: int = 1) -> str:
        """The text of ``component.subcomponent`` (1-based), ``""`` when absent."""
        comps = self.components
        if 0 < component <= len(comps):
            subs = comps[component - 1]
            if 0 < subcomponent <= len(subs):
                return subs[subcomponent - 1]
        return ""

    def __bool__(self) -> bool:
        return any(any(subs) for subs in self.components)


_EMPTY = Repetition(())


@dataclass(frozen=True, slots=True)
class Segment:
    """One segment: ``fields[n]`` is the raw (escaped) text of field n (rule 3). The repetitions of
    a field are split once, when first asked for (mappers read most fields more than once)."""

    name: str
    fields: tuple[str, ...]
    syntax: Syntax
    _split: dict[int, tuple[Repetition, ...]] = dataclass_field(
        default_factory=dict, init=False, repr=False, compare=False
    )

    def raw(self, field: int) -> str:
        """Field ``field`` as written, ``""`` when absent."""
        return self.fields[field] if 0 < field < len(self.fields) else ""

    def get(self, field: int, component: int = 1, subcomponent: int = 1, repetition: int = 1) -> str:
        """The unescaped text at ``field(repetition).component.subcomponent`` (rule 4)."""
        fields = self.fields
        if not 0 < field < len(fields):
            return ""
        raw = fields[field]
        if not raw or raw == _NULL:
            return ""
        if field <= 2 and self.name == "MSH":
            return raw
        syn = self.syntax
        sep = syn.repetition
        if sep in raw:
            reps = raw.split(sep)
            raw = reps[repetition - 1] if 0 < repetition <= len(reps) else ""
        elif repetition != 1:
            return ""
        sep = syn.component
        if sep in raw:
            parts = raw.split(sep)
            raw = parts[component - 1] if 0 < component <= len(parts) else ""
        elif component != 1:
            return ""
        sep = syn.subcomponent
        if sep in raw:
            subs = raw.split(sep)
            raw = subs[subcomponent - 1] if 0 < subcomponent <= len(subs) else ""
        elif subcomponent != 1:
            return ""
        if raw == _NULL:
            return ""
        return unescape(raw, syn) if syn.escape in raw else raw

    def repetitions(self, field: int) -> tuple[Repetition, ...]:
        """Every non-empty repetition of a field."""
        found = self._split.get(field)
        if found is None:
            found = self._split[field] = self._repetitions(field)
        return found

    def _repetitions(self, field: int) -> tuple[Repetition, ...]:
        raw = self.raw(field)
        if not raw or raw == _NULL or (self.name == "MSH" and field <= 2):
            return ()
        syn = self.syntax
        out = []
        for rep in raw.split(syn.repetition):
            if not rep or rep == _NULL:
                continue
            comps: tuple[tuple[str, ...], ...]
            if syn.escape not in rep and syn.subcomponent not in rep and _NULL not in rep:
                comps = tuple((c,) for c in rep.split(syn.component))  # the common, plain case
            else:
                comps = tuple(
                    tuple("" if s == _NULL else unescape(s, syn) for s in c.split(syn.subcomponent))
                    for c in rep.split(syn.component)
                )
            out.append(Repetition(comps))
        return tuple(out)

    def first(self, field: int) -> Repetition:
        """The first repetition of a field (an empty one when the field is empty)."""
        reps = self.repetitions(field)
        return reps[0] if reps else _EMPTY

    def encode(self, syntax: Syntax | None = None) -> str:
        """The segment as ER7 text (no terminator), in ``syntax`` or its own (rule 5)."""
        target = syntax or self.syntax
        if target == self.syntax:
            fields = self.fields
        else:
            fields = tuple(_reencode(raw, self.syntax, target) for raw in self.fields)
        if self.name == "MSH":
            head = "MSH" + target.field + target.encoding_characters
            return head + "".join(target.field + f for f in fields[3:])
        return self.name + "".join(target.field + f for f in fields[1:])


def _reencode(raw: str, source: Syntax, target: Syntax) -> str:
    if not raw:
        return raw
    return target.repetition.join(
        target.component.join(
            target.subcomponent.join(
                escape(unescape(sub, source), target) for sub in comp.split(source.subcomponent)
            )
            for comp in rep.split(source.component)
        )
        for rep in raw.split(source.repetition)
    )


@dataclass(frozen=True, slots=True)
class Message:
    """A parsed message: its syntax and its segments, MSH first."""

    syntax: Syntax
    segments: tuple[Segment, ...]

    @property
    def msh(self) -> Segment:
        return self.segments[0]

    def segment(self, name: str) -> Segment | None:
        """The first segment called ``name``."""
        for seg in self.segments:
            if seg.name == name:
                return seg
        return None

    def segments_named(self, name: str) -> tuple[Segment, ...]:
        return tuple(seg for seg in self.segments if seg.name == name)

    @property
    def message_code(self) -> str:
        return self.msh.get(9, 1)

    @property
    def trigger_event(self) -> str:
        return self.msh.get(9, 2)

    @property
    def structure(self) -> str:
        """MSH-9.3 as written (empty in most v2.3 feeds; see the mapping's structure table)."""
        return self.msh.get(9, 3)

    @property
    def control_id(self) -> str:
        return self.msh.get(10)

    @property
    def processing_id(self) -> str:
        return self.msh.get(11)

    @property
    def version(self) -> str:
        return self.msh.get(12)

    @property
    def sending_application(self) -> str:
        return self.msh.get(3)

    @property
    def sending_facility(self) -> str:
        return self.msh.get(4)

    def encode(self, syntax: Syntax | None = None) -> str:
        """ER7 text, every segment ended by CR (rule 5)."""
        return "".join(seg.encode(syntax) + "\r" for seg in self.segments)

    def to_bytes(self, syntax: Syntax | None = None) -> bytes:
        """:meth:`encode` in the message's character set (unencodable characters as ``?``)."""
        codec = (syntax or self.syntax).charset
        return self.encode(syntax).encode(codec, errors="replace")


def read_syntax(text: str) -> Syntax:
    """The syntax declared by a header (``MSH``, ``FHS`` or ``BHS``) segment's fields 1 and 2."""
    where = Location(text[:3] if len(text) >= 3 else "MSH", field=1)
    if len(text) < 5:
        raise Hl7v2Error("the header is too short to hold its delimiters", "100", _HEADER, where)
    sep = text[3]
    if sep.isalnum() or sep.isspace():
        raise Hl7v2Error(f"invalid field separator {sep!r}", "102", _HEADER, where)
    end = text.find(sep, 4)
    line_end = min((i for i in (text.find("\r", 4), text.find("\n", 4)) if i >= 0), default=-1)
    if end < 0 or (0 <= line_end < end):
        end = line_end if line_end >= 0 else len(text)
    chars = text[4:end]
    where2 = Location(where.segment, field=2)
    if not 1 <= len(chars) <= 5:
        raise Hl7v2Error(f"MSH-2 must hold 1 to 5 characters, not {chars!r}", "102", _HEADER, where2)
    if len(set(chars + sep)) != len(chars) + 1 or any(c.isalnum() or c.isspace() for c in chars):
        raise Hl7v2Error(f"invalid encoding characters {chars!r}", "102", _HEADER, where2)
    padded = (chars + NOT_USED * 5)[:5]
    return Syntax(sep, padded[0], padded[1], padded[2], padded[3], padded[4])


_HEADER = Category.UNSUPPORTED_MEDIA


def parse(data: bytes | str) -> Message:
    """Parse one message (rules 1-2); raises :class:`Hl7v2Error` only."""
    if isinstance(data, bytes | bytearray | memoryview):
        text, charset = decode(bytes(data))
    else:
        text, charset = data, "utf-8"
    return parse_text(text, charset)


def parse_text(text: str, charset: str = "utf-8") -> Message:
    """Parse decoded text; ``charset`` is the codec for ``\\X..\\`` escapes."""
    text = text.lstrip("\ufeff \t\r\n")
    if not text.startswith("MSH"):
        raise Hl7v2Error("a message must start with an MSH segment", "100", _HEADER, Location("MSH"))
    syntax = read_syntax(text).with_charset(charset)
    if "\n" in text:
        text = text.replace("\r\n", "\r").replace("\n", "\r")
    segments: list[Segment] = []
    sep = syntax.field
    for line in text.split("\r"):
        if not line or line.isspace():
            continue
        fields = line.split(sep)
        name = fields[0]
        if not _SEGMENT_NAME.match(name):
            raise Hl7v2Error(
                f"segment {len(segments) + 1} has an invalid name {name[:10]!r}",
                "100",
                location=Location(name[:3] if name.isalnum() else "???", len(segments) + 1),
            )
        if name == "MSH":
            if segments:
                raise Hl7v2Error(
                    "a second MSH segment: one message at a time", "100", location=Location("MSH", 2)
                )
            fields.insert(1, sep)
        segments.append(Segment(name, tuple(fields), syntax))
    return Message(syntax, tuple(segments))


def read_header(data: bytes | str) -> Segment | None:
    """The MSH segment of a message that may be broken anywhere else, or ``None``; never raises.

    Used to answer (AR) a message that :func:`parse` refuses: the ACK still names the sender and
    the control id when the header can be read.
    """
    if isinstance(data, bytes | bytearray | memoryview):
        raw = bytes(data)
        try:
            text = decode(raw)[0]
        except Hl7v2Error:
            text = raw.decode("latin-1")
    else:
        text = data
    start = text.find("MSH")
    if start < 0:
        return None
    line = text[start:].replace("\n", "\r").split("\r", 1)[0]
    try:
        syntax = read_syntax(line)
    except Hl7v2Error:
        return None
    fields = line.split(syntax.field)
    fields.insert(1, syntax.field)
    return Segment("MSH", tuple(fields), syntax)
