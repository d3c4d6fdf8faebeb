"""The one error the HL7 v2 layers raise, and where in a message it points.

Rules:
1. Parsing, header checks and mapping raise only :class:`Hl7v2Error`; nothing else escapes them
   for any input (a fuzz test holds this).
2. An error carries an HL7 table 0357 code (``ERR-3``), a careweave :class:`Category` (which the
   ACK builder turns into AE or AR in one table) and, where known, a :class:`Location`
   (``ERR-2``: segment, occurrence, field, repetition, component, sub-component).
3. Errors in the header, or about what the message is (type, version, processing id, character
   set), carry ``Category.UNSUPPORTED_MEDIA``, which the ACK table answers with AR; errors in the
   content carry ``Category.INVALID`` (AE).
4. This module imports only :mod:`careweave.errors`.
"""

from __future__ import annotations

from dataclasses import dataclass

from careweave.errors import Category

__all__ = ["Hl7v2Error", "Location"]


@dataclass(frozen=True, slots=True)
class Location:
    """Where an error is (HL7 ERL data type); numbers are 1-based, 0 means "not known"."""

    segment: str
    sequence: int = 1
    field: int = 0
    repetition: int = 0
    component: int = 0
    subcomponent: int = 0

    def __str__(self) -> str:
        text = self.segment if self.sequence <= 1 else f"{self.segment}[{self.sequence}]"
        parts = (self.field, self.component, self.subcomponent)
        if self.field:
            text += f"-{self.field}"
            if self.repetition > 1:
                text += f"({self.repetition})"
            text += "".join(f".{p}" for p in parts[1:] if p)
        return text


@dataclass(eq=False)
class Hl7v2Error(Exception):
    """A message that cannot be read, checked or mapped.

    ``code`` is an HL7 table 0357 code (``"100"`` segment sequence error, ``"101"`` required field
    missing, ``"102"`` data type error, ``"103"`` table value not found, ``"200"`` unsupported
    message type, ``"201"`` unsupported event, ``"202"`` unsupported processing id, ``"203"``
    unsupported version, ``"207"`` application error, ``"199"`` other).
    """

    diagnostics: str
    code: str = "199"
    category: Category = Category.INVALID
    location: Location | None = None

    def __post_init__(self) -> None:
        super().__init__(self.diagnostics)

    def __str__(self) -> str:
        where = f" at {self.location}" if self.location else ""
        return f"HL7 v2 error {self.code}{where}: {self.diagnostics}"

    @property
    def rejects_header(self) -> bool:
        """True when the message was refused for what it is, not for its content (rule 3)."""
        return self.category is Category.UNSUPPORTED_MEDIA
