"""PID, PD1 and NK1 -> Patient (the IG's PID[Patient], PD1[Patient], NK1[Patient] maps).

Rules:
1. Identifiers: PID-3, then PID-2 and PID-4 (where v2.2/2.3 feeds put the NHS number), by the UK
   rules of :mod:`.identifiers`; a PID without any identifier is an error (101 at PID-3). The id
   is the facility's record key (identifiers rule 3).
2. NHS number verification status: PID-32 (identity reliability code) repetitions holding an NHS
   Number Status Indicator (``01``..``08``, optionally prefixed ``NSTS``, as UK ITK feeds send)
   become the UK Core NHSNumberVerificationStatus extension on the NHS number. No such value: no
   extension (we do not invent a trace status).
3. Names PID-5 (XPN), birth date PID-7 (with the patient-birthTime extension when a time is
   given), gender PID-8 (table 0001), address PID-11 (XAD), telecom PID-13 (home) and PID-14
   (work) and PID-40 (XTN), language PID-15, marital status PID-16, ethnic category PID-22
   (UK Core extension, NHS Data Dictionary codes), multiple birth PID-24/25, death PID-29/30.
4. GP: PD1-3 (XON, ODS code in XON-10 or XON-3) -> an Organization, PD1-4 (XCN) -> a
   Practitioner, both in ``generalPractitioner``. NK1 -> ``Patient.contact``.
5. The mapping is a snapshot: the PUT replaces what an earlier message said, except what a merge
   said (``link``, and a retired record's demographics: ``adt_a39`` rule 5, applied by the
   writer with the stored version).
"""

from __future__ import annotations

import re
from typing import Any

from careweave.hl7v2.errors import Hl7v2Error
from careweave.hl7v2.mapping import datatypes
from careweave.hl7v2.mapping.context import Context, reference
from careweave.hl7v2.mapping.identifiers import NHS_NUMBER_SYSTEM, patient_identifier
from careweave.hl7v2.mapping.parties import organization, practitioner
from careweave.hl7v2.message import Segment
from careweave.hl7v2.tables import (
    ADMINISTRATIVE_SEX,
    ETHNIC_CATEGORY,
    MARITAL_STATUS,
    NHS_NUMBER_STATUS,
)

__all__ = ["map_patient", "patient_identifiers", "record_key"]

Json = dict[str, Any]
VERIFICATION_URL = "https://fhir.hl7.org.uk/StructureDefinition/Extension-UKCore-NHSNumberVerificationStatus"
VERIFICATION_SYSTEM = "https://fhir.hl7.org.uk/CodeSystem/UKCore-NHSNumberVerificationStatusEngland"
ETHNIC_URL = "https://fhir.hl7.org.uk/StructureDefinition/Extension-UKCore-EthnicCategory"
ETHNIC_SYSTEM = "https://fhir.hl7.org.uk/CodeSystem/UKCore-EthnicCategoryEngland"
BIRTH_TIME_URL = "http://hl7.org/fhir/StructureDefinition/patient-birthTime"
_MARITAL_SYSTEM = "http://terminology.hl7.org/CodeSystem/v3-MaritalStatus"
_STATUS = re.compile(r"(?:NSTS)?(0[1-8])\Z")


def patient_identifiers(ctx: Context, pid: Segment) -> list[Json]:
    """The identifiers of a PID (rule 1), without duplicates; raises 101 when there are none."""
    out: list[Json] = []
    for field_no in (3, 2, 4):
        for rep in pid.repetitions(field_no):
            identifier = patient_identifier(rep, ctx.facility)
            if identifier is not None and identifier not in out:
                out.append(identifier)
    if not out:
        raise Hl7v2Error("no patient identifier in PID-3", "101", location=ctx.where(pid, 3))
    return out


def record_key(identifiers: list[Json]) -> tuple[str, str]:
    """(system, value) of the identifier that keys the record (identifiers rule 3)."""
    chosen = next((i for i in identifiers if i["system"] != NHS_NUMBER_SYSTEM), identifiers[0])
    return chosen["system"], chosen["value"]


def _verification(pid: Segment) -> Json | None:
    for rep in pid.repetitions(32):
        match = _STATUS.match(rep.get(1).strip().upper())
        if match:
            code = match.group(1)
            coding = {"system": VERIFICATION_SYSTEM, "code": code, "display": NHS_NUMBER_STATUS[code]}
            return {"url": VERIFICATION_URL, "valueCodeableConcept": {"coding": [coding]}}
    return None


def map_patient(
    ctx: Context, pid: Segment, pd1: Segment | None = None, nk1s: tuple[Segment, ...] = ()
) -> str:
    """Put the Patient of a PID (rules 1-5); returns its reference and sets ``ctx.patient``."""
    identifiers = patient_identifiers(ctx, pid)
    status = _verification(pid)
    if status is not None:
        for identifier in identifiers:
            if identifier["system"] == NHS_NUMBER_SYSTEM:
                identifier["extension"] = [status]
    system, value = record_key(identifiers)
    patient: Json = {"resourceType": "Patient", "id": ctx.id("Patient", system, value)}
    ethnic = _ethnic(pid)
    if ethnic:
        patient["extension"] = [ethnic]
    patient["identifier"] = identifiers
    patient["active"] = True
    _demographics(ctx, pid, patient)
    if pd1 is not None:
        _general_practitioner(ctx, pd1, patient)
    contacts = [c for c in (_contact(nk1) for nk1 in nk1s) if c]
    if contacts:
        patient["contact"] = contacts
    patient["managingOrganization"] = reference(ctx.organization)
    ctx.patient = ctx.entries.put(patient)
    return ctx.patient


def _ethnic(pid: Segment) -> Json | None:
    code = pid.get(22).strip().upper()
    if code not in ETHNIC_CATEGORY:
        return None
    coding = {"system": ETHNIC_SYSTEM, "code": code, "display": ETHNIC_CATEGORY[code]}
    return {"url": ETHNIC_URL, "valueCodeableConcept": {"coding": [coding]}}


def _demographics(ctx: Context, pid: Segment, patient: Json) -> None:
    names = [n for n in (datatypes.human_name(r) for r in pid.repetitions(5)) if n]
    if names:
        patient["name"] = names
    telecom = [
        t
        for field_no, use in ((13, "home"), (14, "work"), (40, None))
        for t in (datatypes.contact_point(r, use) for r in pid.repetitions(field_no))
        if t
    ]
    if telecom:
        patient["telecom"] = telecom
    sex = ADMINISTRATIVE_SEX.get(pid.get(8).strip().upper())
    if sex:
        patient["gender"] = sex
    _birth(ctx, pid, patient)
    _deceased(ctx, pid, patient)
    addresses = [a for a in (datatypes.address(r) for r in pid.repetitions(11)) if a]
    if addresses:
        patient["address"] = addresses
    marital = MARITAL_STATUS.get(pid.get(16).strip().upper())
    if marital:
        code, display = marital
        patient["maritalStatus"] = {"coding": [{"system": _MARITAL_SYSTEM, "code": code, "display": display}]}
    _multiple_birth(pid, patient)
    language = datatypes.codeable(pid.first(15))
    if language:
        patient["communication"] = [{"language": language}]


def _birth(ctx: Context, pid: Segment, patient: Json) -> None:
    born = ctx.date(pid, 7)
    if born is None:
        return
    patient["birthDate"] = born
    if len(pid.get(7).strip()) > 8:
        when = ctx.date_time(pid, 7)
        patient["_birthDate"] = {"extension": [{"url": BIRTH_TIME_URL, "valueDateTime": when}]}


def _deceased(ctx: Context, pid: Segment, patient: Json) -> None:
    died = ctx.date_time(pid, 29)
    flag = pid.get(30).strip().upper()
    if died:
        patient["deceasedDateTime"] = died
    elif flag in ("Y", "N"):
        patient["deceasedBoolean"] = flag == "Y"


def _multiple_birth(pid: Segment, patient: Json) -> None:
    flag, order = pid.get(24).strip().upper(), pid.get(25).strip()
    if order.isdecimal() and len(order) <= 3 and flag != "N":
        patient["multipleBirthInteger"] = int(order)
    elif flag in ("Y", "N"):
        patient["multipleBirthBoolean"] = flag == "Y"


def _general_practitioner(ctx: Context, pd1: Segment, patient: Json) -> None:
    refs = []
    for rep in pd1.repetitions(3):
        code = rep.get(10) or rep.get(3)
        if code:
            refs.append(reference(organization(ctx, code, rep.get(1))))
    for rep in pd1.repetitions(4):
        ref = practitioner(ctx, rep)
        if ref:
            refs.append(reference(ref))
    if refs:
        patient["generalPractitioner"] = refs


def _contact(nk1: Segment) -> Json | None:
    contact: Json = {}
    relationship = [
        c
        for c in (
            datatypes.codeable(nk1.first(7), "http://terminology.hl7.org/CodeSystem/v2-0131"),
            datatypes.codeable(nk1.first(3), "http://terminology.hl7.org/CodeSystem/v2-0063"),
        )
        if c
    ]
    if relationship:
        contact["relationship"] = relationship
    name = datatypes.human_name(nk1.first(2))
    if name:
        contact["name"] = name
    telecom = [
        t
        for field_no, use in ((5, "home"), (6, "work"))
        for t in (datatypes.contact_point(r, use) for r in nk1.repetitions(field_no))
        if t
    ]
    if telecom:
        contact["telecom"] = telecom
    address = datatypes.address(nk1.first(4))
    if address:
        contact["address"] = address
    sex = ADMINISTRATIVE_SEX.get(nk1.get(15).strip().upper())
    if sex:
        contact["gender"] = sex
    if not (name or telecom or address):
        return None
    return contact
