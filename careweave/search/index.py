"""Index rows: the searchable values extracted from one resource, per search parameter type.

Rules:
1. Rows name their parameter by a stable key (``"Patient.identifier"``: base type, dot, code);
   a backend maps keys to its own storage ids. Nothing here knows about a database.
2. Strings are stored normalised (case- and accent-folded) beside the exact text; dates, numbers and
   quantities as half-open ranges ``[lo, hi)`` so that the spec's range semantics are comparisons.
"""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["IndexRows"]


@dataclass(slots=True)
class IndexRows:
    """Everything one resource version contributes to the search indexes."""

    tokens: list[tuple[str, str | None, str | None]] = field(default_factory=list)
    # (param, system or None, code or None)
    token_texts: list[tuple[str, str]] = field(default_factory=list)
    # (param, normalised display/text) for :text
    strings: list[tuple[str, str, str]] = field(default_factory=list)
    # (param, normalised, exact)
    references: list[tuple[str, str | None, str | None, str | None]] = field(default_factory=list)
    # (param, target type, target id, absolute url or canonical or None)
    dates: list[tuple[str, int, int]] = field(default_factory=list)
    # (param, lo ms inclusive, hi ms exclusive)
    numbers: list[tuple[str, float, float]] = field(default_factory=list)
    # (param, lo, hi)
    quantities: list[tuple[str, str | None, str | None, float, float]] = field(default_factory=list)
    # (param, system, code, lo, hi)
    uris: list[tuple[str, str]] = field(default_factory=list)
    # (param, uri)
    composites: list[tuple[str, str]] = field(default_factory=list)
    # (param, encoded tuple of component values)
    text: str = ""  # _text (narrative) as plain text
    content: str = ""  # _content (all string values) as plain text

    def count(self) -> int:
        return (
            len(self.tokens)
            + len(self.token_texts)
            + len(self.strings)
            + len(self.references)
            + len(self.dates)
            + len(self.numbers)
            + len(self.quantities)
            + len(self.uris)
            + len(self.composites)
        )
