"""What one organisation recorded about a person: the truth, bent by realistic data-entry errors.

Rules:
1. Each discrepancy is rolled independently with its configured rate, but only where it can
   apply (config rule 3); the applied ones are listed on the :class:`Recorded` value in a fixed
   order, which is the ground truth.
2. Where two discrepancies exclude each other, the first in this order wins and only it is
   recorded: NHS number missing > transposed > another valid number; a day/month swap > a
   1 January placeholder.
3. A transposed NHS number swaps two adjacent, different digits among digits 4-9 (the 999 prefix
   stays), which always breaks Modulus 11. "Another valid number" is a relative's (mix-ups within a family) or
   an unused number from the 999 block.
4. NHS number verification status (UK Core, England codes): a correct number is usually ``01``
   (verified), sometimes ``02``/``03``; a newborn's is ``08`` (trace postponed); a wrong number is
   ``02``, ``04`` or ``05``, or, at the ``verified_wrong`` rate, a hazardous ``01``.
"""

from __future__ import annotations

import random
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import date

from careweave.generate import places
from careweave.generate.config import DiscrepancyRates
from careweave.generate.model import Discrepancy, Organisation, OrgKind, Person, Recorded
from careweave.generate.names import NICKNAMES

__all__ = ["RecordContext", "fold_ascii", "record", "typo"]

D = Discrepancy
_KEY_ROWS = ("qwertyuiop", "asdfghjkl", "zxcvbnm")
_NOT_DECOMPOSING = str.maketrans(
    {
        "Ł": "L",
        "ł": "l",
        "Ø": "O",
        "ø": "o",
        "Đ": "D",
        "đ": "d",
        "ß": "ss",
        "\u0131": "i",
        "Æ": "AE",
        "æ": "ae",
    }
)


@dataclass(frozen=True, slots=True)
class RecordContext:
    rates: DiscrepancyRates
    relatives_numbers: tuple[str, ...]  # other household members' NHS numbers
    spare_number: Callable[[], str]  # an unused valid 999-block number


def _neighbours(letter: str) -> str:
    for r, row in enumerate(_KEY_ROWS):
        c = row.find(letter)
        if c >= 0:
            near = row[max(0, c - 1) : c] + row[c + 1 : c + 2]
            for other in (r - 1, r + 1):
                if 0 <= other < len(_KEY_ROWS):
                    near += _KEY_ROWS[other][max(0, c - 1) : c + 1]
            return near
    return ""


def typo(rng: random.Random, word: str) -> str:
    """One keyboard slip: an adjacent key, two letters transposed, one dropped or doubled."""
    if len(word) < 3:
        return word + word[-1:]
    for _ in range(10):
        i = rng.randrange(1, len(word))  # people rarely get the first letter wrong
        kind = rng.randrange(4)
        if kind == 0 and (near := _neighbours(word[i].lower())):
            slip = rng.choice(near)
            result = word[:i] + (slip.upper() if word[i].isupper() else slip) + word[i + 1 :]
        elif kind == 1 and i < len(word) - 1:
            result = word[:i] + word[i + 1] + word[i] + word[i + 2 :]
        elif kind == 2:
            result = word[:i] + word[i + 1 :]
        else:
            result = word[:i] + word[i] + word[i:]
        if result != word and result.strip(" -'"):
            return result
    return word + word[-1]


def fold_ascii(text: str) -> str:
    """Diacritics removed (Zoë -> Zoe, Łukasz -> Lukasz)."""
    decomposed = unicodedata.normalize("NFKD", text.translate(_NOT_DECOMPOSING))
    return "".join(c for c in decomposed if not unicodedata.combining(c))


def _punctuation_variant(rng: random.Random, text: str) -> str | None:
    options: list[str] = []
    if not text.isascii():
        options.append(fold_ascii(text))
    for mark in ("-", "'", " "):
        if mark in text:
            options.append(text.replace(mark, ""))
            options.append(text.replace(mark, " " if mark != " " else "-"))
    options = [o for o in options if o != text]
    return rng.choice(options) if options else None


def _transpose(rng: random.Random, number: str) -> str | None:
    positions = [i for i in range(3, 8) if number[i] != number[i + 1]]  # keep the 999 prefix
    if not positions:
        return None
    i = rng.choice(positions)
    return number[:i] + number[i + 1] + number[i] + number[i + 2 :]


def record(
    rng: random.Random,
    person: Person,
    org: Organisation,
    since: date,
    ctx: RecordContext,
    forced: frozenset[Discrepancy] = frozenset(),
) -> Recorded:
    """The demographics ``org`` holds for ``person`` (rules 1-4)."""
    rates = ctx.rates
    applied: list[Discrepancy] = []

    def roll(kind: Discrepancy, rate: float) -> bool:
        if kind in forced or rng.random() < rate:
            applied.append(kind)
            return True
        return False

    rec = _truth(rng, person, org, since)
    newborn = person.mother_name is not None and (since - person.birth_date).days < 42
    if newborn and org.kind is OrgKind.TRUST and roll(D.BABY_PLACEHOLDER, rates.baby_placeholder):
        mother_given, mother_family = person.mother_name or ("", "")
        rec = replace(
            rec, given=("Baby",), family=mother_family, name_text=f"Baby of {mother_given} {mother_family}"
        )
    else:
        rec = _names(rng, rec, person, rates, roll)
    rec = _birth_date(rec, rates, roll)
    rec = _address(rec, person, since, rates, roll)
    rec = _nhs_number(rng, rec, person, org, ctx, roll, newborn)
    return replace(rec, discrepancies=tuple(d for d in Discrepancy if d in applied))


def _truth(rng: random.Random, person: Person, org: Organisation, since: date) -> Recorded:
    gp = org.kind is OrgKind.GP
    keeps_maiden = person.birth_family is not None and rng.random() < (0.3 if gp else 0.1)
    return Recorded(
        given=person.given if rng.random() < (0.9 if gp else 0.6) else person.given[:1],
        family=person.family,
        name_text=None,
        maiden_family=person.birth_family if keeps_maiden else None,
        sex=person.sex,
        birth_date=person.birth_date,
        nhs_number=person.nhs_number,
        verification=None,
        address=person.address,
        phone=person.landline if rng.random() < 0.8 else None,
        mobile=person.mobile if rng.random() < 0.9 else None,
        email=person.email if gp and rng.random() < 0.6 else None,
        discrepancies=(),
    )


Roll = Callable[[Discrepancy, float], bool]


def _names(
    rng: random.Random, rec: Recorded, person: Person, rates: DiscrepancyRates, roll: Roll
) -> Recorded:
    given, family = list(rec.given), rec.family
    if person.birth_family is not None and roll(D.MAIDEN_NAME, rates.maiden_name):
        family = person.birth_family
        rec = replace(rec, maiden_family=None)
    if given[0] in NICKNAMES and roll(D.NICKNAME, rates.nickname):
        given[0] = rng.choice(NICKNAMES[given[0]])
    fixable = [
        (k, v)
        for k, text in (("given", given[0]), ("family", family))
        if (v := _punctuation_variant(rng, text)) is not None
    ]
    if fixable and roll(D.NAME_PUNCTUATION, rates.name_punctuation):
        part, value = rng.choice(fixable)
        if part == "given":
            given[0] = value
        else:
            family = value
    if roll(D.NAME_TYPO, rates.name_typo):
        if rng.random() < 0.6:
            family = typo(rng, family)
        else:
            given[0] = typo(rng, given[0])
    if roll(D.NAME_SWAP, rates.name_swap):
        given[0], family = family, given[0]
    return replace(rec, given=tuple(given), family=family)


def _birth_date(rec: Recorded, rates: DiscrepancyRates, roll: Roll) -> Recorded:
    born = rec.birth_date
    if born.day <= 12 and born.day != born.month and roll(D.DOB_SWAPPED, rates.dob_swapped):
        return replace(rec, birth_date=date(born.year, born.day, born.month))
    if (born.month, born.day) != (1, 1) and roll(D.DOB_PLACEHOLDER, rates.dob_placeholder):
        return replace(rec, birth_date=date(born.year, 1, 1))
    return rec


def _address(rec: Recorded, person: Person, since: date, rates: DiscrepancyRates, roll: Roll) -> Recorded:
    if person.previous_address is not None and roll(D.OLD_ADDRESS, rates.old_address):
        return replace(rec, address=person.previous_address)
    if (since - person.birth_date).days >= 18 * 365 and roll(D.NO_FIXED_ABODE, rates.no_fixed_abode):
        return replace(rec, address=places.NO_FIXED_ABODE, phone=None)
    return rec


def _nhs_number(
    rng: random.Random,
    rec: Recorded,
    person: Person,
    org: Organisation,
    ctx: RecordContext,
    roll: Roll,
    newborn: bool,
) -> Recorded:
    rates = ctx.rates
    if roll(D.NHS_MISSING, rates.nhs_missing):
        return replace(rec, nhs_number=None, verification=None)
    wrong: str | None = None
    transposed = _transpose(rng, person.nhs_number)
    if transposed is not None and roll(D.NHS_TRANSPOSED, rates.nhs_transposed):
        wrong = transposed
    elif roll(D.NHS_OTHER, rates.nhs_other):
        relatives = ctx.relatives_numbers
        wrong = rng.choice(relatives) if relatives and rng.random() < 0.5 else ctx.spare_number()
    if wrong is not None:
        status = "01" if rng.random() < rates.verified_wrong else rng.choice(("02", "04", "05"))
        return replace(rec, nhs_number=wrong, verification=status)
    if newborn and org.kind is OrgKind.TRUST:
        return replace(rec, verification="08")
    roll_status = rng.random()
    if org.kind is OrgKind.GP:
        status = "01" if roll_status < 0.95 else "02"
    else:
        status = "01" if roll_status < 0.85 else "02" if roll_status < 0.95 else "03"
    return replace(rec, verification=status)
