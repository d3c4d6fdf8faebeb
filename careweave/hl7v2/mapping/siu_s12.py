"""SIU_S12 (and the other SIU events: S13 reschedule ... S26 no-show) -> Appointment (the IG's
SIU_S12 map).

Rules:
1. SCH -> Appointment keyed by the filler appointment id SCH-2, else the placer id SCH-1 (101
   at SCH-2 when neither). Status from the event (:data:`~careweave.hl7v2.tables.
   APPOINTMENT_EVENT_STATUS`); for S12-S14 a known SCH-25 (table 0278) wins.
2. start/end: SCH-11.4/.5 (TQ), else TQ1-7/8, else AIS-4 (+ AIS-7 duration); minutesDuration from
   SCH-9/10 or AIS-7/8 (units MIN or H); an end is computed from start + duration. An appointment
   that is not proposed, cancelled or waitlisted needs both (101 at SCH-11), as FHIR (app-3) does.
3. appointmentType SCH-8, reasonCode SCH-7, serviceType AIS-3, comment from NTE.
4. Participants: the Patient (PID), each AIP (XCN -> Practitioner), each AIL (PL -> Location),
   all ``accepted``.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from careweave.hl7v2.errors import Hl7v2Error
from careweave.hl7v2.mapping import datatypes
from careweave.hl7v2.mapping.adt import map_adt_patient, require
from careweave.hl7v2.mapping.context import Context, reference
from careweave.hl7v2.mapping.identifiers import local_system
from careweave.hl7v2.mapping.parties import location, practitioner
from careweave.hl7v2.message import Segment
from careweave.hl7v2.tables import APPOINTMENT_EVENT_STATUS, FILLER_STATUS

__all__ = ["map_siu_s12"]

Json = dict[str, Any]
_MINUTES = {"MIN": 1, "M": 1, "MINUTES": 1, "H": 60, "HR": 60, "HOURS": 60, "S": 0}


def map_siu_s12(ctx: Context) -> None:
    sch = require(ctx, "SCH")
    map_adt_patient(ctx)
    message = ctx.message
    appointment: Json = {"resourceType": "Appointment"}
    identifiers = _identifiers(ctx, sch)
    appointment["id"] = ctx.id("Appointment", identifiers[0]["system"], identifiers[0]["value"])
    appointment["identifier"] = identifiers
    appointment["status"] = _status(ctx, sch)
    _coded(appointment, sch, ais=message.segment("AIS"))
    _timing(ctx, sch, appointment)
    notes = [n.get(3) for n in message.segments_named("NTE") if n.get(3)]
    if notes:
        appointment["comment"] = "\n".join(notes)
    appointment["participant"] = _participants(ctx)
    ctx.entries.put(appointment)


def _identifiers(ctx: Context, sch: Segment) -> list[Json]:
    out = []
    for field_no, kind in ((2, "filler-appointment-id"), (1, "placer-appointment-id")):
        value = sch.get(field_no)
        if value:
            out.append({"system": local_system(sch.get(field_no, 2) or ctx.facility, kind), "value": value})
    if not out:
        raise Hl7v2Error("no appointment id in SCH-1 or SCH-2", "101", location=ctx.where(sch, 2))
    return out


def _status(ctx: Context, sch: Segment) -> str:
    event = ctx.message.trigger_event
    written = sch.get(25).strip()
    filler = FILLER_STATUS.get(written) or FILLER_STATUS.get(written.capitalize())
    if event in ("S12", "S13", "S14") and filler:
        return filler
    return APPOINTMENT_EVENT_STATUS.get(event) or filler or "booked"


def _coded(appointment: Json, sch: Segment, ais: Segment | None) -> None:
    if ais is not None:
        service = datatypes.codeable(ais.first(3))
        if service:
            appointment["serviceType"] = [service]
    kind = datatypes.codeable(sch.first(8), "http://terminology.hl7.org/CodeSystem/v2-0276")
    if kind:
        appointment["appointmentType"] = kind
    reason = datatypes.codeable(sch.first(7))
    if reason:
        appointment["reasonCode"] = [reason]


def _minutes(amount: str, units: str) -> int | None:
    value = datatypes.number(amount)
    factor = _MINUTES.get(units.strip().upper() or "MIN")
    if value is None or not factor or value <= 0:
        return None
    return int(value * factor)


def _timing(ctx: Context, sch: Segment, appointment: Json) -> None:
    message = ctx.message
    tq1, ais = message.segment("TQ1"), message.segment("AIS")
    start = ctx.instant(sch, 11, 4) or (ctx.instant(tq1, 7) if tq1 else None)
    end = ctx.instant(sch, 11, 5) or (ctx.instant(tq1, 8) if tq1 else None)
    minutes = _minutes(sch.get(9), sch.get(10, 1))
    if ais is not None:
        start = start or ctx.instant(ais, 4)
        minutes = minutes or _minutes(ais.get(7), ais.get(8, 1))
    if start and not end and minutes:
        end = (datetime.fromisoformat(start) + timedelta(minutes=minutes)).isoformat()
    if start and end:
        appointment["start"], appointment["end"] = start, end
    elif appointment["status"] not in ("proposed", "cancelled", "waitlist"):
        raise Hl7v2Error("the appointment needs a start and an end (or duration)", "101",
                         location=ctx.where(sch, 11))  # fmt: skip
    if minutes:
        appointment["minutesDuration"] = minutes


def _participants(ctx: Context) -> list[Json]:
    out = [{"actor": reference(ctx.patient), "status": "accepted"}]
    for aip in ctx.message.segments_named("AIP"):
        ref = practitioner(ctx, aip.first(3))
        if ref:
            out.append({"actor": reference(ref), "status": "accepted"})
    for ail in ctx.message.segments_named("AIL"):
        ref = location(ctx, ail.first(3))
        if ref:
            out.append({"actor": reference(ref), "status": "accepted"})
    return out
