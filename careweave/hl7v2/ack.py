"""HL7 v2 acknowledgements: (message or raw bytes, outcome) -> ACK bytes. Pure.

Rules:
1. :data:`ACK_CODES` is the only place where an outcome becomes an acknowledgement code:
   accepted -> AA (CA); a content error (the message reached the application and resending it
   unchanged will fail again) -> AE (CE); a refusal of what the message is (header unreadable,
   unsupported type, event, version, processing id or character set, sender not allowed, too
   large), or a failure of ours (busy, fault: a resend later may succeed) -> AR. Commit ACKs
   answer header refusals with CR and everything else that failed with CE.
2. Original mode (MSH-15 and MSH-16 empty) gets one ACK: AA, AE or AR. Enhanced mode gets a
   commit ACK (CA/CE/CR, ``commit=True``) and later an application ACK, each sent only when its
   condition field says so (:func:`ack_wanted`; table 0155: AL always, NE never, ER on error only,
   SU on success only; an empty one, in enhanced mode, counts as AL).
3. MSA-2 echoes MSH-10. From v2.5 on, each error is an ERR segment with ERR-2 (location), ERR-3
   (table 0357 code), ERR-4 (severity, table 0516) and ERR-8 (the user message); before v2.5,
   one ERR segment repeats ERR-1 (segment^sequence^field^code&text&HL70357), MSA-3 carries the
   first message and MSA-6 the first code (the v2.3 style).
4. The ACK swaps sender and receiver (MSH-3/4 <-> MSH-5/6), keeps the message's delimiters,
   processing id, version and character set, and answers ``ACK^<event>^ACK``. A message whose
   header cannot be read at all still gets an AR, in the standard delimiters and v2.5.1.
5. Pure: the caller gives the ACK's own timestamp (MSH-7) and control id (MSH-10).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime

from careweave.errors import CareweaveError, Category
from careweave.hl7v2.charset import CHARSETS
from careweave.hl7v2.errors import Hl7v2Error, Location
from careweave.hl7v2.message import Message, Segment, parse, read_header
from careweave.hl7v2.syntax import STANDARD, Syntax, escape

__all__ = [
    "ACCEPTED",
    "ACK_CODES",
    "ERROR_TEXT",
    "AckError",
    "Condition",
    "Outcome",
    "ack_wanted",
    "build_ack",
    "is_enhanced",
    "outcome_of",
]

# careweave Category (None: accepted) -> (application ACK code, commit ACK code); rule 1.
ACK_CODES: dict[Category | None, tuple[str, str]] = {
    None: ("AA", "CA"),
    Category.INVALID: ("AE", "CE"),
    Category.UNPROCESSABLE: ("AE", "CE"),
    Category.NOT_FOUND: ("AE", "CE"),
    Category.GONE: ("AE", "CE"),
    Category.CONFLICT: ("AE", "CE"),
    Category.PRECONDITION_FAILED: ("AE", "CE"),
    Category.NOT_ALLOWED: ("AR", "CR"),
    Category.NOT_ACCEPTABLE: ("AR", "CR"),
    Category.UNSUPPORTED_MEDIA: ("AR", "CR"),
    Category.TOO_LARGE: ("AR", "CR"),
    Category.UNAUTHORIZED: ("AR", "CR"),
    Category.FORBIDDEN: ("AR", "CR"),
    Category.BUSY: ("AR", "CE"),
    Category.FAULT: ("AR", "CE"),
}

# HL7 table 0357, message error condition codes (v2.5.1; checked against the packaged
# CodeSystem http://terminology.hl7.org/CodeSystem/v2-0357 by a test).
ERROR_TEXT: dict[str, str] = {
    "0": "Message accepted",
    "100": "Segment sequence error",
    "101": "Required field missing",
    "102": "Data type error",
    "103": "Table value not found",
    "104": "Value too long",
    "198": "Non-Conformant Cardinality",
    "199": "Other HL7 Error",
    "200": "Unsupported message type",
    "201": "Unsupported event code",
    "202": "Unsupported processing id",
    "203": "Unsupported version id",
    "204": "Unknown key identifier",
    "205": "Duplicate key identifier",
    "206": "Application record locked",
    "207": "Application error",
}

# FHIR IssueType of a careweave Issue -> table 0357 code (anything else: 207).
_ISSUE_CODES = {
    "required": "101",
    "structure": "102",
    "value": "102",
    "code-invalid": "103",
    "too-long": "104",
    "not-found": "204",
    "duplicate": "205",
    "lock-error": "206",
    "conflict": "206",
}
# FHIR issue severity -> table 0516 (ERR-4).
_SEVERITY = {"fatal": "F", "error": "E", "warning": "W", "information": "I"}
_DEFAULT_VERSION = "2.5.1"


class Condition(enum.Enum):
    """Table 0155: when an enhanced-mode acknowledgement is sent."""

    AL = "AL"
    NE = "NE"
    ER = "ER"
    SU = "SU"


@dataclass(frozen=True, slots=True)
class AckError:
    """One problem to report: ERR-8 text, table 0357 code, table 0516 severity, ERR-2 location."""

    text: str
    code: str = "207"
    severity: str = "E"
    location: Location | None = None


@dataclass(frozen=True, slots=True)
class Outcome:
    """What became of a message: ``category`` None means accepted (``errors`` may then hold
    warnings); otherwise the careweave Category of the failure and what to tell the sender."""

    category: Category | None = None
    errors: tuple[AckError, ...] = ()

    @property
    def accepted(self) -> bool:
        return self.category is None


ACCEPTED = Outcome()


def outcome_of(exc: BaseException) -> Outcome:
    """The outcome for an exception: :class:`Hl7v2Error`, :class:`CareweaveError`, or a fault."""
    if isinstance(exc, Hl7v2Error):
        return Outcome(exc.category, (AckError(exc.diagnostics, exc.code, "E", exc.location),))
    if isinstance(exc, CareweaveError):
        errors = tuple(
            AckError(
                f"{issue.details + ': ' if issue.details else ''}{issue.diagnostics}",
                _ISSUE_CODES.get(issue.code, "207"),
                _SEVERITY.get(issue.severity, "E"),
            )
            for issue in exc.all_issues()
        )
        return Outcome(exc.category, errors)
    return Outcome(Category.FAULT, (AckError("internal error; the message was not processed"),))


def is_enhanced(message: Message) -> bool:
    """Enhanced acknowledgement mode: MSH-15 or MSH-16 is valued (rule 2)."""
    return bool(message.msh.get(15) or message.msh.get(16))


def ack_wanted(message: Message, outcome: Outcome, *, commit: bool) -> bool:
    """Whether the sender asked for this acknowledgement (always true in original mode)."""
    if not is_enhanced(message):
        return not commit
    value = message.msh.get(15 if commit else 16).upper() or "AL"
    try:
        condition = Condition(value)
    except ValueError:
        condition = Condition.AL
    if condition is Condition.AL:
        return True
    if condition is Condition.NE:
        return False
    return outcome.accepted is (condition is Condition.SU)


def build_ack(
    source: Message | bytes | str,
    outcome: Outcome,
    *,
    timestamp: datetime,
    control_id: str,
    commit: bool = False,
) -> bytes:
    """The ACK message for ``source`` (rules 1-5), as bytes in the source's character set."""
    header = _header_of(source)
    syntax = header.syntax if header is not None else STANDARD
    application, committed = ACK_CODES[outcome.category]
    code = committed if commit else application
    version = (header.get(12) if header is not None else "") or _DEFAULT_VERSION
    old_style = _version_tuple(version) < (2, 5)
    segments = [
        _msh(header, syntax, timestamp, control_id, version),
        _msa(header, syntax, code, outcome, old_style),
    ]
    if outcome.errors:
        segments.extend(_err(syntax, outcome.errors, old_style))
    text = "\r".join(segments) + "\r"
    return text.encode(syntax.charset, errors="replace")


def _header_of(source: Message | bytes | str) -> Segment | None:
    if isinstance(source, Message):
        return source.msh
    try:
        return parse(source).msh
    except Hl7v2Error:
        return read_header(source)


def _version_tuple(version: str) -> tuple[int, ...]:
    parts = []
    for part in version.split(".")[:3]:
        if not part.isdecimal():
            break
        parts.append(int(part))
    return tuple(parts) or (2, 5, 1)


def _msh(header: Segment | None, syntax: Syntax, when: datetime, control_id: str, version: str) -> str:
    def raw(n: int) -> str:
        return header.raw(n) if header is not None else ""

    event = header.get(9, 2) if header is not None else ""
    modern = _version_tuple(version) >= (2, 3, 1)
    kind = ["ACK", escape(event, syntax), "ACK"] if modern else ["ACK", escape(event, syntax)]
    fields = [
        raw(5), raw(6), raw(3), raw(4), _timestamp(when), "",
        syntax.component.join(kind).rstrip(syntax.component), escape(control_id, syntax),
        raw(11) or "P", escape(version, syntax) if header is None else raw(12) or version,
        "", "", "", "", "", _charset_field(header),
    ]  # fmt: skip
    body = syntax.field.join(fields).rstrip(syntax.field)
    return "MSH" + syntax.field + syntax.encoding_characters + syntax.field + body


def _charset_field(header: Segment | None) -> str:
    """MSH-18 of the source, when it names a character set we can write (else empty: ASCII)."""
    if header is None:
        return ""
    raw = header.raw(18)  # as written: the ACK must read back with the same declaration
    return raw if raw.strip().upper() in CHARSETS else ""


def _timestamp(when: datetime) -> str:
    """``YYYYMMDDHHMMSS`` and the offset ``+HHMM`` when ``when`` has one (``strftime`` costs more)."""
    if when.year < 1000:
        return when.strftime("%Y%m%d%H%M%S") + when.strftime("%z")[:5]
    text = f"{when.year}{when.month:02d}{when.day:02d}{when.hour:02d}{when.minute:02d}{when.second:02d}"
    delta = when.utcoffset()
    if delta is None:
        return text
    seconds = int(delta.total_seconds())
    sign = "-" if seconds < 0 else "+"
    seconds = abs(seconds)
    return f"{text}{sign}{seconds // 3600:02d}{seconds % 3600 // 60:02d}"


def _msa(header: Segment | None, syntax: Syntax, code: str, outcome: Outcome, old_style: bool) -> str:
    control = header.raw(10) if header is not None else ""
    fields = [code, control]
    first = outcome.errors[0] if outcome.errors else None
    if old_style and first is not None:
        fields += [escape(first.text[:80], syntax), "", "", _coded(first.code, syntax, syntax.component)]
    return "MSA" + syntax.field + syntax.field.join(fields).rstrip(syntax.field)


def _coded(code: str, syntax: Syntax, separator: str) -> str:
    text = escape(ERROR_TEXT.get(code, ERROR_TEXT["207"]), syntax)
    return separator.join([code, text, "HL70357"])


def _err(syntax: Syntax, errors: tuple[AckError, ...], old_style: bool) -> list[str]:
    f, c = syntax.field, syntax.component
    if old_style:
        reps = []
        for error in errors:
            loc = error.location or Location("")
            parts = [loc.segment, str(loc.sequence) if loc.segment else "", str(loc.field or "")]
            reps.append(c.join([*parts, _coded(error.code, syntax, syntax.subcomponent)]))
        return ["ERR" + f + syntax.repetition.join(reps)]
    out = []
    for error in errors:
        fields = [
            "", _location(error.location, c), _coded(error.code, syntax, c),
            error.severity, "", "", "", escape(error.text, syntax),
        ]  # fmt: skip
        out.append("ERR" + f + f.join(fields))
    return out


def _location(location: Location | None, separator: str) -> str:
    if location is None or not location.segment:
        return ""
    numbers = (
        location.field,
        location.repetition or (1 if location.field else 0),
        location.component,
        location.subcomponent,
    )
    parts = [location.segment, str(location.sequence), *(str(n) if n else "" for n in numbers)]
    return separator.join(parts).rstrip(separator)
