"""ADT_A09 / ADT_A11 (A11 cancel admit or visit; A09, A10 patient tracking).

Rules:
1. A11: the Encounter of PV1-19 gets status ``cancelled`` (the IG's MSH[Encounter] event map; FHIR:
   "the encounter has ended before it has begun"). careweave does not use ``entered-in-error``:
   A11 says the admission did not happen, not that the record was about the wrong patient, and
   a cancelled Encounter stays findable with its history. The Patient is updated from PID as
   usual; nothing is deleted.
2. A09/A10 (departing, arriving) keep the visit in progress. All three need PV1-19.
"""

from __future__ import annotations

from careweave.hl7v2.mapping.adt import map_adt
from careweave.hl7v2.mapping.context import Context

__all__ = ["map_adt_a11"]


def map_adt_a11(ctx: Context) -> None:
    status = "cancelled" if ctx.message.trigger_event == "A11" else "in-progress"
    map_adt(ctx, visit_required=True, status=status)
