"""The delimiters and character set a message is written in, and ER7 escaping.

Rules:
1. MSH-1 is the field separator; MSH-2 lists, in order, the component, repetition, escape and
   sub-component separators and (v2.7+) the truncation character. Characters a sender leaves out
   of MSH-2 are "not used" and are represented by ``"\\r"``, which can never occur inside a
   segment, so splitting on them is a no-op.
2. :func:`unescape` understands ``\\F\\ \\S\\ \\T\\ \\R\\ \\E\\ \\P\\``, hexadecimal data
   ``\\Xhh..\\`` (bytes in the message's character set), the formatting commands ``\\.br\\``
   (and ``\\.sp\\``, a new line), ``\\.sk n\\`` (n spaces), and drops the highlighting, character
   set and locally defined escapes (``\\H\\ \\N\\ \\C..\\ \\M..\\ \\Z..\\``) and the other
   formatting commands (``\\.in\\`` ...). Anything else, and an escape that is never closed, is
   kept as written: unescaping never fails.
3. :func:`escape` is its inverse for plain text: separators and the escape character become
   their escape sequences, carriage return and line feed become ``\\X0D\\`` and ``\\X0A\\``.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

__all__ = ["STANDARD", "Syntax", "escape", "unescape"]

NOT_USED = "\r"

_DROPPED_FORMATTING = frozenset({".fi", ".nf", ".in", ".ti", ".ce"})


@dataclass(frozen=True, slots=True)
class Syntax:
    """Delimiters (rule 1) and the Python codec of the message's character set."""

    field: str = "|"
    component: str = "^"
    repetition: str = "~"
    escape: str = "\\"
    subcomponent: str = "&"
    truncation: str = NOT_USED
    charset: str = "utf-8"
    _table: dict[int, str] = dataclasses.field(init=False, repr=False, compare=False, hash=False)

    def __post_init__(self) -> None:
        pairs = {
            self.escape: "E",
            self.field: "F",
            self.component: "S",
            self.subcomponent: "T",
            self.repetition: "R",
            self.truncation: "P",
        }
        table = {ord(ch): f"{self.escape}{code}{self.escape}" for ch, code in pairs.items()}
        if self.escape == NOT_USED:
            table = {}
        else:
            table[ord("\r")] = f"{self.escape}X0D{self.escape}"
            table[ord("\n")] = f"{self.escape}X0A{self.escape}"
        object.__setattr__(self, "_table", table)

    @property
    def encoding_characters(self) -> str:
        """MSH-2 as this syntax writes it."""
        chars = (self.component, self.repetition, self.escape, self.subcomponent, self.truncation)
        text = ""
        for ch in chars:
            if ch == NOT_USED:
                break
            text += ch
        return text

    def with_charset(self, charset: str) -> Syntax:
        return Syntax(
            self.field,
            self.component,
            self.repetition,
            self.escape,
            self.subcomponent,
            self.truncation,
            charset,
        )


STANDARD = Syntax()


def escape(text: str, syntax: Syntax = STANDARD) -> str:
    """Escape plain text for one ER7 value (rule 3)."""
    return text.translate(syntax._table)


def unescape(text: str, syntax: Syntax = STANDARD) -> str:
    """The plain text of one ER7 value (rule 2); never raises."""
    esc = syntax.escape
    if esc not in text or esc == NOT_USED:
        return text
    out: list[str] = []
    pos = 0
    while True:
        start = text.find(esc, pos)
        if start < 0:
            out.append(text[pos:])
            break
        end = text.find(esc, start + 1)
        if end < 0:
            out.append(text[pos:])
            break
        out.append(text[pos:start])
        out.append(_sequence(text[start + 1 : end], text[start : end + 1], syntax))
        pos = end + 1
    return "".join(out)


def _sequence(body: str, written: str, syntax: Syntax) -> str:
    simple = {
        "F": syntax.field,
        "S": syntax.component,
        "T": syntax.subcomponent,
        "R": syntax.repetition,
        "E": syntax.escape,
        "P": syntax.truncation,
    }.get(body)
    if simple is not None:
        return simple if simple != NOT_USED else written
    if not body:
        return written
    head = body[0]
    if head == "X":
        return _hex(body[1:], syntax.charset, written)
    if head in "HN" and len(body) == 1:
        return ""
    if head in "CMZ":
        return ""
    if head == ".":
        return _formatting(body, written)
    return written


def _hex(digits: str, charset: str, written: str) -> str:
    try:
        return bytes.fromhex(digits).decode(charset, errors="replace")
    except (ValueError, LookupError):
        return written


def _formatting(body: str, written: str) -> str:
    command, argument = body[:3], body[3:].strip()
    if command in (".br", ".sp"):
        count = int(argument) if argument.isdecimal() else 1
        return "\n" * min(max(count, 1), 100)
    if command == ".sk":
        count = int(argument) if argument.isdecimal() else 1
        return " " * min(count, 100)
    if command in _DROPPED_FORMATTING:
        return ""
    return written
