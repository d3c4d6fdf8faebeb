"""One registration as a FHIR R4 Patient, UK Core flavoured.

Rules:
1. The NHS number identifier (system ``https://fhir.nhs.uk/Id/nhs-number``) carries the UK Core
   NHSNumberVerificationStatus extension; a missing number means no such identifier at all.
2. The local identifier is the organisation's MRN (``use: usual``, type ``MR`` from v2 table 0203)
   in the organisation's own system; ``managingOrganization`` is the organisation.
3. GP practices usually record ethnic category (UK Core EthnicCategory extension); trusts rarely.
4. A merged duplicate is ``active: false`` with a ``replaced-by`` link to the survivor, which has
   a ``replaces`` link back (the PMIR convention).
"""

from __future__ import annotations

import random
from typing import Any

from careweave.generate import clock
from careweave.generate.model import OrgKind, Recorded, Registration
from careweave.generate.organisations import fhir_address
from careweave.mpi import nhs_number

__all__ = [
    "ETHNIC_CATEGORY_URL",
    "VERIFICATION_STATUS_SYSTEM",
    "VERIFICATION_STATUS_URL",
    "patient_resource",
]

VERIFICATION_STATUS_URL = (
    "https://fhir.hl7.org.uk/StructureDefinition/Extension-UKCore-NHSNumberVerificationStatus"
)
VERIFICATION_STATUS_SYSTEM = "https://fhir.hl7.org.uk/CodeSystem/UKCore-NHSNumberVerificationStatusEngland"
ETHNIC_CATEGORY_URL = "https://fhir.hl7.org.uk/StructureDefinition/Extension-UKCore-EthnicCategory"
ETHNIC_CATEGORY_SYSTEM = "https://fhir.hl7.org.uk/CodeSystem/UKCore-EthnicCategoryEngland"
_V2_0203 = "http://terminology.hl7.org/CodeSystem/v2-0203"

VERIFICATION_DISPLAY = {
    "01": "Number present and verified",
    "02": "Number present but not traced",
    "03": "Trace required",
    "04": "Trace attempted - No match or multiple match found",
    "05": "Trace needs to be resolved - (NHS Number or patient detail conflict)",
    "06": "Trace in progress",
    "07": "Number not present and trace not required",
    "08": "Trace postponed (baby under six weeks old)",
}
ETHNIC_DISPLAY = {
    "A": "White - British",
    "B": "White - Irish",
    "C": "White - Any other White background",
    "D": "Mixed - White and Black Caribbean",
    "E": "Mixed - White and Black African",
    "F": "Mixed - White and Asian",
    "G": "Mixed - Any other mixed background",
    "H": "Asian or Asian British - Indian",
    "J": "Asian or Asian British - Pakistani",
    "K": "Asian or Asian British - Bangladeshi",
    "L": "Asian or Asian British - Any other Asian background",
    "M": "Black or Black British - Caribbean",
    "N": "Black or Black British - African",
    "P": "Black or Black British - Any other Black background",
    "R": "Other Ethnic Groups - Chinese",
    "S": "Other Ethnic Groups - Any other ethnic group",
    "Z": "Not stated",
}


def _identifiers(reg: Registration) -> list[dict[str, Any]]:
    rec = reg.recorded
    out: list[dict[str, Any]] = []
    if rec.nhs_number is not None:
        status = rec.verification or "02"
        out.append(
            {
                "extension": [
                    {
                        "url": VERIFICATION_STATUS_URL,
                        "valueCodeableConcept": {
                            "coding": [
                                {
                                    "system": VERIFICATION_STATUS_SYSTEM,
                                    "code": status,
                                    "display": VERIFICATION_DISPLAY[status],
                                }
                            ]
                        },
                    }
                ],
                "system": nhs_number.SYSTEM,
                "value": rec.nhs_number,
            }
        )
    out.append(
        {
            "use": "usual",
            "type": {"coding": [{"system": _V2_0203, "code": "MR", "display": "Medical record number"}]},
            "system": reg.org.mrn_system,
            "value": reg.mrn,
        }
    )
    return out


def _names(rng: random.Random, reg: Registration) -> list[dict[str, Any]]:
    rec = reg.recorded
    name: dict[str, Any] = {"use": "temp" if rec.name_text else "official"}
    if rec.name_text:
        name["text"] = rec.name_text
    name["family"] = rec.family
    name["given"] = list(rec.given)
    adult = (reg.since - rec.birth_date).days >= 18 * 365
    if adult and not rec.name_text and rng.random() < 0.4:
        married = reg.person.birth_family is not None
        name["prefix"] = ["Mr" if rec.sex == "male" else "Mrs" if married else "Ms"]
    names = [name]
    if rec.maiden_family is not None:
        names.append({"use": "maiden", "family": rec.maiden_family, "given": list(rec.given)})
    return names


def _telecom(rec: Recorded) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    if rec.phone:
        out.append({"system": "phone", "value": rec.phone, "use": "home"})
    if rec.mobile:
        out.append({"system": "phone", "value": rec.mobile, "use": "mobile"})
    if rec.email:
        out.append({"system": "email", "value": rec.email, "use": "home"})
    return out


def _old_address(rng: random.Random, reg: Registration) -> list[dict[str, Any]]:
    """The previous address (``use: old``) at the organisations that keep address history."""
    person = reg.person
    previous, moved_on = person.previous_address, person.moved_on
    if previous is None or moved_on is None or reg.recorded.address != person.address:
        return []
    if rng.random() >= 0.4:
        return []
    old = fhir_address(previous, "old")
    old["period"] = {"end": clock.fhir_date(moved_on)}
    return [old]


def patient_resource(rng: random.Random, reg: Registration) -> dict[str, Any]:
    """The Patient resource of one registration (rules 1-4)."""
    rec, person, org = reg.recorded, reg.person, reg.org
    resource: dict[str, Any] = {"resourceType": "Patient", "id": reg.patient_id}
    ethnicity_rate = 0.85 if org.kind is OrgKind.GP else 0.2
    if rng.random() < ethnicity_rate:
        code = person.ethnicity if rng.random() < 0.93 else "Z"
        resource["extension"] = [
            {
                "url": ETHNIC_CATEGORY_URL,
                "valueCodeableConcept": {
                    "coding": [
                        {"system": ETHNIC_CATEGORY_SYSTEM, "code": code, "display": ETHNIC_DISPLAY[code]}
                    ]
                },
            }
        ]
    resource["identifier"] = _identifiers(reg)
    resource["active"] = reg.replaced_by is None
    resource["name"] = _names(rng, reg)
    telecom = _telecom(rec)
    if telecom:
        resource["telecom"] = telecom
    resource["gender"] = rec.sex
    resource["birthDate"] = clock.fhir_date(rec.birth_date)
    if person.deceased is not None:
        resource["deceasedDateTime"] = clock.fhir_date(person.deceased)
    resource["address"] = [fhir_address(rec.address, "home"), *_old_address(rng, reg)]
    if person.multiple_birth is not None and rng.random() < 0.7:
        resource["multipleBirthInteger"] = person.multiple_birth
    gp = reg.gp if org.kind is OrgKind.TRUST else org
    if gp is not None:
        resource["generalPractitioner"] = [{"reference": f"Organization/{gp.id}"}]
    resource["managingOrganization"] = {"reference": f"Organization/{org.id}"}
    links = []
    if reg.replaced_by is not None:
        links.append({"other": {"reference": f"Patient/{reg.replaced_by}"}, "type": "replaced-by"})
    if reg.replaces is not None:
        links.append({"other": {"reference": f"Patient/{reg.replaces}"}, "type": "replaces"})
    if links:
        resource["link"] = links
    return resource
