"""The one error FHIRPath raises: bad syntax, unknown functions or types, and evaluation errors."""

from __future__ import annotations

__all__ = ["FhirPathError"]


class FhirPathError(ValueError):
    """A FHIRPath expression could not be compiled or evaluated.

    ``expression`` is the source text (when known) and ``position`` the character offset of the
    problem in it (``-1`` when not tied to a place, as for most evaluation errors).
    """

    def __init__(self, message: str, expression: str = "", position: int = -1) -> None:
        self.message = message
        self.expression = expression
        self.position = position
        where = f" at {position}" if position >= 0 else ""
        text = f" in {expression!r}" if expression else ""
        super().__init__(f"{message}{where}{text}")
