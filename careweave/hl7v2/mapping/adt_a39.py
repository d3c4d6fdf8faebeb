"""ADT_A39 (A40 merge patient, also A39/A41/A42) -> two Patients. Not in the IG: careweave's
documented behaviour.

Rules:
1. PID is the surviving record: it is PUT as usual, with ``link`` type ``replaces`` pointing at
   each retired record.
2. Each MRG-1 (prior patient identifier list) names a retired record of the same facility; its id
   is computed by the same record-key rule as any Patient, so it is the Patient earlier messages
   made. It is PUT with ``active: false``, the MRG-1 identifiers, the prior name MRG-7 if given,
   and ``link`` type ``replaced-by`` pointing at the survivor; where the record is stored, the
   writer keeps its demographics (rule 5).
3. A PV1 with a visit number moves that visit to the survivor (its Encounter is PUT with the
   survivor as subject).
4. MRG without an identifier is an error (101 at MRG-1).
5. What a merge says outlives later messages: the service writes every mapped Patient through
   :func:`merge_patient` with the stored version. The links stored stay (a later A08 on the
   survivor keeps ``replaces``; a later message about a retired record keeps ``replaced-by`` and
   ``active: false``); a retired record (a PUT carrying ``replaced-by``) keeps its stored
   demographics and only gains ``active: false``, the link and any MRG identifier it lacked. A
   retired record nobody stored before is written as the mapping says (rule 2).
"""

from __future__ import annotations

from typing import Any

from careweave.hl7v2.errors import Hl7v2Error
from careweave.hl7v2.mapping import datatypes
from careweave.hl7v2.mapping.adt import map_adt_patient, require
from careweave.hl7v2.mapping.context import Context, reference
from careweave.hl7v2.mapping.encounter import map_encounter
from careweave.hl7v2.mapping.identifiers import patient_identifier
from careweave.hl7v2.mapping.patient import record_key
from careweave.hl7v2.message import Segment

__all__ = ["map_adt_a39", "merge_patient"]

Json = dict[str, Any]


def map_adt_a39(ctx: Context) -> None:
    survivor_ref = map_adt_patient(ctx)
    survivor = ctx.entries.get(survivor_ref)
    assert survivor is not None
    mrgs = ctx.message.segments_named("MRG") or (require(ctx, "MRG"),)
    links = [_retire(ctx, mrg, survivor_ref) for mrg in mrgs]
    replaces = [{"other": reference(ref), "type": "replaces"} for ref in links if ref != survivor_ref]
    if replaces:
        survivor["link"] = replaces
    pv1 = ctx.message.segment("PV1")
    if pv1 is not None:
        map_encounter(ctx, pv1, ctx.message.segment("PV2"), None, required=False)


def _retire(ctx: Context, mrg: Segment, survivor_ref: str) -> str:
    identifiers: list[Json] = []
    for field_no in (1, 4):
        for rep in mrg.repetitions(field_no):
            identifier = patient_identifier(rep, ctx.facility)
            if identifier is not None and identifier not in identifiers:
                identifiers.append(identifier)
    if not identifiers:
        raise Hl7v2Error("MRG-1 names no prior patient identifier", "101", location=ctx.where(mrg, 1))
    system, value = record_key(identifiers)
    retired: Json = {
        "resourceType": "Patient",
        "id": ctx.id("Patient", system, value),
        "identifier": identifiers,
        "active": False,
    }
    name = datatypes.human_name(mrg.first(7))
    if name:
        retired["name"] = [name]
    retired["managingOrganization"] = reference(ctx.organization)
    retired["link"] = [{"other": reference(survivor_ref), "type": "replaced-by"}]
    if f"Patient/{retired['id']}" == survivor_ref:
        return survivor_ref  # a merge into itself: nothing to retire
    return ctx.entries.put(retired)


def merge_patient(mapped: Json, stored: Json | None) -> Json:
    """The Patient to write for ``mapped`` when ``stored`` is the current version (rule 5);
    ``mapped`` itself when the stored version adds nothing."""
    if stored is None:
        return mapped
    stored_links = [link for link in stored.get("link", ()) if isinstance(link, dict)]
    retiring = any(link.get("type") == "replaced-by" for link in mapped.get("link", ()))
    if not retiring:
        links = _union(mapped.get("link", []), stored_links)
        if len(links) == len(mapped.get("link", ())):
            return mapped
        out = {**mapped, "link": links}
        if stored.get("active") is False and "active" not in mapped and _retired(stored_links):
            out["active"] = False  # a later message about a retired record does not revive it
        return out
    merged = {k: v for k, v in stored.items() if k != "meta"}
    meta = {k: v for k, v in stored.get("meta", {}).items() if k not in ("versionId", "lastUpdated")}
    if meta:
        merged["meta"] = meta
    merged["id"] = mapped["id"]
    merged["active"] = False
    merged["identifier"] = _union(stored.get("identifier", []), mapped.get("identifier", []))
    for key in ("name", "managingOrganization"):
        if key not in merged and key in mapped:
            merged[key] = mapped[key]
    merged["link"] = _union(mapped["link"], stored_links)
    return merged


def _retired(links: list[Json]) -> bool:
    return any(link.get("type") == "replaced-by" for link in links)


def _union(first: list[Json], then: list[Json]) -> list[Json]:
    """``first``, then the items of ``then`` not in it (equal as JSON; links by other and type)."""
    out = list(first)
    for item in then:
        if not any(_same(item, have) for have in out):
            out.append(item)
    return out


def _same(a: Json, b: Json) -> bool:
    if "other" in a and "other" in b:
        same_other = a["other"].get("reference") == b["other"].get("reference")
        return bool(same_other and a.get("type") == b.get("type"))
    if "value" in a and "value" in b:  # identifiers
        return bool(a.get("system") == b.get("system") and a["value"] == b["value"])
    return a == b
