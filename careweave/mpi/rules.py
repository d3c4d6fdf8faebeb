"""Safety rules that override any score: cannot-link and review-only.

Rules:
1. A *cannot-link* rule says two records are not the same person whatever their score: the pair
   is never linked, and clustering never puts the two records in one person, however many
   other links chain them (:mod:`careweave.mpi.cluster`).
2. A *review-only* rule says the evidence cannot be trusted without a human: the pair is at best
   ``possible`` (the review queue), never ``certain``.
2a. A *margin* rule says the evidence is real but weaker than it looks: the pair is ``certain``
   only with a weight at least :data:`MARGIN_BITS` above the certain threshold, else ``possible``.
3. The rules, their kinds and the texts a reviewer reads are the table :data:`RULES`; a rule's
   code is stable (it is stored with every decision).
4. Which rules fire is decided in :func:`careweave.mpi.compare.compare` from the two records and
   their comparison levels; this module only names them and says what they do.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from types import MappingProxyType

__all__ = [
    "BIRTH_DATES_INCOMPATIBLE",
    "DIFFERENT_VERIFIED_NHS_NUMBERS",
    "FIRST_NAME_DIFFERS",
    "MARGIN_BITS",
    "MULTIPLE_BIRTH_NAME_NOT_EXACT",
    "MULTIPLE_BIRTH_ORDER_DIFFERS",
    "NHS_NUMBER_DEMOGRAPHICS_CONFLICT",
    "PLACEHOLDER_NAME",
    "POSSIBLE_TWINS",
    "RULES",
    "SEX_AND_FIRST_NAME_DIFFER",
    "SEX_DIFFERS",
    "TWINS",
    "UNCORROBORATED",
    "WEAKLY_CORROBORATED",
    "Rule",
    "RuleKind",
    "cannot_link",
    "needs_margin",
    "review_only",
]


class RuleKind(enum.Enum):
    CANNOT_LINK = "cannot-link"  # rule 1
    REVIEW_ONLY = "review-only"  # rule 2
    MARGIN = "margin"  # rule 2a


@dataclass(frozen=True, slots=True)
class Rule:
    code: str
    kind: RuleKind
    text: str


DIFFERENT_VERIFIED_NHS_NUMBERS = "different-verified-nhs-numbers"
BIRTH_DATES_INCOMPATIBLE = "birth-dates-incompatible"
TWINS = "twins"
MULTIPLE_BIRTH_ORDER_DIFFERS = "multiple-birth-order-differs"
SEX_AND_FIRST_NAME_DIFFER = "sex-and-first-name-differ"
PLACEHOLDER_NAME = "placeholder-name"
NHS_NUMBER_DEMOGRAPHICS_CONFLICT = "nhs-number-demographics-conflict"
MULTIPLE_BIRTH_NAME_NOT_EXACT = "multiple-birth-name-not-exact"
FIRST_NAME_DIFFERS = "first-name-differs"
POSSIBLE_TWINS = "possible-twins"
SEX_DIFFERS = "sex-differs"
UNCORROBORATED = "uncorroborated"
WEAKLY_CORROBORATED = "weakly-corroborated"
MARGIN_BITS = 4.0
"""How far above ``certain`` a pair firing a margin rule must weigh (rule 2a): at a million
records the strongest wrong pair corroborated only by a GP practice or postcode district weighed
7.7 bits (strangers of one community: same name, birth date and practice), so 14 leaves 6 bits."""

_C, _R = RuleKind.CANNOT_LINK, RuleKind.REVIEW_ONLY
RULES: Mapping[str, Rule] = MappingProxyType(
    {
        rule.code: rule
        for rule in (
            Rule(
                DIFFERENT_VERIFIED_NHS_NUMBERS,
                _C,
                "Both records carry a verified (01), Modulus 11 valid NHS number and the numbers "
                "differ (neither is the other's superseded number).",
            ),
            Rule(
                BIRTH_DATES_INCOMPATIBLE,
                _C,
                "The birth dates differ by more than a day/month transposition, a 1 January "
                "placeholder or a one-digit slip.",
            ),
            Rule(
                TWINS,
                _C,
                "Same family name and birth date but different first names (not a slip, not a "
                "nickname; names that only sound alike count as different when their first "
                "letters differ, as twins' names often do: Jamal and Kamal): twins or other "
                "children of one multiple birth.",
            ),
            Rule(
                MULTIPLE_BIRTH_ORDER_DIFFERS,
                _C,
                "The records give different birth orders for a multiple birth.",
            ),
            Rule(
                SEX_AND_FIRST_NAME_DIFFER,
                _C,
                "Both the recorded sex and the first name differ: two members of one household "
                "share a surname, an address and a telephone, not a sex and a first name.",
            ),
            Rule(
                PLACEHOLDER_NAME,
                _R,
                'A placeholder name ("Baby of ...", "Unknown", "John Doe") identifies nobody.',
            ),
            Rule(
                NHS_NUMBER_DEMOGRAPHICS_CONFLICT,
                _R,
                "The NHS numbers agree but the first name disagrees and so does the family name "
                "or the sex: the number may be recorded on the wrong person (a relative).",
            ),
            Rule(
                MULTIPLE_BIRTH_NAME_NOT_EXACT,
                _R,
                "One record is of a multiple birth and the first names are not identical: a twin "
                "is easily taken for a typo.",
            ),
            Rule(
                FIRST_NAME_DIFFERS,
                _R,
                "The first names differ: relatives share a surname, an address, a telephone and "
                "sometimes (recorded on the wrong one) an NHS number, so nothing else tells them "
                "apart.",
            ),
            Rule(
                POSSIBLE_TWINS,
                _R,
                "Same family name and birth date (or birth year, one date a 1 January "
                "placeholder), first names alike but not identical, and something more says two "
                "children: different NHS numbers, different sex, names that only sound alike, or "
                "one's first name is the other's middle name.",
            ),
            Rule(
                SEX_DIFFERS,
                _R,
                "The recorded sex differs and the first names are not identical (Sam and "
                "Samantha, Alex and Alexandra are often brother and sister).",
            ),
            Rule(
                WEAKLY_CORROBORATED,
                RuleKind.MARGIN,
                "No NHS number or address agrees; name, birth date and sex are backed only by the "
                "same GP practice or a postcode sector or district. Members of one community share "
                "names, practices and districts, so the weight must clear the certain threshold "
                "by a margin.",
            ),
            Rule(
                UNCORROBORATED,
                _R,
                "No NHS number or address agrees: in a large population strangers share a name, "
                "birth date and sex. Only when first name, family name and birth date are all exact "
                "does one more shared fact corroborate: a telephone or e-mail (often a family's), "
                "or, with the same sex, the same GP practice or the same postcode sector or "
                "district.",
            ),
        )
    }
)


def cannot_link(codes: Iterable[str]) -> bool:
    """True when any of the fired rule codes is a cannot-link rule (rule 1)."""
    return any(RULES[c].kind is RuleKind.CANNOT_LINK for c in codes)


def review_only(codes: Iterable[str]) -> bool:
    """True when any of the fired rule codes is a review-only rule (rule 2)."""
    return any(RULES[c].kind is RuleKind.REVIEW_ONLY for c in codes)


def needs_margin(codes: Iterable[str]) -> bool:
    """True when any of the fired rule codes is a margin rule (rule 2a)."""
    return any(RULES[c].kind is RuleKind.MARGIN for c in codes)
