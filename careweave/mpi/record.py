"""A FHIR R4 Patient reduced to the facts that identify a person: :func:`normalise`.

Rules:
1. Input is a Patient resource as JSON (a dict), UK Core flavoured: the NHS number identifier
   (system ``https://fhir.nhs.uk/Id/nhs-number``) with its NHSNumberVerificationStatus extension
   (codes 01..08), ``name``, ``birthDate``, ``gender``, ``address``, ``telecom`` and
   ``multipleBirth[x]``. Anything else is ignored; nothing is required.
2. Current versus history: a name, address or NHS number whose ``use`` is ``old`` (or ``maiden``
   for names) or whose ``period.end`` is set is history. The current name is the first
   ``official``, else ``usual``, else unmarked, else ``temp`` name; the current address the first
   ``home``, else unmarked, else ``temp``, else ``work`` one. Every name and postcode the resource
   holds, current or not, also goes into the history sets, so history matches cover both.
3. NHS numbers are kept in their ten-digit form with their Modulus 11 validity and verification
   status; a value that is not ten digits (after removing spaces and hyphens) is dropped.
4. Names are folded (:mod:`careweave.mpi.names`). A name given only as ``text`` is split: the last
   token is the family name, the others the given names. A placeholder name (rule 3 there) or an
   ``anonymous`` name sets :attr:`PatientRecord.placeholder`.
5. ``birthDate`` ``YYYY`` is read as 1 January of that year (the PDS convention for "only the year
   is known"); ``YYYY-MM`` is not a birth date we can compare, so it is dropped.
6. ``gender`` other than male and female is no evidence (None). ``multipleBirthInteger`` n gives
   birth order n; ``multipleBirthBoolean`` true gives 0 (a multiple birth, order unknown).
6a. GP practices (``generalPractitioner`` references to an Organization): by ODS code when the
   reference carries the identifier (``ods:<code>``, system :data:`ODS_SYSTEM`), else by the
   literal reference as given. Literal references are only comparable within one namespace: a
   caller holding records of several servers qualifies them first (the identity service does).
7. Pure and idempotent in effect: the record is a frozen value derived only from the resource.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from typing import Any

from careweave.mpi import nhs_number
from careweave.mpi.names import NicknameIndex, fold, is_placeholder, name_key, tokens
from careweave.mpi.postcode import Postcode, parse_postcode
from careweave.mpi.similarity import soundex

__all__ = ["ODS_SYSTEM", "VERIFICATION_STATUS_URL", "VERIFIED", "PatientRecord", "normalise"]

VERIFICATION_STATUS_URL = (
    "https://fhir.hl7.org.uk/StructureDefinition/Extension-UKCore-NHSNumberVerificationStatus"
)
VERIFIED = "01"  # Number present and verified
ODS_SYSTEM = "https://fhir.nhs.uk/Id/ods-organization-code"
_NAME_ORDER = {"official": 0, "usual": 1, None: 2, "temp": 3, "nickname": 4}
_ADDRESS_ORDER = {"home": 0, None: 1, "temp": 2, "work": 3, "billing": 4}
_FLAT_WORDS = frozenset({"flat", "apartment", "apt", "unit", "room", "suite"})
_STREET_WORDS = {
    "rd": "road",
    "st": "street",
    "ave": "avenue",
    "av": "avenue",
    "ln": "lane",
    "cl": "close",
    "dr": "drive",
    "gr": "grove",
    "gro": "grove",
    "cres": "crescent",
    "cr": "crescent",
    "gdns": "gardens",
    "terr": "terrace",
    "ter": "terrace",
    "pl": "place",
    "ct": "court",
    "sq": "square",
    "pk": "park",
}


@dataclass(frozen=True, slots=True)
class PatientRecord:
    """The comparable facts of one Patient (see the module rules). Build with :func:`normalise`."""

    id: str
    nhs_number: str | None
    nhs_status: str | None  # NHSNumberVerificationStatus code, "01" verified
    nhs_valid: bool  # Modulus 11 holds
    nhs_history: frozenset[str]  # superseded or old numbers
    given: tuple[str, ...]  # name keys of the current given names, first name first
    given_tokens: frozenset[str]
    given_soundex: str
    given_groups: frozenset[int]  # nickname groups of the first given name
    given_variants: frozenset[str]  # names sharing a nickname group with the first given name
    family: str  # name key of the current family name
    family_tokens: frozenset[str]
    family_soundex: str
    family_history: frozenset[str]  # keys of every family name held, current included
    placeholder: bool
    birth_date: date | None
    sex: str | None  # "male" | "female"
    postcode: Postcode | None  # of the current address
    address_key: str  # folded first line(s) of the current address
    postcodes: frozenset[str]  # units of every address held, current included
    mobiles: frozenset[str]
    landlines: frozenset[str]
    emails: frozenset[str]
    multiple_birth: int | None  # birth order; 0 = multiple birth, order unknown
    organisation: str | None  # managingOrganization reference
    practices: frozenset[str] = frozenset()  # GP practices (rule 6a)

    @property
    def first_given(self) -> str:
        return self.given[0] if self.given else ""

    @property
    def nhs_verified(self) -> bool:
        """A verified (01), Modulus 11 valid NHS number: the only kind that can be certain."""
        return self.nhs_number is not None and self.nhs_valid and self.nhs_status == VERIFIED


def _ended(element: Mapping[str, Any]) -> bool:
    period = element.get("period")
    return isinstance(period, Mapping) and bool(period.get("end"))


def _is_history(element: Mapping[str, Any], old_uses: tuple[str, ...]) -> bool:
    return element.get("use") in old_uses or _ended(element)


def _pick(elements: list[Mapping[str, Any]], order: Mapping[str | None, int]) -> Mapping[str, Any] | None:
    ranked = [(order[e.get("use")], i) for i, e in enumerate(elements) if e.get("use") in order]
    return elements[min(ranked)[1]] if ranked else None


def _dicts(value: Any) -> list[Mapping[str, Any]]:
    return [v for v in value if isinstance(v, Mapping)] if isinstance(value, list) else []


def _strings(value: Any) -> list[str]:
    return [v for v in value if isinstance(v, str)] if isinstance(value, list) else []


def _status(identifier: Mapping[str, Any]) -> str | None:
    for ext in _dicts(identifier.get("extension")):
        if ext.get("url") == VERIFICATION_STATUS_URL:
            concept = ext.get("valueCodeableConcept")
            if isinstance(concept, Mapping):
                for coding in _dicts(concept.get("coding")):
                    code = coding.get("code")
                    if isinstance(code, str):
                        return code
    return None


def _nhs(patient: Mapping[str, Any]) -> tuple[str | None, str | None, frozenset[str]]:
    current: tuple[str | None, str | None] = (None, None)
    history: set[str] = set()
    for identifier in _dicts(patient.get("identifier")):
        if identifier.get("system") != nhs_number.SYSTEM or not isinstance(identifier.get("value"), str):
            continue
        value = nhs_number.normalise(identifier["value"])
        if value is None:
            continue
        if _is_history(identifier, ("old",)) or current[0] is not None:
            history.add(value)
        else:
            current = (value, _status(identifier))
    history.discard(current[0] or "")
    return current[0], current[1], frozenset(history)


def _name_parts(name: Mapping[str, Any]) -> tuple[list[str], str, str | None]:
    given = _strings(name.get("given"))
    family = name.get("family") if isinstance(name.get("family"), str) else ""
    text = name.get("text") if isinstance(name.get("text"), str) else None
    if not given and not family and text:
        words = text.split()
        given, family = words[:-1], words[-1] if words else ""
    return given, str(family), text


def _names(patient: Mapping[str, Any]) -> tuple[list[str], str, bool, frozenset[str]]:
    names = _dicts(patient.get("name"))
    current_names = [n for n in names if not _is_history(n, ("old", "maiden"))]
    chosen = _pick(current_names, _NAME_ORDER) or (current_names[0] if current_names else None)
    families = {name_key(_name_parts(n)[1]) for n in names}
    if chosen is None:
        return [], "", True, frozenset(families - {""})
    given, family, text = _name_parts(chosen)
    placeholder = chosen.get("use") == "anonymous" or is_placeholder(given, family, text)
    return given, family, placeholder, frozenset(families - {""})


def _birth_date(value: Any) -> date | None:
    if not isinstance(value, str):
        return None
    try:
        if len(value) == 4:
            return date(int(value), 1, 1)
        if len(value) >= 10:
            return date.fromisoformat(value[:10])
    except ValueError:
        return None
    return None


def _address_key(lines: list[str]) -> str:
    folded = [fold(line) for line in lines]
    folded = [f for f in folded if f]
    if not folded:
        return ""
    first = folded[0].split()
    take = folded[:2] if first[0] in _FLAT_WORDS or first[-1].isdigit() else folded[:1]
    words = " ".join(take).split()
    return " ".join(_STREET_WORDS.get(w, w) for w in words)


def _addresses(patient: Mapping[str, Any]) -> tuple[Postcode | None, str, frozenset[str]]:
    addresses = _dicts(patient.get("address"))
    current = [a for a in addresses if not _is_history(a, ("old",))]
    chosen = _pick(current, _ADDRESS_ORDER)
    units: set[str] = set()
    for address in addresses:
        code = address.get("postalCode")
        parsed = parse_postcode(code) if isinstance(code, str) else None
        if parsed is not None:
            units.add(parsed.unit)
    if chosen is None:
        return None, "", frozenset(units)
    code = chosen.get("postalCode")
    postcode = parse_postcode(code) if isinstance(code, str) else None
    return postcode, _address_key(_strings(chosen.get("line"))), frozenset(units)


def _phone(value: str) -> str:
    digits = "".join(c for c in value if c.isdigit())
    if value.strip().startswith("+44") or (digits.startswith("44") and len(digits) == 12):
        digits = "0" + digits[2:]
    return digits


def _telecom(patient: Mapping[str, Any]) -> tuple[frozenset[str], frozenset[str], frozenset[str]]:
    mobiles: set[str] = set()
    landlines: set[str] = set()
    emails: set[str] = set()
    for contact in _dicts(patient.get("telecom")):
        value = contact.get("value")
        if not isinstance(value, str) or not value.strip() or _ended(contact):
            continue
        if contact.get("system") == "email":
            emails.add(value.strip().lower())
        elif contact.get("system") in ("phone", "sms", None):
            number = _phone(value)
            if len(number) >= 10:
                (mobiles if number.startswith("07") else landlines).add(number)
    return frozenset(mobiles), frozenset(landlines), frozenset(emails)


def _multiple_birth(patient: Mapping[str, Any]) -> int | None:
    order = patient.get("multipleBirthInteger")
    if isinstance(order, int) and not isinstance(order, bool) and order > 0:
        return order
    return 0 if patient.get("multipleBirthBoolean") is True else None


def _sex(value: Any) -> str | None:
    return value if value in ("male", "female") else None


def _reference(value: Any) -> str | None:
    if isinstance(value, Mapping) and isinstance(value.get("reference"), str):
        return str(value["reference"])
    return None


def _practices(value: Any) -> frozenset[str]:
    """Rule 6a."""
    out: set[str] = set()
    for ref in _dicts(value):
        identifier = ref.get("identifier")
        if isinstance(identifier, Mapping) and identifier.get("system") == ODS_SYSTEM:
            code = identifier.get("value")
            if isinstance(code, str) and code.strip():
                out.add("ods:" + code.strip().upper())
                continue
        if isinstance(ref.get("reference"), str) and ref["reference"].strip():
            out.add(ref["reference"].strip())
    return frozenset(out)


def normalise(patient: Mapping[str, Any], nicknames: NicknameIndex) -> PatientRecord:
    """The comparable record of a Patient resource (module rules 1-7).

    Raises ValueError when ``patient`` is not a Patient resource with an id.
    """
    if patient.get("resourceType") != "Patient" or not isinstance(patient.get("id"), str):
        raise ValueError("normalise needs a Patient resource with an id")
    number, status, number_history = _nhs(patient)
    given_raw, family_raw, placeholder, families = _names(patient)
    given = tuple(k for k in (name_key(g) for g in given_raw) if k)
    family = name_key(family_raw)
    postcode, address_key, units = _addresses(patient)
    mobiles, landlines, emails = _telecom(patient)
    first = given[0] if given else ""
    return PatientRecord(
        id=patient["id"],
        nhs_number=number,
        nhs_status=status,
        nhs_valid=number is not None and nhs_number.is_valid(number),
        nhs_history=number_history,
        given=given,
        given_tokens=frozenset(t for g in given_raw for t in tokens(g)),
        given_soundex=soundex(first),
        given_groups=nicknames.groups_of(first),
        given_variants=nicknames.variants_of(first),
        family=family,
        family_tokens=frozenset(tokens(family_raw)),
        family_soundex=soundex(family),
        family_history=families | ({family} if family else set()),
        placeholder=placeholder,
        birth_date=_birth_date(patient.get("birthDate")),
        sex=_sex(patient.get("gender")),
        postcode=postcode,
        address_key=address_key,
        postcodes=units,
        mobiles=mobiles,
        landlines=landlines,
        emails=emails,
        multiple_birth=_multiple_birth(patient),
        organisation=_reference(patient.get("managingOrganization")),
        practices=_practices(patient.get("generalPractitioner")),
    )
