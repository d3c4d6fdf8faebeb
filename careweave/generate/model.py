"""The generator's value types: real people, organisations, and what each organisation recorded.

Rules:
1. A :class:`Person` is the truth (one real human). A :class:`Recorded` is one organisation's
   copy of that person's demographics, possibly wrong; the list of :class:`Discrepancy` codes on it
   says exactly how it differs from the truth. The ground-truth file is built from these.
2. All values are frozen; the generator builds new ones rather than mutating.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import date

__all__ = [
    "Address",
    "Allergy",
    "ChronicCondition",
    "Discrepancy",
    "OrgKind",
    "Organisation",
    "Person",
    "Practitioner",
    "Recorded",
    "Registration",
]


class Discrepancy(enum.Enum):
    """How one organisation's record of a person differs from the truth (ground-truth codes)."""

    NAME_TYPO = "name-typo"  # keyboard slip, transposition, dropped or doubled letter
    NICKNAME = "nickname"  # Bill for William, Peggy for Margaret
    NAME_SWAP = "name-swap"  # given and family names exchanged
    MAIDEN_NAME = "maiden-name"  # still holds the surname from before marriage
    OLD_ADDRESS = "old-address"  # still holds the address from before a move
    NO_FIXED_ABODE = "no-fixed-abode"  # ZZ99 3VZ pseudo-postcode
    NHS_MISSING = "nhs-number-missing"
    NHS_TRANSPOSED = "nhs-number-transposed"  # adjacent digits swapped: fails Modulus 11
    NHS_OTHER = "nhs-number-other"  # a different valid number (a relative's or an unused one)
    DOB_SWAPPED = "dob-day-month-swapped"
    DOB_PLACEHOLDER = "dob-first-january"  # only the year was known
    BABY_PLACEHOLDER = "baby-placeholder"  # "Baby of <mother>" newborn registration
    NAME_PUNCTUATION = "name-punctuation"  # accents or hyphens/apostrophes lost or changed
    DUPLICATE = "duplicate-record"  # a second record for the person at the same organisation
    MERGED = "merged-duplicate"  # a duplicate the organisation has merged (A40, Patient.link)


class OrgKind(enum.Enum):
    TRUST = "trust"
    GP = "gp-practice"


@dataclass(frozen=True, slots=True)
class Address:
    lines: tuple[str, ...]
    city: str
    district: str
    postcode: str


@dataclass(frozen=True, slots=True)
class ChronicCondition:
    key: str  # a key of codes.CHRONIC
    onset: date


@dataclass(frozen=True, slots=True)
class Allergy:
    key: str  # a key of codes.ALLERGIES
    onset: date


@dataclass(frozen=True, slots=True)
class Person:
    """One real human: the truth every registration is measured against."""

    person_id: str
    household_id: str
    given: tuple[str, ...]  # first name, then middle names
    family: str
    birth_family: str | None  # surname at birth when it has changed (marriage)
    sex: str  # "male" | "female"
    birth_date: date
    ethnicity: str  # NHS Data Dictionary ethnic category code (A..S)
    nhs_number: str
    address: Address
    previous_address: Address | None  # before the most recent move
    moved_on: date | None
    region: str  # a key of places.REGIONS
    landline: str | None
    mobile: str | None
    email: str | None
    multiple_birth: int | None  # birth order for twins, else None
    mother_name: tuple[str, str] | None  # (given, family) for "Baby of" placeholders
    deceased: date | None
    conditions: tuple[ChronicCondition, ...]
    allergies: tuple[Allergy, ...]


@dataclass(frozen=True, slots=True)
class Practitioner:
    id: str
    role_id: str  # the PractitionerRole at the organisation
    gmc: str
    given: str
    family: str
    sex: str
    specialty: str  # a key of codes.SPECIALTIES


@dataclass(frozen=True, slots=True)
class Organisation:
    id: str
    code: str  # ODS-style
    name: str
    kind: OrgKind
    region: str
    mrn_system: str
    mrn_prefix: str
    mrn_digits: int
    address: Address
    phone: str
    practitioners: tuple[Practitioner, ...]


@dataclass(frozen=True, slots=True)
class Recorded:
    """One organisation's copy of a person's demographics, discrepancies included."""

    given: tuple[str, ...]
    family: str
    name_text: str | None  # set for "Baby of" placeholders
    maiden_family: str | None  # a former surname the organisation also keeps (name.use=maiden)
    sex: str
    birth_date: date
    nhs_number: str | None
    verification: str | None  # NHSNumberVerificationStatusEngland code 01..08
    address: Address
    phone: str | None
    mobile: str | None
    email: str | None
    discrepancies: tuple[Discrepancy, ...]


@dataclass(frozen=True, slots=True)
class Registration:
    """A person's record at one organisation: one FHIR Patient resource."""

    patient_id: str
    person: Person
    org: Organisation
    mrn: str
    recorded: Recorded
    since: date  # first contact with the organisation
    gp: Organisation | None  # the person's GP practice, for Patient.generalPractitioner
    replaced_by: str | None = None  # a merged duplicate: the surviving Patient id
    replaces: str | None = None  # the survivor of a merge: the merged Patient id
    merged_into: Registration | None = None  # a merged duplicate: the surviving registration
