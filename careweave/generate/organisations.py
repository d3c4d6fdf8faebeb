"""Organisations: NHS trusts and GP practices with ODS-style codes, local MRN systems and doctors.

Rules:
1. About one organisation in four is a trust (at least one), the rest GP practices (at least
   one). Trusts sit in distinct regions while regions last; GP practices are spread over the
   trusts' regions, so every person lives near a trust and a practice.
2. Codes are ODS-style and fictional: trusts ``R`` + two characters (``RK7``), practices a letter
   and five digits (``B86023``), under ``https://fhir.nhs.uk/Id/ods-organization-code``. Any
   resemblance to a real code is chance; the names are invented.
3. Each organisation has its own local patient identifier system, documented in the generated
   data: ``https://fhir.<code lower-case>.nhs.uk/Id/mrn`` for trusts (hospital numbers) and
   ``https://fhir.<code lower-case>.nhs.uk/Id/local-patient-number`` for practices.
4. Doctors have seven-digit GMC-style numbers under ``https://fhir.hl7.org.uk/Id/gmc-number``,
   unique across the output, and one PractitionerRole at their organisation.
"""

from __future__ import annotations

import random
import string
from typing import Any

from careweave.generate import names, places
from careweave.generate.codes import SNOMED, SPECIALTIES
from careweave.generate.model import Address, Organisation, OrgKind, Practitioner
from careweave.generate.randomness import Weighted, new_id

__all__ = ["GMC_SYSTEM", "ODS_SYSTEM", "make_organisations", "organisation_resources"]

ODS_SYSTEM = "https://fhir.nhs.uk/Id/ods-organization-code"
GMC_SYSTEM = "https://fhir.hl7.org.uk/Id/gmc-number"
_ORG_TYPE = "http://terminology.hl7.org/CodeSystem/organization-type"
_ROLE = "http://terminology.hl7.org/CodeSystem/practitioner-role"

_PLACES = [
    "Kingsmere",
    "Castlegate",
    "Northbridge",
    "Riverside",
    "Ashworth",
    "Hollinvale",
    "Westmoor",
    "Fairhaven",
    "Brackenfield",
    "Eastholme",
    "Thornbury_Vale",
    "Millbrook",
    "Greystone",
    "Larkhill",
    "Oakenshaw",
    "Southmere",
]
_TRUST_KINDS = (
    "Teaching Hospitals NHS Foundation Trust",
    "Hospitals NHS Trust",
    "University Hospitals NHS Foundation Trust",
    "and District NHS Foundation Trust",
)
_PRACTICE_KINDS = ("{} Surgery", "{} Medical Centre", "The {} Practice", "{} Health Centre")
_DOCTOR_ETHNICITY = Weighted.of(
    [
        ("A", 50),
        ("B", 2),
        ("C", 8),
        ("H", 15),
        ("J", 8),
        ("K", 2),
        ("L", 3),
        ("R", 3),
        ("N", 6),
        ("M", 1),
        ("S", 4),
    ]
)
_TRUST_SPECIALTIES = tuple(k for k in SPECIALTIES if k != "general-practice")


def make_organisations(rng: random.Random, count: int) -> tuple[Organisation, ...]:
    """``count`` organisations (rule 1), trusts first, with their practitioners."""
    trusts = max(1, round(count / 4))
    trust_regions = [*rng.sample(sorted(places.REGIONS), min(trusts, len(places.REGIONS)))]
    codes: set[str] = set()
    gmc: set[str] = set()
    orgs: list[Organisation] = []
    for i in range(count):
        kind = OrgKind.TRUST if i < trusts else OrgKind.GP
        region = places.REGIONS[trust_regions[i % len(trust_regions)]]
        orgs.append(_organisation(rng, kind, region, codes, gmc))
    return tuple(orgs)


def _unique(rng: random.Random, seen: set[str], make: Any) -> str:
    while True:
        value: str = make(rng)
        if value not in seen:
            seen.add(value)
            return value


def _trust_code(rng: random.Random) -> str:
    return "R" + rng.choice("ABCDEFGHJKLMNPQRTVWXY") + rng.choice(string.digits + "ABDFHJKMNX")


def _practice_code(rng: random.Random) -> str:
    return rng.choice("ABCDEFGHJKLMNPY") + f"{rng.randrange(100000):05d}"


def _organisation(
    rng: random.Random, kind: OrgKind, region: places.Region, codes: set[str], gmc: set[str]
) -> Organisation:
    place = rng.choice(_PLACES).replace("_", " ")
    if kind is OrgKind.TRUST:
        code = _unique(rng, codes, _trust_code)
        name = f"{place} {rng.choice(_TRUST_KINDS)}"
        system = f"https://fhir.{code.lower()}.nhs.uk/Id/mrn"
        prefix, digits = rng.choice(((rng.choice("ABDFHKMRSTX"), 7), (code, 6), ("", 10)))
        staff = [rng.choice(_TRUST_SPECIALTIES) for _ in range(rng.randint(8, 16))]
    else:
        code = _unique(rng, codes, _practice_code)
        street = rng.choice(("Oak", "Church", "Station", "Park", "Victoria", "Mill", "Abbey"))
        name = rng.choice(_PRACTICE_KINDS).format(rng.choice((place, f"{street} Road")))
        system = f"https://fhir.{code.lower()}.nhs.uk/Id/local-patient-number"
        prefix, digits = "", rng.choice((6, 7))
        staff = ["general-practice"] * rng.randint(2, 6)
    return Organisation(
        id=new_id(rng),
        code=code,
        name=name,
        kind=kind,
        region=region.key,
        mrn_system=system,
        mrn_prefix=prefix,
        mrn_digits=digits,
        address=places.make_address(rng, region),
        phone=places.landline_number(rng, region),
        practitioners=tuple(_practitioner(rng, s, gmc) for s in staff),
    )


def _practitioner(rng: random.Random, specialty: str, gmc: set[str]) -> Practitioner:
    ethnicity = _DOCTOR_ETHNICITY.pick(rng)
    sex = rng.choice(("male", "female"))
    birth_year = rng.randint(1960, 1997)
    surname = names.pick_surname(rng, ethnicity)
    return Practitioner(
        id=new_id(rng),
        role_id=new_id(rng),
        gmc=_unique(rng, gmc, lambda r: f"{r.randint(2, 7)}{r.randrange(1_000_000):06d}"),
        given=names.pick_given(rng, ethnicity, sex, birth_year),
        family=surname[0] if sex == "male" else surname[1],
        sex=sex,
        specialty=specialty,
    )


def fhir_address(address: Address, use: str) -> dict[str, Any]:
    """A FHIR Address (empty parts left out)."""
    out: dict[str, Any] = {"use": use, "line": list(address.lines)}
    if address.city:
        out["city"] = address.city
    if address.district:
        out["district"] = address.district
    out["postalCode"] = address.postcode
    out["country"] = "GB"
    return out


def organisation_resources(org: Organisation) -> list[dict[str, Any]]:
    """The Organization, its Practitioners and their PractitionerRoles."""
    label = "NHS Trust" if org.kind is OrgKind.TRUST else "GP practice"
    resources: list[dict[str, Any]] = [
        {
            "resourceType": "Organization",
            "id": org.id,
            "identifier": [{"system": ODS_SYSTEM, "value": org.code}],
            "active": True,
            "type": [
                {
                    "coding": [{"system": _ORG_TYPE, "code": "prov", "display": "Healthcare Provider"}],
                    "text": label,
                }
            ],
            "name": org.name,
            "telecom": [{"system": "phone", "value": org.phone, "use": "work"}],
            "address": [fhir_address(org.address, "work")],
        }
    ]
    for doctor in org.practitioners:
        resources.append(_practitioner_resource(doctor))
        resources.append(_role_resource(doctor, org))
    return resources


def _practitioner_resource(doctor: Practitioner) -> dict[str, Any]:
    return {
        "resourceType": "Practitioner",
        "id": doctor.id,
        "identifier": [{"system": GMC_SYSTEM, "value": doctor.gmc}],
        "active": True,
        "name": [{"use": "official", "family": doctor.family, "given": [doctor.given], "prefix": ["Dr"]}],
        "gender": doctor.sex,
    }


def _role_resource(doctor: Practitioner, org: Organisation) -> dict[str, Any]:
    code, display = SPECIALTIES[doctor.specialty]
    return {
        "resourceType": "PractitionerRole",
        "id": doctor.role_id,
        "active": True,
        "practitioner": {"reference": f"Practitioner/{doctor.id}"},
        "organization": {"reference": f"Organization/{org.id}"},
        "code": [{"coding": [{"system": _ROLE, "code": "doctor", "display": "Doctor"}]}],
        "specialty": [{"coding": [{"system": SNOMED, "code": code, "display": display}]}],
    }
