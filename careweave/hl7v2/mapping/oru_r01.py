"""ORU_R01 (unsolicited observation result) -> DiagnosticReport, Observations, Specimen,
ServiceRequest (the IG's ORU_R01 map).

Rules:
1. PID -> Patient and PV1 -> Encounter (optional) as in ADT.
2. Each OBR group: a ServiceRequest (the order, basedOn), a Specimen (SPM, else OBR-15), the
   Observations of its OBX (keyed by the filler order number) and a DiagnosticReport that lists
   them; ED values become the report's presentedForm.
3. A result without a PID is an error (101 at PID); so is an OBX with no OBR before it.
"""

from __future__ import annotations

from careweave.hl7v2.errors import Hl7v2Error
from careweave.hl7v2.mapping.adt import map_adt_patient
from careweave.hl7v2.mapping.context import Context
from careweave.hl7v2.mapping.encounter import map_encounter
from careweave.hl7v2.mapping.groups import order_groups
from careweave.hl7v2.mapping.observation import ObservationScope, map_results
from careweave.hl7v2.mapping.order import (
    category_of,
    map_diagnostic_report,
    map_service_request,
    map_specimen,
    report_key,
)

__all__ = ["map_oru_r01"]


def map_oru_r01(ctx: Context) -> None:
    map_adt_patient(ctx)
    pv1 = ctx.message.segment("PV1")
    if pv1 is not None:
        map_encounter(ctx, pv1, ctx.message.segment("PV2"), None, required=False)
    for group in order_groups(ctx.message):
        obr = group.order
        if obr is None or obr.name != "OBR":
            seg = group.results[0].obx if group.results else group.orc
            if seg is None:
                continue
            raise Hl7v2Error("results without an OBR", "100", location=ctx.where(seg))
        key = report_key(ctx, group, obr)
        request = map_service_request(ctx, group)
        specimen = map_specimen(ctx, group, key)
        scope = ObservationScope(
            key=key,
            category=category_of(group),
            effective=ctx.date_time(obr, 7),
            issued=ctx.instant(obr, 22),
            based_on=request,
            specimen=specimen,
        )
        results, forms = map_results(ctx, group.results, scope)
        map_diagnostic_report(ctx, group, results, forms, {"based_on": request, "specimen": specimen})
