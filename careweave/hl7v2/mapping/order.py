"""ORC/OBR -> ServiceRequest, DiagnosticReport and Specimen (the IG's ORC, OBR, SPM maps).

Rules:
1. Order numbers: placer ORC-2 else OBR-2, filler ORC-3 else OBR-3 (EI: the number, then the
   namespace, else the sending facility), as identifiers of type PLAC and FILL in
   ``https://fhir.<namespace>.nhs.uk/Id/placer-order-number`` (``filler-order-number``).
2. The ServiceRequest is keyed by the placer number (the orderer's), else the filler number;
   the DiagnosticReport and the Observations by the filler number, else the placer number. An
   order with neither is an error (101 at OBR-3).
3. ServiceRequest: status from ORC-5 (table 0038), else ORC-1 (table 0119), else active; intent
   order; code OBR-4 (else the ORC's nothing: ``text`` of OBR-4.2); priority from TQ1-9, OBR-27.6
   or ORC-7.6; authoredOn ORC-9; requester ORC-12 else OBR-16; reasonCode OBR-31; occurrence
   TQ1-7 else OBR-7; notes from the group's NTE.
4. DiagnosticReport: status OBR-25 (table 0123; empty: final when every OBX is final, else
   partial), category OBR-24 (table 0074), code OBR-4, effective OBR-7, issued OBR-22,
   resultsInterpreter OBR-32, result the group's Observations, presentedForm the ED values.
5. Specimen: from SPM (SPM-2 id, SPM-4 type, SPM-17 collected, SPM-18 received), else from
   OBR-15 (specimen source, v2.4) with OBR-7 as the collection time; keyed by the order.
"""

from __future__ import annotations

from typing import Any

from careweave.hl7v2.errors import Hl7v2Error
from careweave.hl7v2.mapping import datatypes
from careweave.hl7v2.mapping.context import Context, reference
from careweave.hl7v2.mapping.groups import OrderGroup
from careweave.hl7v2.mapping.identifiers import V2_0203, local_system
from careweave.hl7v2.mapping.parties import practitioner
from careweave.hl7v2.message import Segment
from careweave.hl7v2.tables import (
    DIAGNOSTIC_SECTION_CATEGORY,
    ORDER_CONTROL_STATUS,
    ORDER_STATUS,
    PRIORITY,
    RESULT_STATUS,
)

__all__ = [
    "OrderNumbers",
    "category_of",
    "map_diagnostic_report",
    "map_service_request",
    "map_specimen",
    "order_numbers",
    "report_key",
]

Json = dict[str, Any]
OrderNumbers = tuple[Json | None, Json | None]  # placer, filler identifiers
_V2 = "http://terminology.hl7.org/CodeSystem/v2-"


def _number(ctx: Context, segs: tuple[Segment | None, ...], field_no: int, kind: str) -> Json | None:
    for seg in segs:
        if seg is not None and seg.get(field_no):
            system = local_system(seg.get(field_no, 2) or ctx.facility, f"{kind}-order-number")
            code = "PLAC" if kind == "placer" else "FILL"
            return {
                "type": {"coding": [{"system": V2_0203, "code": code}]},
                "system": system,
                "value": seg.get(field_no),
            }
    return None


def order_numbers(ctx: Context, group: OrderGroup) -> OrderNumbers:
    """(placer, filler) identifiers of a group (rule 1)."""
    segs = (group.orc, group.order if group.order is not None and group.order.name == "OBR" else None)
    return _number(ctx, segs, 2, "placer"), _number(ctx, segs, 3, "filler")


def _key(numbers: OrderNumbers, filler_first: bool, ctx: Context, seg: Segment) -> tuple[str, str]:
    placer, filler = numbers
    first, second = (filler, placer) if filler_first else (placer, filler)
    chosen = first or second
    if chosen is None:
        raise Hl7v2Error("no placer or filler order number", "101", location=ctx.where(seg, 3))
    return chosen["system"], chosen["value"]


def report_key(ctx: Context, group: OrderGroup, seg: Segment) -> tuple[str, str]:
    return _key(order_numbers(ctx, group), True, ctx, seg)


def _priority(group: OrderGroup) -> str | None:
    candidates = [t.get(9) for t in group.timing]
    if group.order is not None and group.order.name == "OBR":
        candidates.append(group.order.get(27, 6))
    if group.orc is not None:
        candidates.append(group.orc.get(7, 6))
    for code in candidates:
        if code.strip().upper() in PRIORITY:
            return PRIORITY[code.strip().upper()]
    return None


def _status(group: OrderGroup) -> str:
    orc = group.orc
    if orc is not None:
        found = ORDER_STATUS.get(orc.get(5).upper()) or ORDER_CONTROL_STATUS.get(orc.get(1).upper())
        if found:
            return found
    return "active"


def map_service_request(ctx: Context, group: OrderGroup) -> str:
    """Put the ServiceRequest of an order group (rule 3)."""
    seg = group.order or group.orc
    assert seg is not None
    numbers = order_numbers(ctx, group)
    request: Json = {
        "resourceType": "ServiceRequest",
        "id": ctx.id("ServiceRequest", *_key(numbers, False, ctx, seg)),
    }
    request["identifier"] = [n for n in numbers if n]
    request["status"] = _status(group)
    request["intent"] = "order"
    obr = group.order if group.order is not None and group.order.name == "OBR" else None
    priority = _priority(group)
    if priority:
        request["priority"] = priority
    code = datatypes.codeable(obr.first(4)) if obr is not None else None
    if code:
        request["code"] = code
    request["subject"] = reference(ctx.patient)
    if ctx.encounter:
        request["encounter"] = reference(ctx.encounter)
    _timing(ctx, group, obr, request)
    _requester(ctx, group, obr, request)
    if obr is not None:
        reasons = [c for c in (datatypes.codeable(r) for r in obr.repetitions(31)) if c]
        if reasons:
            request["reasonCode"] = reasons
    notes = [{"text": n.get(3)} for n in group.notes if n.get(3)]
    if notes:
        request["note"] = notes
    return ctx.entries.put(request)


def _timing(ctx: Context, group: OrderGroup, obr: Segment | None, request: Json) -> None:
    when = next((ctx.date_time(t, 7) for t in group.timing if t.get(7)), None)
    if when is None and obr is not None:
        when = ctx.date_time(obr, 7)
    if when:
        request["occurrenceDateTime"] = when
    if group.orc is not None:
        authored = ctx.date_time(group.orc, 9)
        if authored:
            request["authoredOn"] = authored


def _requester(ctx: Context, group: OrderGroup, obr: Segment | None, request: Json) -> None:
    candidates = [group.orc.first(12)] if group.orc is not None else []
    if obr is not None:
        candidates.append(obr.first(16))
    for rep in candidates:
        ref = practitioner(ctx, rep) if rep else None
        if ref:
            request["requester"] = reference(ref)
            return


def map_specimen(ctx: Context, group: OrderGroup, key: tuple[str, ...]) -> str | None:
    """Put the Specimen of a group (rule 5), or None when the group names none."""
    spm = group.specimens[0] if group.specimens else None
    obr = group.order if group.order is not None and group.order.name == "OBR" else None
    specimen: Json = {"resourceType": "Specimen", "id": ctx.id("Specimen", *key)}
    if spm is not None:
        number = spm.get(2, 1) or spm.get(2, 2)
        if number:
            system = local_system(spm.get(2, 2) or ctx.facility, "specimen-id")
            specimen["identifier"] = [{"system": system, "value": number}]
        kind = datatypes.codeable(spm.first(4), _V2 + "0487")
        collected, received = ctx.date_time(spm, 17), ctx.instant(spm, 18)
    elif obr is not None and obr.get(15):
        kind = datatypes.codeable(obr.first(15), _V2 + "0070")
        collected, received = ctx.date_time(obr, 7), ctx.instant(obr, 14)
        if kind is None and obr.get(15, 1, 2):
            kind = {"text": obr.get(15, 1, 2)}
    else:
        return None
    if kind:
        specimen["type"] = kind
    specimen["subject"] = reference(ctx.patient)
    if received:
        specimen["receivedTime"] = received
    if collected:
        specimen["collection"] = {"collectedDateTime": collected}
    return ctx.entries.put(specimen)


def map_diagnostic_report(
    ctx: Context, group: OrderGroup, results: list[str], forms: list[Json], extra: dict[str, str | None]
) -> str:
    """Put the DiagnosticReport of an ORU order group (rule 4)."""
    obr = group.order
    assert obr is not None
    report: Json = {
        "resourceType": "DiagnosticReport",
        "id": ctx.id("DiagnosticReport", *report_key(ctx, group, obr)),
    }
    report["identifier"] = [n for n in order_numbers(ctx, group) if n]
    if extra.get("based_on"):
        report["basedOn"] = [reference(str(extra["based_on"]))]
    report["status"] = _report_status(group)
    section = obr.get(24).strip().upper()
    if section:
        coding = {"system": _V2 + "0074", "code": section}
        report["category"] = [{"coding": [coding]}]
    code = datatypes.codeable(obr.first(4))
    if code is None:
        raise Hl7v2Error("OBR-4 (universal service identifier) is empty", "101", location=ctx.where(obr, 4))
    report["code"] = code
    report["subject"] = reference(ctx.patient)
    if ctx.encounter:
        report["encounter"] = reference(ctx.encounter)
    effective, issued = ctx.date_time(obr, 7), ctx.instant(obr, 22)
    if effective:
        report["effectiveDateTime"] = effective
    if issued:
        report["issued"] = issued
    interpreters = [r for r in (practitioner(ctx, rep) for rep in obr.repetitions(32)) if r]
    if interpreters:
        report["resultsInterpreter"] = [reference(r) for r in interpreters]
    if extra.get("specimen"):
        report["specimen"] = [reference(str(extra["specimen"]))]
    if results:
        report["result"] = [reference(r) for r in results]
    if forms:
        report["presentedForm"] = forms
    return ctx.entries.put(report)


def category_of(group: OrderGroup) -> str | None:
    """observation-category of a group's results, from OBR-24 (table 0074)."""
    if group.order is None or group.order.name != "OBR":
        return None
    return DIAGNOSTIC_SECTION_CATEGORY.get(group.order.get(24).strip().upper())


def _report_status(group: OrderGroup) -> str:
    assert group.order is not None
    found = RESULT_STATUS.get(group.order.get(25).strip().upper())
    if found:
        return found
    finals = [r.obx.get(11).strip().upper() in ("F", "C", "U", "V") for r in group.results]
    return "final" if finals and all(finals) else "partial" if finals else "registered"
