"""ADT_A03 (discharge) -> Patient and a finished Encounter. Not in the IG: careweave's rules.

Rules:
1. As ADT_A01, with Encounter.status finished (the IG's vocabulary map for A03).
2. period.end is PV1-45; without it, EVN-6 (event occurred), else EVN-2 (recorded): a discharge
   always ends the visit.
3. A discharge is about a visit: PV1-19 is required.
"""

from __future__ import annotations

from careweave.hl7v2.mapping.adt import map_adt
from careweave.hl7v2.mapping.context import Context

__all__ = ["map_adt_a03"]


def map_adt_a03(ctx: Context) -> None:
    map_adt(ctx, visit_required=True, status="finished")
    encounter = ctx.entries.get(ctx.encounter)
    evn = ctx.message.segment("EVN")
    if encounter is None or evn is None or "end" in encounter.get("period", {}):
        return
    end = ctx.date_time(evn, 6) or ctx.date_time(evn, 2)
    if end:
        encounter.setdefault("period", {})["end"] = end
