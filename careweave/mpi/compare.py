"""Two records compared field by field: the comparison vector of Fellegi-Sunter, and the rules.

Rules:
1. Each field in :data:`FIELDS` has ordered levels, strongest agreement first, named in
   :data:`LEVELS`; a comparison gives each field one level, or :data:`NULL` when either record
   lacks the field (no evidence either way: a missing value, a placeholder name, an NHS
   pseudo-postcode).
2. Names: given names compare the first given name (exact, nickname group (also with one slip),
   one slip or Jaro-Winkler >= 0.92, Soundex or Jaro-Winkler >= 0.8, an initial or the other's
   middle name), where a *slip* is one edit that keeps the first letter;
   family names add a level for a name in the other record's history (maiden, previous) or one
   part of a compound name (Jones-Smith / Smith). When neither name agrees but a name agrees with
   the other record's opposite name, the names were entered the wrong way round and are compared
   swapped (see :func:`_swapped` for the cautious reading of a half agreement; a swapped first
   name that is a nickname of the other record's reads as a nickname).
3. Birth dates: exact, exact on 1 January (the placeholder date, weaker), day and month
   transposed, 1 January against a real date of the same year, one digit different; anything else
   is incompatible (a cannot-link rule).
4. Addresses compare current postcode and first line, then every postcode either record holds
   (address history), then sector and district of the current postcodes. A landline shared by
   records whose addresses agree is the household again, not new evidence: the phone level is
   then NULL (only a shared mobile counts).
5. NHS numbers: exact with both verified, exact (or one is the other's superseded number), one
   digit or one adjacent transposition apart (Modulus 11 catches both, so one of them is invalid),
   different.
6. :func:`compare` is symmetric in its result: compare(a, b) and compare(b, a) give the same levels,
   values and rules.
7. Corroboration (rule UNCORROBORATED): an agreeing NHS number (exact, superseded or one slip) or
   address (postcode unit, or a postcode in the address history) corroborates a pair. Without
   them, an exact first name, family name and birth date (not the 1 January placeholder, level 1)
   still count when one more fact is shared: a mobile, landline or e-mail; or, with the same
   recorded sex, the same GP practice or the same postcode sector or district (a move nearby),
   which also corroborates when one of the two names is only close (a nickname, one slip, a name
   from the other's history or one part of a compound name) and the other exact. Those last
   corroborations are weak (rule WEAKLY_CORROBORATED, a margin rule): the weight must clear
   ``certain`` by :data:`careweave.mpi.rules.MARGIN_BITS`.
   The weight must still reach ``certain``: rare names weigh more than common ones (term
   frequencies), so a common name with only these agreements stays in review.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

from careweave.mpi import rules as r
from careweave.mpi.record import PatientRecord
from careweave.mpi.similarity import jaro_winkler, within_one_edit

__all__ = ["FIELDS", "LEVELS", "NULL", "Comparison", "compare"]

NULL = -1
FIELDS = ("nhs_number", "given_name", "family_name", "birth_date", "sex", "address", "phone", "email")
LEVELS: Mapping[str, tuple[str, ...]] = MappingProxyType(
    {
        "nhs_number": ("exact, both verified", "exact", "one digit or transposition", "different"),
        "given_name": (
            "exact",
            "nickname",
            "one edit or Jaro-Winkler >= 0.92",
            "Soundex or Jaro-Winkler >= 0.8",
            "initial or middle name",
            "different",
        ),
        "family_name": (
            "exact",
            "name history or part of a compound name",
            "one edit or Jaro-Winkler >= 0.92",
            "Soundex or Jaro-Winkler >= 0.8",
            "different",
        ),
        "birth_date": (
            "exact",
            "exact, 1 January",
            "day and month transposed",
            "1 January placeholder, same year",
            "one digit different",
            "incompatible",
        ),
        "sex": ("same", "different"),
        "address": (
            "same postcode and first line",
            "same postcode",
            "postcode in address history",
            "same postcode sector",
            "same postcode district",
            "different",
        ),
        "phone": ("same mobile", "same landline", "different"),
        "email": ("same", "different"),
    }
)
# name similarity classes (rule 2): exact, close, similar, different
_EXACT, _CLOSE, _SIMILAR, _DIFFERENT = 0, 1, 2, 3
_GIVEN_OF = (0, 2, 3, 5)
_FAMILY_OF = (0, 2, 3, 4)
_GIVEN_DIFFERENT = 5
_FAMILY_DIFFERENT = 4
_DOB_INCOMPATIBLE = 5
# name particles shared by unrelated compound names (De Silva, Van der Berg): no evidence alone
_PARTICLES = frozenset(
    {"de", "da", "di", "do", "dos", "del", "della", "van", "von", "der", "den", "le", "la", "el", "al", "bin",
     "bint", "ben", "ap", "st", "o", "mac", "mc"}
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class Comparison:
    """The comparison vector of one pair: a level per field (NULL for no evidence), the values
    agreed on exactly (for term-frequency adjustment) and the rules that fired."""

    levels: tuple[int, ...]  # in FIELDS order
    given_value: str  # the first given name agreed on exactly, else ""
    family_value: str  # the family name (or shared former name or part) agreed on, else ""
    swapped: bool  # names compared swapped (rule 2)
    rules: tuple[str, ...]  # codes of careweave.mpi.rules.RULES, sorted


def _slip(x: str, y: str) -> bool:
    """One edit that keeps the first letter (people rarely get the first letter wrong; twins
    often differ only there: Jamal and Kamal, Ella and Bella)."""
    return x[:1] == y[:1] and within_one_edit(x, y)


def _similarity(x: str, y: str, sx: str, sy: str) -> int:
    if x == y:
        return _EXACT
    jw = jaro_winkler(x, y)
    if jw >= 0.92 or _slip(x, y):
        return _CLOSE
    if jw >= 0.8 or sx == sy:
        return _SIMILAR
    return _DIFFERENT


def _given(a: PatientRecord, b: PatientRecord) -> int:
    x, y = a.first_given, b.first_given
    if not x or not y or a.placeholder or b.placeholder:
        return NULL
    if x == y or "".join(a.given[:2]) == y or "".join(b.given[:2]) == x:
        return 0
    if y in a.given_variants or any(_slip(y, v) for v in a.given_variants):
        return 1
    if any(_slip(x, v) for v in b.given_variants):
        return 1
    level = _GIVEN_OF[_similarity(x, y, a.given_soundex, b.given_soundex)]
    if level < _GIVEN_DIFFERENT:
        return level
    if x in b.given[1:] or y in a.given[1:] or ((len(x) == 1 or len(y) == 1) and x[0] == y[0]):
        return 4
    return _GIVEN_DIFFERENT


def _family(a: PatientRecord, b: PatientRecord) -> tuple[int, str]:
    """The family level and the name agreed on (for term frequencies), rule 2."""
    x, y = a.family, b.family
    if not x or not y:
        return NULL, ""
    if x == y:
        return 0, x
    shared = a.family_history & b.family_history
    if shared:
        return 1, min(shared)
    if len(a.family_tokens) > 1 or len(b.family_tokens) > 1:
        common = (a.family_tokens & b.family_tokens) - _PARTICLES
        if common:
            return 1, min(common)
    return _FAMILY_OF[_similarity(x, y, a.family_soundex, b.family_soundex)], ""


def _swapped(a: PatientRecord, b: PatientRecord) -> tuple[int, int, str, str] | None:
    """Given and family levels (and exact values) with the names swapped, when that fits
    (rule 2). Symmetric and cautious: the worse cross comparison is the given level, the better
    the family level, so a swap that only half agrees (one name in the other's opposite field)
    reads as a shared surname with different first names, the twins' pattern, never as an
    agreeing first name."""
    if not (a.first_given and a.family and b.first_given and b.family):
        return None
    one = _similarity(a.first_given, b.family, a.given_soundex, b.family_soundex)
    two = _similarity(a.family, b.first_given, a.family_soundex, b.given_soundex)
    if min(one, two) > _CLOSE:
        return None
    exact = sorted(v for v, level in ((a.first_given, one), (a.family, two)) if level == _EXACT)
    given_value = exact[0] if len(exact) == 2 else ""
    family_value = exact[-1] if exact else ""
    given = _GIVEN_OF[max(one, two)]
    if min(one, two) == _EXACT and (b.family in a.given_variants or a.family in b.given_variants):
        given = 1  # one name exact, the other a nickname of it (Jennifer Reed / Reed Jenny)
    return given, _FAMILY_OF[min(one, two)], given_value, family_value


def _dob_digits(x: str, y: str) -> bool:
    diff = [i for i in range(len(x)) if x[i] != y[i]]
    if len(diff) == 1:
        return True
    return len(diff) == 2 and diff[1] == diff[0] + 1 and x[diff[0]] == y[diff[1]] and x[diff[1]] == y[diff[0]]


def _birth_date(a: PatientRecord, b: PatientRecord) -> int:
    x, y = a.birth_date, b.birth_date
    if x is None or y is None:
        return NULL
    if x == y:
        return 1 if (x.month, x.day) == (1, 1) else 0
    if x.year == y.year:
        if x.month == y.day and x.day == y.month:
            return 2
        if (x.month, x.day) == (1, 1) or (y.month, y.day) == (1, 1):
            return 3
    if _dob_digits(x.strftime("%Y%m%d"), y.strftime("%Y%m%d")):
        return 4
    return _DOB_INCOMPATIBLE


def _nhs(a: PatientRecord, b: PatientRecord) -> int:
    x, y = a.nhs_number, b.nhs_number
    if x is None or y is None:
        return NULL
    if x == y:
        return 0 if a.nhs_verified and b.nhs_verified else 1
    if x in b.nhs_history or y in a.nhs_history:
        return 1
    if not (a.nhs_valid and b.nhs_valid) and _dob_digits(x, y):
        return 2
    return 3


def _address(a: PatientRecord, b: PatientRecord) -> int:
    if not a.postcodes or not b.postcodes:
        return NULL
    pa, pb = a.postcode, b.postcode
    if pa is not None and pb is not None and pa.unit == pb.unit:
        return 0 if a.address_key and a.address_key == b.address_key else 1
    if not a.postcodes.isdisjoint(b.postcodes):
        return 2
    if pa is not None and pb is not None:
        if pa.sector == pb.sector:
            return 3
        if pa.district == pb.district:
            return 4
    return 5


def _phone(a: PatientRecord, b: PatientRecord, address: int) -> int:
    if not (a.mobiles or a.landlines) or not (b.mobiles or b.landlines):
        return NULL
    if not a.mobiles.isdisjoint(b.mobiles):
        return 0
    if not a.landlines.isdisjoint(b.landlines):
        return NULL if 0 <= address <= 2 else 1
    return 2


def _email(a: PatientRecord, b: PatientRecord) -> int:
    if not a.emails or not b.emails:
        return NULL
    return 1 if a.emails.isdisjoint(b.emails) else 0


def _sex(a: PatientRecord, b: PatientRecord) -> int:
    if a.sex is None or b.sex is None:
        return NULL
    return 0 if a.sex == b.sex else 1


def _twin_signs(nhs: int, given: int, sex: int, dob: int) -> bool:
    """Alike first names that still look like two children of one birth (rule POSSIBLE_TWINS)."""
    strong = nhs == 3 or sex == 1 or given >= 3
    return dob in (0, 1, 3) and strong


def _corroboration(a: PatientRecord, b: PatientRecord, levels: tuple[int, ...]) -> str | None:
    """The corroboration rule a pair fires (rule 7): None when an NHS number, an address or a
    contact detail corroborates; WEAKLY_CORROBORATED when only a GP practice or postcode
    district does; UNCORROBORATED when nothing does."""
    nhs, given, family, dob, sex, address, phone, email = levels
    if nhs in (0, 1, 2) or address in (0, 1, 2):
        return None
    if dob != 0 or given not in (0, 1, 2) or family not in (0, 1, 2):
        return r.UNCORROBORATED
    exact = given == 0 and family == 0
    if exact and (phone in (0, 1) or email == 0):
        return None
    nearby = (address in (3, 4) or not a.practices.isdisjoint(b.practices)) and sex == 0
    if nearby and (exact or (given == 0) != (family == 0)):
        return r.WEAKLY_CORROBORATED
    return r.UNCORROBORATED


def _rules(a: PatientRecord, b: PatientRecord, levels: tuple[int, ...], swapped: bool) -> tuple[str, ...]:
    nhs, given, family, dob, sex = levels[:5]
    fired: list[str] = []
    if a.nhs_verified and b.nhs_verified and nhs in (2, 3):
        fired.append(r.DIFFERENT_VERIFIED_NHS_NUMBERS)
    if dob == _DOB_INCOMPATIBLE:
        fired.append(r.BIRTH_DATES_INCOMPATIBLE)
    unlike = given == _GIVEN_DIFFERENT or (given == 3 and a.first_given[:1] != b.first_given[:1])
    if not swapped and unlike and family in (0, 1, 2) and dob in (0, 1):
        fired.append(r.TWINS)
    mx, my = a.multiple_birth, b.multiple_birth
    if mx and my and mx != my:
        fired.append(r.MULTIPLE_BIRTH_ORDER_DIFFERS)
    if sex == 1 and given == _GIVEN_DIFFERENT:
        fired.append(r.SEX_AND_FIRST_NAME_DIFFER)
    if a.placeholder or b.placeholder:
        fired.append(r.PLACEHOLDER_NAME)
    if nhs in (0, 1) and given == _GIVEN_DIFFERENT and (family >= 3 or sex == 1):
        fired.append(r.NHS_NUMBER_DEMOGRAPHICS_CONFLICT)
    if (mx is not None or my is not None) and given != 0 and not (a.placeholder or b.placeholder):
        fired.append(r.MULTIPLE_BIRTH_NAME_NOT_EXACT)
    if given == _GIVEN_DIFFERENT:
        fired.append(r.FIRST_NAME_DIFFERS)
    if 1 <= given <= 4 and family in (0, 1, 2) and _twin_signs(nhs, given, sex, dob):
        fired.append(r.POSSIBLE_TWINS)
    if sex == 1 and given not in (NULL, 0, _GIVEN_DIFFERENT):
        fired.append(r.SEX_DIFFERS)
    corroboration = _corroboration(a, b, levels)
    if corroboration is not None:
        fired.append(corroboration)
    return tuple(sorted(fired))


def compare(a: PatientRecord, b: PatientRecord) -> Comparison:
    """The comparison vector and fired rules of a pair (module rules 1-6)."""
    given = _given(a, b)
    family, family_value = _family(a, b)
    given_value = a.first_given if given == 0 and a.first_given == b.first_given else ""
    swapped = False
    if given >= 3 and family >= 3 and not (a.placeholder or b.placeholder):
        found = _swapped(a, b)
        if found is not None:
            given, family, given_value, family_value = found
            swapped = True
    address = _address(a, b)
    levels = (
        _nhs(a, b),
        given,
        family,
        _birth_date(a, b),
        _sex(a, b),
        address,
        _phone(a, b, address),
        _email(a, b),
    )
    return Comparison(levels, given_value, family_value, swapped, _rules(a, b, levels, swapped))
