"""PV1 and PV2 -> Encounter (the IG's PV1[Encounter] and PV2[Encounter] maps).

Rules:
1. The Encounter is keyed by the visit number PV1-19 (system
   ``https://fhir.<authority or facility>.nhs.uk/Id/visit-number``, as careweave.generate
   writes), else the alternate visit id PV1-50, else the patient and admit time PV1-44. With none
   of these there is no Encounter, and events about a visit (``required``) fail with 101 at
   PV1-19.
2. Status: the caller's (from the trigger event, :data:`~careweave.hl7v2.tables.
   ENCOUNTER_EVENT_STATUS`); a discharge date PV1-45 then makes an arrived or in-progress visit
   finished, except after A13 (cancel discharge), which drops the end. Events with no status of
   their own (A08, A31 updates) take it from the dates: PV1-45 finished, PV1-44 in-progress,
   else unknown.
3. class PV1-2 (table 0004 -> v3 ActCode; unknown: v3 NullFlavor UNK), type PV1-4 (table 0007),
   serviceType PV1-10 (table 0069), participants PV1-7/8/9/17 (attending, referring,
   consulting, admitting), location PV1-3 (and PV1-6, the prior location, completed),
   hospitalization admitSource PV1-14 and dischargeDisposition PV1-36, period PV1-44/45,
   reasonCode PV2-3.
"""

from __future__ import annotations

from typing import Any

from careweave.hl7v2.errors import Hl7v2Error
from careweave.hl7v2.mapping import datatypes
from careweave.hl7v2.mapping.context import Context, reference
from careweave.hl7v2.mapping.identifiers import local_system
from careweave.hl7v2.mapping.parties import location, practitioner
from careweave.hl7v2.message import Segment
from careweave.hl7v2.tables import PATIENT_CLASS

__all__ = ["encounter_key", "map_encounter"]

Json = dict[str, Any]
_ACT_CODE = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
_NULL_FLAVOR = "http://terminology.hl7.org/CodeSystem/v3-NullFlavor"
_PARTICIPATION = "http://terminology.hl7.org/CodeSystem/v3-ParticipationType"
_V2 = "http://terminology.hl7.org/CodeSystem/v2-"
_PARTICIPANTS = ((7, "ATND", "attender"), (8, "REF", "referrer"), (9, "CON", "consultant"),
                 (17, "ADM", "admitter"))  # fmt: skip


def encounter_key(ctx: Context, pv1: Segment) -> tuple[str, str] | None:
    """(system, value) identifying the visit (rule 1), or None."""
    visit = pv1.get(19).strip()
    if visit:
        return local_system(pv1.get(19, 4) or ctx.facility, "visit-number"), visit
    alternate = pv1.get(50).strip()
    if alternate:
        return local_system(pv1.get(50, 4) or ctx.facility, "alternate-visit-id"), alternate
    admitted = pv1.get(44).strip()
    if admitted and ctx.patient:
        return ctx.patient, admitted
    return None


def _status(ctx: Context, pv1: Segment, status: str | None) -> str:
    ended = bool(pv1.get(45))
    if status is None:
        return "finished" if ended else "in-progress" if pv1.get(44) else "unknown"
    if ended and status in ("arrived", "in-progress") and ctx.message.trigger_event != "A13":
        return "finished"
    return status


def map_encounter(
    ctx: Context, pv1: Segment, pv2: Segment | None, status: str | None, *, required: bool
) -> str | None:
    """Put the Encounter of a PV1 (rules 1-3); sets and returns ``ctx.encounter``."""
    key = encounter_key(ctx, pv1)
    if key is None:
        if required:
            raise Hl7v2Error("no visit number in PV1-19", "101", location=ctx.where(pv1, 19))
        return None
    final = _status(ctx, pv1, status)
    encounter: Json = {"resourceType": "Encounter", "id": ctx.id("Encounter", *key)}
    if key[0].startswith("https://"):
        encounter["identifier"] = [{"use": "official", "system": key[0], "value": key[1]}]
    encounter["status"] = final
    encounter["class"] = _class(pv1.get(2).strip().upper())
    _coded(encounter, "type", pv1, 4, "0007", many=True)
    _coded(encounter, "serviceType", pv1, 10, "0069", many=False)
    encounter["subject"] = reference(ctx.patient)
    _participants(ctx, pv1, encounter)
    _period(ctx, pv1, encounter, final)
    if pv2 is not None:
        reasons = [c for c in (datatypes.codeable(r) for r in pv2.repetitions(3)) if c]
        if reasons:
            encounter["reasonCode"] = reasons
    _hospitalization(pv1, encounter)
    _locations(ctx, pv1, encounter, final)
    encounter["serviceProvider"] = reference(ctx.organization)
    ctx.encounter = ctx.entries.put(encounter)
    return ctx.encounter


def _class(code: str) -> Json:
    if code in PATIENT_CLASS:
        act, display = PATIENT_CLASS[code]
        return {"system": _ACT_CODE, "code": act, "display": display}
    return {"system": _NULL_FLAVOR, "code": "UNK", "display": "unknown"}


def _coded(encounter: Json, key: str, seg: Segment, field_no: int, table: str, *, many: bool) -> None:
    concept = datatypes.codeable(seg.first(field_no), _V2 + table)
    if concept:
        encounter[key] = [concept] if many else concept


def _participants(ctx: Context, pv1: Segment, encounter: Json) -> None:
    participants = []
    for field_no, code, display in _PARTICIPANTS:
        for rep in pv1.repetitions(field_no):
            ref = practitioner(ctx, rep)
            if ref:
                kind = {"coding": [{"system": _PARTICIPATION, "code": code, "display": display}]}
                participants.append({"type": [kind], "individual": reference(ref)})
    if participants:
        encounter["participant"] = participants


def _period(ctx: Context, pv1: Segment, encounter: Json, status: str) -> None:
    period = {}
    start = ctx.date_time(pv1, 44)
    if start:
        period["start"] = start
    end = ctx.date_time(pv1, 45) if ctx.message.trigger_event != "A13" else None
    if end and status in ("finished", "cancelled", "entered-in-error"):
        period["end"] = end
    if period:
        encounter["period"] = period


def _hospitalization(pv1: Segment, encounter: Json) -> None:
    hospitalization = {}
    source = datatypes.codeable(pv1.first(14), _V2 + "0023")
    if source:
        hospitalization["admitSource"] = source
    disposition = datatypes.codeable(pv1.first(36), _V2 + "0112")
    if disposition:
        hospitalization["dischargeDisposition"] = disposition
    if hospitalization:
        encounter["hospitalization"] = hospitalization


def _locations(ctx: Context, pv1: Segment, encounter: Json, status: str) -> None:
    current = "completed" if status in ("finished", "cancelled") else "active"
    if status == "planned":
        current = "planned"
    locations = []
    for field_no, state in ((3, current), (6, "completed")):
        ref = location(ctx, pv1.first(field_no))
        if ref:
            locations.append({"location": reference(ref), "status": state})
    if locations:
        encounter["location"] = locations
