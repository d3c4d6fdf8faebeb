"""ADT_A05 (A05 pre-admit, A14 pending admit, A28 add person, A31 update person).

Rules:
1. As ADT_A01 (the IG maps the same segments). A28/A31 are about the person: the Patient is the
   point, and a PV1 without a visit number (``PV1|1|N``) makes no Encounter.
2. A05/A14 make a planned Encounter when PV1 names the visit.
"""

from __future__ import annotations

from careweave.hl7v2.mapping.adt import event_status, map_adt
from careweave.hl7v2.mapping.context import Context

__all__ = ["map_adt_a05"]


def map_adt_a05(ctx: Context) -> None:
    map_adt(ctx, visit_required=False, status=event_status(ctx))
