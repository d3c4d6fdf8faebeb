"""UK identifier rules: which system a v2 identifier belongs to.

Rules:
1. NHS number: a CX whose assigning authority (CX-4.1) is ``NHS`` or whose type (CX-5) is ``NH``
   -> ``https://fhir.nhs.uk/Id/nhs-number``, spaces removed.
2. Any other patient identifier is local to its assigning authority (CX-4.1, else the sending
   facility MSH-4): ``https://fhir.<authority lower-case>.nhs.uk/Id/<kind>``, the convention of
   careweave.generate. The kind comes from the identifier type (:data:`KIND_BY_TYPE`, default:
   the type in lower case); hospital numbers (MR, PI) of a GP practice (an ODS code of a letter
   and five digits) are ``local-patient-number``, of anything else ``mrn``.
3. The record key of a Patient (its id) is its first local identifier, else its NHS number,
   always with the sending facility: each organisation's record is its own Patient, and the MPI
   links them.
4. Practitioners: XCN-9 names the authority (GMC, GMP, NMC, ...); without one, ``C`` + 7 digits
   is a consultant code (the GMC number) and ``G`` + 7 digits a GP's national code (GMP);
   anything else is a staff id local to the facility.
"""

from __future__ import annotations

import re
from typing import Any

from careweave.hl7v2.message import Repetition

__all__ = [
    "GMC_SYSTEM",
    "KIND_BY_TYPE",
    "NHS_NUMBER_SYSTEM",
    "ODS_SYSTEM",
    "V2_0203",
    "is_nhs_number",
    "local_system",
    "patient_identifier",
    "practitioner_identifier",
]

NHS_NUMBER_SYSTEM = "https://fhir.nhs.uk/Id/nhs-number"
ODS_SYSTEM = "https://fhir.nhs.uk/Id/ods-organization-code"
GMC_SYSTEM = "https://fhir.hl7.org.uk/Id/gmc-number"
V2_0203 = "http://terminology.hl7.org/CodeSystem/v2-0203"

# Identifier type (HL7 table 0203) -> the last path segment of a local identifier system.
KIND_BY_TYPE: dict[str, str] = {
    "MR": "mrn",
    "PI": "mrn",
    "VN": "visit-number",
    "AN": "account-number",
    "PLAC": "placer-order-number",
    "FILL": "filler-order-number",
}
# XCN-9 assigning authority -> practitioner identifier system (rule 4).
PRACTITIONER_SYSTEMS: dict[str, str] = {
    "GMC": GMC_SYSTEM,
    "GMP": "https://fhir.hl7.org.uk/Id/gmp-number",
    "NMC": "https://fhir.hl7.org.uk/Id/nmc-number",
    "GDC": "https://fhir.hl7.org.uk/Id/gdc-number",
    "GPHC": "https://fhir.hl7.org.uk/Id/gphc-number",
    "HCPC": "https://fhir.hl7.org.uk/Id/hcpc-number",
    "SDS": "https://fhir.nhs.uk/Id/sds-user-id",
}
_PRACTITIONER_PATTERNS = (
    (re.compile(r"C(\d{7})\Z", re.ASCII), GMC_SYSTEM),
    (re.compile(r"G(\d{7})\Z", re.ASCII), PRACTITIONER_SYSTEMS["GMP"]),
)
_GP_PRACTICE = re.compile(r"[A-Z]\d{5}\Z", re.ASCII)
_NOT_HOST = re.compile(r"[^a-z0-9-]+")


def local_system(authority: str, kind: str) -> str:
    """``https://fhir.<authority>.nhs.uk/Id/<kind>`` (rule 2)."""
    host = _NOT_HOST.sub("-", authority.strip().lower()).strip("-") or "unknown"
    return f"https://fhir.{host}.nhs.uk/Id/{kind}"


def is_nhs_number(rep: Repetition) -> bool:
    return rep.get(4).strip().upper() == "NHS" or rep.get(5).strip().upper() == "NH"


def patient_identifier(rep: Repetition, facility: str) -> dict[str, Any] | None:
    """CX -> Identifier by rules 1-2; None when CX-1 is empty."""
    value = rep.get(1).strip()
    if not value:
        return None
    if is_nhs_number(rep):
        return {"system": NHS_NUMBER_SYSTEM, "value": value.replace(" ", "")}
    authority = rep.get(4).strip() or facility
    kind_code = rep.get(5).strip().upper() or "MR"
    kind = KIND_BY_TYPE.get(kind_code, _NOT_HOST.sub("-", kind_code.lower()))
    if kind == "mrn" and _GP_PRACTICE.match(authority.upper()):
        kind = "local-patient-number"
    out: dict[str, Any] = {"use": "usual"}
    out["type"] = {"coding": [{"system": V2_0203, "code": kind_code}]}
    out["system"] = local_system(authority, kind)
    out["value"] = value
    return out


def practitioner_identifier(rep: Repetition, facility: str) -> dict[str, Any] | None:
    """XCN-1 (+ XCN-9) -> Identifier by rule 4; None when XCN-1 is empty."""
    value = rep.get(1).strip()
    if not value:
        return None
    authority = rep.get(9).strip().upper()
    if authority in PRACTITIONER_SYSTEMS:
        return {"system": PRACTITIONER_SYSTEMS[authority], "value": value}
    if not authority:
        for pattern, system in _PRACTITIONER_PATTERNS:
            match = pattern.match(value.upper())
            if match:
                return {"system": system, "value": match.group(1)}
    return {"system": local_system(authority or facility, "staff-id"), "value": value}
