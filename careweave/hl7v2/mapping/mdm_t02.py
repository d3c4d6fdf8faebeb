"""MDM_T02 (original document notification and content; also T04, T06, T08, T10) ->
DocumentReference (the IG's MDM_T02 map).

Rules:
1. TXA-12 (unique document number) is the masterIdentifier and the key (101 when empty).
2. status from TXA-19 (table 0275; empty: current), docStatus TXA-17 (table 0271), type TXA-2
   (table 0270), date TXA-6 else TXA-4, author TXA-9 else TXA-5, authenticator TXA-10, relatesTo
   ``replaces`` the parent document TXA-13 (T06/T10 replacements).
3. content: the text of the OBX segments (TX, FT, ST; lines joined with new lines) as one
   ``text/plain`` attachment, and each ED value as its own attachment. A document without content
   is an error (101 at OBX).
"""

from __future__ import annotations

import base64
from typing import Any

from careweave.hl7v2.errors import Hl7v2Error, Location
from careweave.hl7v2.mapping import datatypes
from careweave.hl7v2.mapping.adt import map_adt_patient, require
from careweave.hl7v2.mapping.context import Context, reference
from careweave.hl7v2.mapping.encounter import map_encounter
from careweave.hl7v2.mapping.identifiers import local_system
from careweave.hl7v2.mapping.observation import attachment, plain_text
from careweave.hl7v2.mapping.parties import practitioner
from careweave.hl7v2.message import Segment
from careweave.hl7v2.tables import DOCUMENT_AVAILABILITY, DOCUMENT_COMPLETION

__all__ = ["map_mdm_t02"]

Json = dict[str, Any]


def map_mdm_t02(ctx: Context) -> None:
    txa = require(ctx, "TXA")
    map_adt_patient(ctx)
    pv1 = ctx.message.segment("PV1")
    if pv1 is not None:
        map_encounter(ctx, pv1, ctx.message.segment("PV2"), None, required=False)
    number = txa.get(12)
    if not number:
        raise Hl7v2Error("no unique document number in TXA-12", "101", location=ctx.where(txa, 12))
    system = local_system(txa.get(12, 2) or ctx.facility, "document-id")
    document: Json = {
        "resourceType": "DocumentReference",
        "id": ctx.id("DocumentReference", system, number),
        "masterIdentifier": {"system": system, "value": number},
        "status": DOCUMENT_AVAILABILITY.get(txa.get(19).strip().upper(), "current"),
    }
    completion = DOCUMENT_COMPLETION.get(txa.get(17).strip().upper())
    if completion:
        document["docStatus"] = completion
    kind = datatypes.codeable(txa.first(2), "http://terminology.hl7.org/CodeSystem/v2-0270")
    if kind:
        document["type"] = kind
    document["subject"] = reference(ctx.patient)
    date = ctx.instant(txa, 6) or ctx.instant(txa, 4)
    if date:
        document["date"] = date
    _people(ctx, txa, document)
    _relates(ctx, txa, document)
    document["content"] = _content(ctx)
    if ctx.encounter:
        document["context"] = {"encounter": [reference(ctx.encounter)]}
    ctx.entries.put(document)


def _people(ctx: Context, txa: Segment, document: Json) -> None:
    authors = [r for r in (practitioner(ctx, rep) for rep in txa.repetitions(9)) if r]
    if not authors:
        authors = [r for r in (practitioner(ctx, rep) for rep in txa.repetitions(5)) if r]
    if authors:
        document["author"] = [reference(r) for r in authors]
    authenticator = practitioner(ctx, txa.first(10))
    if authenticator:
        document["authenticator"] = reference(authenticator)


def _relates(ctx: Context, txa: Segment, document: Json) -> None:
    parent = txa.get(13)
    if parent:
        system = local_system(txa.get(13, 2) or ctx.facility, "document-id")
        target = f"DocumentReference/{ctx.id('DocumentReference', system, parent)}"
        document["relatesTo"] = [{"code": "replaces", "target": reference(target)}]


def _content(ctx: Context) -> list[Json]:
    lines: list[str] = []
    forms: list[Json] = []
    for obx in ctx.message.segments_named("OBX"):
        kind = obx.get(2).strip().upper()
        for rep in obx.repetitions(5):
            if kind == "ED":
                found = attachment(rep)
                if found:
                    forms.append(found)
            else:
                lines.append(plain_text(rep, ctx.message.syntax))
    content = [{"attachment": form} for form in forms]
    if lines:
        data = base64.b64encode("\n".join(lines).encode("utf-8")).decode("ascii")
        text = {"contentType": "text/plain; charset=utf-8", "data": data}
        content.insert(0, {"attachment": text})
    if not content:
        raise Hl7v2Error("the document has no content (OBX-5)", "101", location=Location("OBX", 1, 5))
    return content
