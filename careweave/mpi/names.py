"""Personal names made comparable: folding, tokens, placeholders and nickname groups.

Rules:
1. Folding keeps what identifies a name and drops how it was typed: diacritics go (Zoë -> zoe,
   Łukasz -> lukasz, Müller -> muller), letters are lower-cased, apostrophes and full stops vanish
   (O'Brien -> obrien), and hyphens, spaces and other separators split tokens (Anne-Marie ->
   anne, marie). :func:`fold` is idempotent.
2. A name's *key* is its tokens joined without separators (``annemarie``), so Anne-Marie, Anne
   Marie and Annemarie agree exactly; its tokens still match one by one (Jones-Smith vs Smith).
3. A placeholder name is no evidence of identity and never auto-links: "Baby" / "Baby of ..."
   (a newborn registered under the mother's name), "Unknown", "Not known", "John/Jane Doe",
   "Anonymous", "Male"/"Female", "Infant", "Twin 1"... (:func:`is_placeholder`).
4. Nickname groups come from the data table in :mod:`careweave.mpi.nicknames`; a name may sit in
   several groups (Kate: Katherine, Catherine, Kathryn). Two names are nickname-equivalent when
   they share a group. The :class:`NicknameIndex` is built once by the caller and passed in.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from types import MappingProxyType

from careweave.mpi import nicknames

__all__ = [
    "NicknameIndex",
    "fold",
    "is_placeholder",
    "name_key",
    "tokens",
]

_NOT_DECOMPOSING = str.maketrans(
    {
        "ł": "l",
        "ø": "o",
        "đ": "d",
        "ð": "d",
        "þ": "th",
        "ß": "ss",
        "\u0131": "i",
        "æ": "ae",
        "œ": "oe",
        "'": "",
        "\u2019": "",
        "\u2018": "",
        "`": "",
        ".": "",
    }
)
_SEPARATORS = re.compile(r"[^a-z0-9]+")
_PLACEHOLDER_GIVEN = frozenset(
    {
        "baby",
        "babyof",
        "unknown",
        "unk",
        "notknown",
        "nk",
        "infant",
        "newborn",
        "male",
        "female",
        "boy",
        "girl",
        "twin",
        "twin1",
        "twin2",
        "twin3",
        "anonymous",
        "patient",
        "test",
        "xx",
        "xxx",
    }
)
_PLACEHOLDER_FAMILY = frozenset(
    {"unknown", "unk", "notknown", "nk", "doe", "anonymous", "patient", "test", "xx", "xxx", "nfa"}
)
_PLACEHOLDER_TEXT = re.compile(r"^(baby|infant|twin|b o)\b|\bunknown\b|\bnot known\b")


def fold(text: str) -> str:
    """Lower-case ASCII letters and digits, separators as single spaces, trimmed (rule 1)."""
    lowered = text.lower().translate(_NOT_DECOMPOSING)
    if lowered.isascii():
        return _SEPARATORS.sub(" ", lowered).strip()
    decomposed = unicodedata.normalize("NFKD", lowered)
    ascii_only = "".join(c for c in decomposed if not unicodedata.combining(c))
    return _SEPARATORS.sub(" ", ascii_only).strip()


def tokens(text: str) -> tuple[str, ...]:
    """The folded tokens of a name (rule 1): ``"Anne-Marie O'Neill"`` -> anne, marie, oneill."""
    folded = fold(text)
    return tuple(folded.split()) if folded else ()


def name_key(text: str) -> str:
    """The folded tokens joined without separators (rule 2); ``""`` for an empty name."""
    return "".join(tokens(text))


def is_placeholder(given: Iterable[str], family: str, text: str | None = None) -> bool:
    """True for names that identify nobody (rule 3); ``given`` and ``family`` are raw values."""
    if text is not None and _PLACEHOLDER_TEXT.search(fold(text)):
        return True
    given_keys = [name_key(g) for g in given]
    family_key = name_key(family)
    if given_keys and given_keys[0] in _PLACEHOLDER_GIVEN:
        return True
    if family_key in _PLACEHOLDER_FAMILY:
        return True
    return not family_key and not any(given_keys)


@dataclass(frozen=True, slots=True)
class NicknameIndex:
    """Name key -> its nickname groups and the names it shares one with (rule 4). Build with
    :meth:`from_table`."""

    groups: Mapping[str, frozenset[int]]
    variants: Mapping[str, frozenset[str]]

    @classmethod
    def from_table(cls, table: Iterable[str] = nicknames.GROUPS) -> NicknameIndex:
        """Index a table of lines ``"william: bill will billy willy liam"`` (names folded)."""
        index: dict[str, set[int]] = {}
        members: list[set[str]] = []
        for number, line in enumerate(table):
            head, _, rest = line.partition(":")
            keys = {k for k in (name_key(name) for name in (head, *rest.split())) if k}
            members.append(keys)
            for key in keys:
                index.setdefault(key, set()).add(number)
        variants = {
            key: frozenset(name for g in groups for name in members[g] if name != key)
            for key, groups in index.items()
        }
        return cls(
            MappingProxyType({k: frozenset(v) for k, v in index.items()}),
            MappingProxyType(variants),
        )

    def groups_of(self, key: str) -> frozenset[int]:
        """The groups of a folded name key (empty when the name is in no group)."""
        return self.groups.get(key, frozenset())

    def variants_of(self, key: str) -> frozenset[str]:
        """Every other name sharing a group with ``key``."""
        return self.variants.get(key, frozenset())

    def equivalent(self, a: str, b: str) -> bool:
        """True when two folded name keys share a nickname group."""
        return b in self.variants.get(a, ())
