"""UK postcodes as matching evidence: normal form, levels, and NHS pseudo-postcodes.

Rules:
1. The normal form is upper case with one space before the three-character inward code
   (``ls64qt`` -> ``LS6 4QT``). Anything that does not then look like a postcode (the BS 7666
   shapes, ``GIR 0AA``, or an NHS pseudo-postcode) is no postcode at all.
2. Levels, finest first: the *unit* (the whole postcode, about 15 households), the *sector*
   (outward code and the inward digit, ``LS6 4``), the *district* (the outward code, ``LS6``).
3. NHS pseudo-postcodes (``ZZ99`` then a digit and two letters: ``ZZ99 3VZ`` no fixed abode,
   ``ZZ99 3WZ`` not known, ``ZZ99 3CZ`` England not otherwise stated, country codes for
   overseas visitors) identify nobody: they are no evidence, never an agreement.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = ["Postcode", "is_pseudo", "normalise_postcode", "parse_postcode"]

_SHAPE = re.compile(
    r"^(GIR 0AA|(?:[A-PR-UWYZ][0-9][0-9]?|[A-PR-UWYZ][A-HK-Y][0-9][0-9]?|[A-PR-UWYZ][0-9][A-HJKPSTUW]"
    r"|[A-PR-UWYZ][A-HK-Y][0-9][ABEHMNPRVWXY]) [0-9][ABD-HJLNP-UW-Z]{2})$"
)
_PSEUDO = re.compile(r"^ZZ99 [0-9][A-Z]{2}$")


def normalise_postcode(value: str) -> str | None:
    """The normal form of rule 1, or None when ``value`` is no postcode. Idempotent."""
    compact = "".join(value.split()).upper()
    if len(compact) < 5:
        return None
    spaced = f"{compact[:-3]} {compact[-3:]}"
    if _SHAPE.match(spaced) or _PSEUDO.match(spaced):
        return spaced
    return None


def is_pseudo(normal: str) -> bool:
    """True for an NHS pseudo-postcode in normal form (rule 3)."""
    return _PSEUDO.match(normal) is not None


@dataclass(frozen=True, slots=True)
class Postcode:
    """A real postcode split into its levels (rule 2)."""

    unit: str  # "LS6 4QT"
    sector: str  # "LS6 4"
    district: str  # "LS6"


def parse_postcode(value: str) -> Postcode | None:
    """The levels of a real postcode; None for no postcode or a pseudo-postcode (rule 3)."""
    normal = normalise_postcode(value)
    if normal is None or is_pseudo(normal):
        return None
    outward, inward = normal.split(" ")
    return Postcode(unit=normal, sector=f"{outward} {inward[0]}", district=outward)
