"""VXU_V04 (unsolicited vaccination record update) -> Immunization per RXA (the IG's VXU_V04
map).

Rules:
1. Each ORC/RXA group -> Immunization keyed by the filler order number (ORC-3), else by the
   patient, vaccine and date. vaccineCode RXA-5 and occurrence RXA-3 are required (101).
2. status: RXA-21 action code D -> entered-in-error, else RXA-20 (table 0322; empty:
   completed); statusReason RXA-18 when not done; primarySource from RXA-9 (NIP001 ``00`` new
   record -> true, other codes -> false).
3. doseQuantity RXA-6/7 (999 means unknown: left out), lotNumber RXA-15, expirationDate RXA-16,
   route RXR-1, site RXR-2, performer RXA-10 (function AP) and ORC-12 (OP), notes from NTE.
4. OBX of the group -> Observations keyed by the Immunization.
"""

from __future__ import annotations

from typing import Any

from careweave.hl7v2.errors import Hl7v2Error
from careweave.hl7v2.mapping import datatypes
from careweave.hl7v2.mapping.adt import map_adt_patient
from careweave.hl7v2.mapping.context import Context, reference
from careweave.hl7v2.mapping.encounter import map_encounter
from careweave.hl7v2.mapping.groups import OrderGroup, order_groups
from careweave.hl7v2.mapping.observation import ObservationScope, map_results
from careweave.hl7v2.mapping.order import order_numbers
from careweave.hl7v2.mapping.parties import practitioner
from careweave.hl7v2.message import Segment
from careweave.hl7v2.tables import IMMUNIZATION_COMPLETION

__all__ = ["map_vxu_v04"]

Json = dict[str, Any]
_FUNCTION = "http://terminology.hl7.org/CodeSystem/v2-0443"


def map_vxu_v04(ctx: Context) -> None:
    map_adt_patient(ctx)
    pv1 = ctx.message.segment("PV1")
    if pv1 is not None:
        map_encounter(ctx, pv1, ctx.message.segment("PV2"), None, required=False)
    for group in order_groups(ctx.message):
        if group.order is not None and group.order.name == "RXA":
            ref = _immunization(ctx, group, group.order)
            map_results(ctx, group.results, ObservationScope(key=(ref,)))


def _immunization(ctx: Context, group: OrderGroup, rxa: Segment) -> str:
    vaccine = datatypes.codeable(rxa.first(5))
    when = ctx.date_time(rxa, 3)
    if vaccine is None or when is None:
        field_no = 5 if vaccine is None else 3
        raise Hl7v2Error(f"RXA-{field_no} is required", "101", location=ctx.where(rxa, field_no))
    placer, filler = order_numbers(ctx, group)
    if filler is not None:
        key: tuple[str, ...] = (filler["system"], filler["value"])
    else:
        key = (ctx.patient, rxa.get(5, 3), rxa.get(5, 1), rxa.get(3))
    immunization: Json = {"resourceType": "Immunization", "id": ctx.id("Immunization", *key)}
    identifiers = [n for n in (placer, filler) if n]
    if identifiers:
        immunization["identifier"] = identifiers
    _status(rxa, immunization)
    immunization["vaccineCode"] = vaccine
    immunization["patient"] = reference(ctx.patient)
    if ctx.encounter:
        immunization["encounter"] = reference(ctx.encounter)
    immunization["occurrenceDateTime"] = when
    source = rxa.get(9).strip()
    if source:
        immunization["primarySource"] = source == "00"
    _product(ctx, group, rxa, immunization)
    _performers(ctx, group, rxa, immunization)
    notes = [{"text": n.get(3)} for n in group.notes if n.get(3)]
    if notes:
        immunization["note"] = notes
    return ctx.entries.put(immunization)


def _status(rxa: Segment, immunization: Json) -> None:
    if rxa.get(21).strip().upper() == "D":
        immunization["status"] = "entered-in-error"
        return
    status = IMMUNIZATION_COMPLETION.get(rxa.get(20).strip().upper(), "completed")
    immunization["status"] = status
    reason = datatypes.codeable(rxa.first(18))
    if status == "not-done" and reason:
        immunization["statusReason"] = reason


def _product(ctx: Context, group: OrderGroup, rxa: Segment, immunization: Json) -> None:
    lot = rxa.get(15)
    if lot:
        immunization["lotNumber"] = lot
    expires = ctx.date(rxa, 16)
    if expires:
        immunization["expirationDate"] = expires
    if group.routes:
        rxr = group.routes[0]
        for key, field_no in (("site", 2), ("route", 1)):
            concept = datatypes.codeable(rxr.first(field_no))
            if concept:
                immunization[key] = concept
    amount = datatypes.number(rxa.get(6))
    if amount is not None and amount != 999:
        unit = rxa.first(7)
        dose: Json = {"value": amount}
        if unit.get(2) or unit.get(1):
            dose["unit"] = unit.get(2) or unit.get(1)
        if unit.get(1) and unit.get(3).upper() == "UCUM":
            dose["system"], dose["code"] = "http://unitsofmeasure.org", unit.get(1)
        immunization["doseQuantity"] = dose


def _performers(ctx: Context, group: OrderGroup, rxa: Segment, immunization: Json) -> None:
    performers = []
    sources = [(rxa.first(10), "AP", "Administering Provider")]
    if group.orc is not None:
        sources.append((group.orc.first(12), "OP", "Ordering Provider"))
    for rep, code, display in sources:
        ref = practitioner(ctx, rep)
        if ref:
            function = {"coding": [{"system": _FUNCTION, "code": code, "display": display}]}
            performers.append({"function": function, "actor": reference(ref)})
    if performers:
        immunization["performer"] = performers
