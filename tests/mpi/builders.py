"""Small UK Core-shaped Patient resources for the MPI tests, and their normalised records."""

from __future__ import annotations

from typing import Any

from careweave.mpi import NicknameIndex, PatientRecord, normalise
from careweave.mpi.nhs_number import SYSTEM

VERIFICATION = "https://fhir.hl7.org.uk/StructureDefinition/Extension-UKCore-NHSNumberVerificationStatus"
VERIFICATION_SYSTEM = "https://fhir.hl7.org.uk/CodeSystem/UKCore-NHSNumberVerificationStatusEngland"
ODS = "https://fhir.nhs.uk/Id/ods-organization-code"
NICKNAMES = NicknameIndex.from_table()

# valid (Modulus 11) numbers of the 999 test block
NHS_A = "9990000018"
NHS_B = "9990000026"
NHS_C = "9990000034"


def nhs_identifier(value: str, status: str | None = "01", use: str | None = None) -> dict[str, Any]:
    identifier: dict[str, Any] = {"system": SYSTEM, "value": value}
    if status is not None:
        identifier["extension"] = [
            {
                "url": VERIFICATION,
                "valueCodeableConcept": {"coding": [{"system": VERIFICATION_SYSTEM, "code": status}]},
            }
        ]
    if use is not None:
        identifier["use"] = use
    return identifier


def patient(
    pid: str = "p1",
    *,
    nhs: str | None = None,
    status: str | None = "01",
    given: tuple[str, ...] = ("John",),
    family: str = "Smith",
    birth: str | None = "1980-05-17",
    gender: str | None = "male",
    postcode: str | None = "LS6 4QT",
    line: str = "12 Church Road",
    old_postcode: str | None = None,
    phones: tuple[str, ...] = (),
    emails: tuple[str, ...] = (),
    maiden: str | None = None,
    multiple_birth: int | None = None,
    text: str | None = None,
    name_use: str = "official",
    practice: str | None = None,
) -> dict[str, Any]:
    """A Patient resource; every argument maps to one UK Core element."""
    resource: dict[str, Any] = {"resourceType": "Patient", "id": pid, "identifier": []}
    if nhs is not None:
        resource["identifier"].append(nhs_identifier(nhs, status))
    resource["identifier"].append({"system": "https://fhir.rwx.nhs.uk/Id/mrn", "value": f"MRN-{pid}"})
    name: dict[str, Any] = {"use": name_use, "family": family, "given": list(given)}
    if text is not None:
        name["text"] = text
    resource["name"] = [name]
    if maiden is not None:
        resource["name"].append({"use": "maiden", "family": maiden, "given": list(given)})
    if gender is not None:
        resource["gender"] = gender
    if birth is not None:
        resource["birthDate"] = birth
    addresses = []
    if postcode is not None:
        addresses.append({"use": "home", "line": [line], "city": "Leeds", "postalCode": postcode})
    if old_postcode is not None:
        addresses.append(
            {
                "use": "old",
                "line": ["1 Old Lane"],
                "postalCode": old_postcode,
                "period": {"end": "2020-01-01"},
            }
        )
    if addresses:
        resource["address"] = addresses
    telecom = [{"system": "phone", "value": p} for p in phones]
    telecom += [{"system": "email", "value": e} for e in emails]
    if telecom:
        resource["telecom"] = telecom
    if multiple_birth is not None:
        resource["multipleBirthInteger"] = multiple_birth
    if practice is not None:  # an ODS code, or a literal reference ("Organization/x")
        resource["generalPractitioner"] = [
            {"reference": practice} if "/" in practice else {"identifier": {"system": ODS, "value": practice}}
        ]
    return resource


def record(pid: str = "p1", **kwargs: Any) -> PatientRecord:
    """The normalised record of :func:`patient` with the same arguments."""
    return normalise(patient(pid, **kwargs), NICKNAMES)
