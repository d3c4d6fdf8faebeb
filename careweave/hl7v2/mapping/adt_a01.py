"""ADT_A01 (A01 admit, A04 register, A08 update, A13 cancel discharge) -> Patient, Encounter.

Rules:
1. The IG's ADT_A01 map: PID/PD1/NK1 -> Patient, PV1/PV2 -> Encounter, OBX, AL1, DG1.
2. Status by event: A01 in-progress, A04 arrived, A13 in-progress (the discharge date is
   dropped); A08 is an update: a snapshot PUT of the same Patient and Encounter, its status
   taken from the visit's own dates.
3. A01 and A13 are about a visit (PV1-19 required); A04 and A08 may come without one.
"""

from __future__ import annotations

from careweave.hl7v2.mapping.adt import event_status, map_adt
from careweave.hl7v2.mapping.context import Context

__all__ = ["map_adt_a01"]


def map_adt_a01(ctx: Context) -> None:
    map_adt(ctx, visit_required=ctx.message.trigger_event in ("A01", "A13"), status=event_status(ctx))
