"""What the ADT structures share: PID/PD1/NK1 -> Patient, PV1/PV2 -> Encounter, and the
clinical segments an ADT message may carry (OBX -> Observation, AL1, DG1).

Rules:
1. A PID is required (101 at PID). The Patient is mapped first, the Encounter next, so both are
   known to the clinical segments.
2. The Encounter status comes from the trigger event (:data:`~careweave.hl7v2.tables.
   ENCOUNTER_EVENT_STATUS`) unless the structure mapper gives one; events about a visit require
   one (PV1-19).
3. ADT OBX (height, weight, ...) are keyed by the Encounter (else the Patient) and their code.
"""

from __future__ import annotations

from careweave.hl7v2.errors import Hl7v2Error, Location
from careweave.hl7v2.mapping.clinical import map_allergy, map_diagnosis
from careweave.hl7v2.mapping.context import Context
from careweave.hl7v2.mapping.encounter import map_encounter
from careweave.hl7v2.mapping.groups import order_groups
from careweave.hl7v2.mapping.observation import ObservationScope, map_results
from careweave.hl7v2.mapping.patient import map_patient
from careweave.hl7v2.message import Segment
from careweave.hl7v2.tables import ENCOUNTER_EVENT_STATUS

__all__ = ["event_status", "map_adt", "map_adt_patient", "require"]


def require(ctx: Context, name: str) -> Segment:
    """The first ``name`` segment, or 101 (required segment missing)."""
    seg = ctx.message.segment(name)
    if seg is None:
        raise Hl7v2Error(f"the message has no {name} segment", "101", location=Location(name))
    return seg


def map_adt_patient(ctx: Context) -> str:
    """PID (+ PD1, NK1) -> Patient (rule 1)."""
    message = ctx.message
    pid = require(ctx, "PID")
    return map_patient(ctx, pid, message.segment("PD1"), message.segments_named("NK1"))


def event_status(ctx: Context) -> str | None:
    """The Encounter status the trigger event implies, if any (rule 2)."""
    return ENCOUNTER_EVENT_STATUS.get(ctx.message.trigger_event)


def map_adt(ctx: Context, *, visit_required: bool, status: str | None) -> None:
    """The whole of an ADT message (rules 1-3); ``status`` None: from the visit's dates."""
    map_adt_patient(ctx)
    message = ctx.message
    pv1 = message.segment("PV1")
    if visit_required and pv1 is None:
        require(ctx, "PV1")
    if pv1 is not None:
        map_encounter(ctx, pv1, message.segment("PV2"), status, required=visit_required)
    scope = ObservationScope(key=(ctx.encounter or ctx.patient, "adt"))
    for group in order_groups(message):
        map_results(ctx, group.results, scope)
    for al1 in message.segments_named("AL1"):
        map_allergy(ctx, al1)
    for dg1 in message.segments_named("DG1"):
        map_diagnosis(ctx, dg1)
