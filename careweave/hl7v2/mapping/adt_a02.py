"""ADT_A02 (transfer) -> Patient and Encounter in progress at its new location.

Rules:
1. As ADT_A01; PV1-3 is the new location (active), PV1-6 the prior one (completed).
2. A transfer is about a visit: PV1-19 is required.
"""

from __future__ import annotations

from careweave.hl7v2.mapping.adt import map_adt
from careweave.hl7v2.mapping.context import Context

__all__ = ["map_adt_a02"]


def map_adt_a02(ctx: Context) -> None:
    map_adt(ctx, visit_required=True, status="in-progress")
