"""AL1 -> AllergyIntolerance and DG1 -> Condition (the IG's AL1 and DG1 maps), for ADT.

Rules:
1. AL1: code AL1-3 (101 when empty), category from AL1-2 (table 0127), criticality from AL1-4
   (table 0128: SV high, MO/MI low, U unable-to-assess), reaction manifestation AL1-5 (text),
   onset AL1-6; clinical status active. Keyed by the patient and the allergen.
2. DG1: code DG1-3 (101 when empty), category encounter-diagnosis, onset DG1-5, recordedDate
   DG1-19; it joins Encounter.diagnosis with use from DG1-6 (A admitting -> AD, F final -> DD)
   and rank DG1-15. Keyed by the encounter (else the patient) and the code.
"""

from __future__ import annotations

from typing import Any

from careweave.hl7v2.errors import Hl7v2Error
from careweave.hl7v2.mapping import datatypes
from careweave.hl7v2.mapping.context import Context, reference
from careweave.hl7v2.message import Segment

__all__ = ["map_allergy", "map_diagnosis"]

Json = dict[str, Any]
_ALLERGY_CATEGORY = {"DA": "medication", "FA": "food", "EA": "environment", "AA": "environment",
                     "PA": "environment", "LA": "environment", "MA": "environment"}  # fmt: skip
_CRITICALITY = {"SV": "high", "MO": "low", "MI": "low", "U": "unable-to-assess"}
_DIAGNOSIS_ROLE = {"A": ("AD", "Admission diagnosis"), "F": ("DD", "Discharge diagnosis")}
_CLINICAL = "http://terminology.hl7.org/CodeSystem/allergyintolerance-clinical"
_CONDITION_CATEGORY = "http://terminology.hl7.org/CodeSystem/condition-category"
_ROLE = "http://terminology.hl7.org/CodeSystem/diagnosis-role"


def map_allergy(ctx: Context, al1: Segment) -> str:
    code = datatypes.codeable(al1.first(3))
    if code is None:
        raise Hl7v2Error("AL1-3 (allergen) is empty", "101", location=ctx.where(al1, 3))
    allergen = al1.get(3, 1) or al1.get(3, 2)
    allergy: Json = {
        "resourceType": "AllergyIntolerance",
        "id": ctx.id("AllergyIntolerance", ctx.patient, al1.get(3, 3), allergen),
        "clinicalStatus": {"coding": [{"system": _CLINICAL, "code": "active"}]},
    }
    category = _ALLERGY_CATEGORY.get(al1.get(2).strip().upper())
    if category:
        allergy["category"] = [category]
    criticality = _CRITICALITY.get(al1.get(4).strip().upper())
    if criticality:
        allergy["criticality"] = criticality
    allergy["code"] = code
    allergy["patient"] = reference(ctx.patient)
    onset = ctx.date_time(al1, 6)
    if onset:
        allergy["onsetDateTime"] = onset
    reactions = [{"manifestation": [{"text": r.get(1)}]} for r in al1.repetitions(5) if r.get(1)]
    if reactions:
        allergy["reaction"] = reactions
    return ctx.entries.put(allergy)


def map_diagnosis(ctx: Context, dg1: Segment) -> str:
    code = datatypes.codeable(dg1.first(3), "http://hl7.org/fhir/sid/icd-10")
    if code is None:
        raise Hl7v2Error("DG1-3 (diagnosis code) is empty", "101", location=ctx.where(dg1, 3))
    scope = ctx.encounter or ctx.patient
    condition: Json = {
        "resourceType": "Condition",
        "id": ctx.id("Condition", scope, dg1.get(3, 3), dg1.get(3, 1) or dg1.get(3, 2)),
        "category": [{"coding": [{"system": _CONDITION_CATEGORY, "code": "encounter-diagnosis"}]}],
        "code": code,
        "subject": reference(ctx.patient),
    }
    if ctx.encounter:
        condition["encounter"] = reference(ctx.encounter)
    onset, recorded = ctx.date_time(dg1, 5), ctx.date_time(dg1, 19)
    if onset:
        condition["onsetDateTime"] = onset
    if recorded:
        condition["recordedDate"] = recorded
    ref = ctx.entries.put(condition)
    _link_to_encounter(ctx, dg1, ref)
    return ref


def _link_to_encounter(ctx: Context, dg1: Segment, ref: str) -> None:
    encounter = ctx.entries.get(ctx.encounter) if ctx.encounter else None
    if encounter is None:
        return
    diagnosis: Json = {"condition": reference(ref)}
    role = _DIAGNOSIS_ROLE.get(dg1.get(6).strip().upper())
    if role:
        diagnosis["use"] = {"coding": [{"system": _ROLE, "code": role[0], "display": role[1]}]}
    rank = dg1.get(15).strip()
    if rank.isdecimal() and 0 < int(rank) < 1000:
        diagnosis["rank"] = int(rank)
    encounter.setdefault("diagnosis", []).append(diagnosis)
