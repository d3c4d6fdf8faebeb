"""Source Patients as the identity space keeps them, and how it names them.

Rules:
1. The identity space keeps only the identifying elements of a Patient (:data:`IDENTIFYING`): what
   :func:`careweave.mpi.normalise` reads. Their canonical JSON is the record's ``demographics``; its
   digest changes exactly when those elements change (a "demographics changed" event), not when
   the rest of the Patient does.
2. A record's id inside the matcher is ``"{tenant key}/{patient id}"``: unique across tenants.
2a. A GP practice named by a relative reference (``Organization/x``) means that tenant's
   Organization x: it is qualified with the tenant before matching, so two organisations agree on a
   practice only through its ODS code (or the same absolute URL), never by local ids that collide.
3. Person.link.target names a source Patient by the absolute URL of its tenant's FHIR base
   (``{base}/fhir`` for the default tenant, ``{base}/t/{name}/fhir`` for the others): every tenant
   is its own FHIR service base, so a reference from the identity space to a Patient is a
   reference to another server in the spec's terms, and an absolute URL is the form that resolves
   (references.html, "Literal references"). See docs/mpi.md.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

import orjson

from careweave.mpi import NicknameIndex, PatientRecord, blocking_keys, normalise

__all__ = [
    "IDENTIFYING",
    "IDENTITY_TENANT",
    "Prepared",
    "demographics_of",
    "patient_url",
    "prepare",
    "record_id",
    "record_of",
]

IDENTITY_TENANT = "_mpi"
"""The reserved tenant holding the Person resources: no URL-safe tenant name (names start with a
letter or digit), served only at /mpi/fhir."""

IDENTIFYING = (
    "identifier",
    "name",
    "birthDate",
    "gender",
    "address",
    "telecom",
    "multipleBirthBoolean",
    "multipleBirthInteger",
    "managingOrganization",
    "generalPractitioner",
)


def record_id(tid: int, patient: str) -> str:
    return f"{tid}/{patient}"


def demographics_of(patient: dict[str, Any]) -> tuple[bytes, str]:
    """The identifying elements of a Patient (rule 1) as canonical JSON, and their digest."""
    kept = {k: patient[k] for k in IDENTIFYING if k in patient}
    body = orjson.dumps(kept, option=orjson.OPT_SORT_KEYS)
    return body, hashlib.sha256(body).hexdigest()[:24]


def record_of(tid: int, patient: str, demographics: bytes, nicknames: NicknameIndex) -> PatientRecord:
    resource = orjson.loads(demographics)
    resource["resourceType"] = "Patient"
    resource["id"] = record_id(tid, patient)
    practices = resource.get("generalPractitioner")
    if isinstance(practices, list):  # rule 2a
        resource["generalPractitioner"] = [_qualified(tid, p) for p in practices]
    return normalise(resource, nicknames)


def _qualified(tid: int, ref: Any) -> Any:
    if isinstance(ref, dict) and isinstance(ref.get("reference"), str) and "://" not in ref["reference"]:
        return {**ref, "reference": f"tenant:{tid}/{ref['reference']}"}
    return ref


@dataclass(frozen=True, slots=True)
class Prepared:
    """A Patient version ready for the matcher: computed outside the write transaction."""

    demographics: bytes
    digest: str
    record: PatientRecord
    keys: frozenset[str]


def prepare(tid: int, patient: dict[str, Any], nicknames: NicknameIndex) -> Prepared:
    demographics, digest = demographics_of(patient)
    record = record_of(tid, str(patient.get("id")), demographics, nicknames)
    return Prepared(demographics, digest, record, blocking_keys(record))


def patient_url(base: str, tenant: str, patient: str) -> str:
    """The absolute URL of a tenant's Patient (rule 3)."""
    root = f"{base}/fhir" if tenant == "default" else f"{base}/t/{tenant}/fhir"
    return f"{root}/Patient/{patient}"
