"""ORM_O01 (general order) -> ServiceRequest per ORC/OBR group (the IG's ORM_O01 map).

Rules:
1. PID -> Patient (required: a ServiceRequest needs a subject), PV1 -> Encounter (optional).
2. Each order group (ORC with its OBR) -> ServiceRequest, a Specimen when the order names one,
   and Observations for any OBX (answers to order questions), keyed by the order.
"""

from __future__ import annotations

from careweave.hl7v2.mapping.adt import map_adt_patient
from careweave.hl7v2.mapping.context import Context
from careweave.hl7v2.mapping.encounter import map_encounter
from careweave.hl7v2.mapping.groups import order_groups
from careweave.hl7v2.mapping.observation import ObservationScope, map_results
from careweave.hl7v2.mapping.order import map_service_request, map_specimen

__all__ = ["map_orders", "map_orm_o01"]


def map_orders(ctx: Context) -> None:
    """Patient, Encounter, and one ServiceRequest per group (shared with OML_O21)."""
    map_adt_patient(ctx)
    pv1 = ctx.message.segment("PV1")
    if pv1 is not None:
        map_encounter(ctx, pv1, ctx.message.segment("PV2"), None, required=False)
    for group in order_groups(ctx.message):
        if group.orc is None and group.order is None:
            continue
        request = map_service_request(ctx, group)
        key = (request,)
        specimen = map_specimen(ctx, group, key)
        scope = ObservationScope(key=key, based_on=request, specimen=specimen)
        map_results(ctx, group.results, scope)


def map_orm_o01(ctx: Context) -> None:
    map_orders(ctx)
