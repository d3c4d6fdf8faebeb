"""Builders of the clinical FHIR R4 resources: pure functions from values to JSON-shaped dicts.

Rules:
1. Every builder returns a complete resource with the elements R4 requires (Observation.status
   and code, Encounter.status and class, Condition.subject, MedicationRequest.status, intent,
   medication[x] and subject, AllergyIntolerance.patient, Immunization.status, vaccineCode,
   patient and occurrence[x], DiagnosticReport.status and code) and the status codings the
   invariants ask for (con-3, ait-1, ait-2).
2. References are relative, ``Type/id``. Times are London wall-clock times (see ``clock``).
3. Quantities use UCUM (``system: http://unitsofmeasure.org``, ``code`` = ``unit``).
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from careweave.generate import clock
from careweave.generate.codes import LOINC, SNOMED, UCUM

__all__ = [
    "allergy",
    "condition",
    "diagnostic_report",
    "encounter",
    "flag",
    "immunization",
    "medication_request",
    "observation",
]

_ACT_CODE = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
_CLASS_DISPLAY = {
    "AMB": "ambulatory",
    "EMER": "emergency",
    "IMP": "inpatient encounter",
    "VR": "virtual",
}
_PARTICIPATION = "http://terminology.hl7.org/CodeSystem/v3-ParticipationType"
_OBS_CATEGORY = "http://terminology.hl7.org/CodeSystem/observation-category"
_INTERPRETATION = "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation"
_CONDITION_CLINICAL = "http://terminology.hl7.org/CodeSystem/condition-clinical"
_CONDITION_VERIFICATION = "http://terminology.hl7.org/CodeSystem/condition-ver-status"
_CONDITION_CATEGORY = "http://terminology.hl7.org/CodeSystem/condition-category"
_ALLERGY_CLINICAL = "http://terminology.hl7.org/CodeSystem/allergyintolerance-clinical"
_ALLERGY_VERIFICATION = "http://terminology.hl7.org/CodeSystem/allergyintolerance-verification"
_V2_0074 = "http://terminology.hl7.org/CodeSystem/v2-0074"
_DISCHARGE = "http://terminology.hl7.org/CodeSystem/discharge-disposition"


def _ref(kind: str, id_: str) -> dict[str, str]:
    return {"reference": f"{kind}/{id_}"}


def _concept(system: str, code: str, display: str) -> dict[str, Any]:
    return {"coding": [{"system": system, "code": code, "display": display}], "text": display}


def encounter(
    id_: str,
    *,
    patient: str,
    org: str,
    practitioner: str,
    cls: str,
    kind: tuple[str, str],
    start: datetime,
    end: datetime,
    visit_system: str,
    visit_number: str,
    reason: tuple[str, str] | None = None,
) -> dict[str, Any]:
    resource: dict[str, Any] = {
        "resourceType": "Encounter",
        "id": id_,
        "identifier": [{"system": visit_system, "value": visit_number}],
        "status": "finished",
        "class": {"system": _ACT_CODE, "code": cls, "display": _CLASS_DISPLAY[cls]},
        "type": [_concept(SNOMED, *kind)],
        "subject": _ref("Patient", patient),
        "participant": [
            {
                "type": [{"coding": [{"system": _PARTICIPATION, "code": "ATND", "display": "attender"}]}],
                "individual": _ref("Practitioner", practitioner),
            }
        ],
        "period": {"start": clock.fhir_datetime(start), "end": clock.fhir_datetime(end)},
    }
    if reason is not None:
        resource["reasonCode"] = [_concept(SNOMED, *reason)]
    if cls == "IMP":
        resource["hospitalization"] = {
            "dischargeDisposition": {"coding": [{"system": _DISCHARGE, "code": "home", "display": "Home"}]}
        }
    resource["serviceProvider"] = _ref("Organization", org)
    return resource


def _quantity(value: float, unit: str) -> dict[str, Any]:
    number: float | int = int(value) if float(value).is_integer() else value
    return {"value": number, "unit": unit, "system": UCUM, "code": unit}


def flag(value: float, low: float | None, high: float | None) -> str:
    """The v3 ObservationInterpretation code of a value against its range: H, L or N."""
    if high is not None and value > high:
        return "H"
    return "L" if low is not None and value < low else "N"


def _against_range(value: float, unit: str, low: float | None, high: float | None) -> dict[str, Any]:
    code = flag(value, low, high)
    display = {"H": "High", "L": "Low", "N": "Normal"}[code]
    bounds: dict[str, Any] = {}
    if low is not None:
        bounds["low"] = _quantity(low, unit)
    if high is not None:
        bounds["high"] = _quantity(high, unit)
    return {
        "interpretation": [{"coding": [{"system": _INTERPRETATION, "code": code, "display": display}]}],
        "referenceRange": [bounds],
    }


def observation(
    id_: str,
    *,
    patient: str,
    encounter_id: str | None,
    when: datetime,
    category: str,
    code: tuple[str, str],
    value: float | None = None,
    unit: str = "",
    components: tuple[tuple[tuple[str, str], float, str], ...] = (),
    low: float | None = None,
    high: float | None = None,
    issued: datetime | None = None,
) -> dict[str, Any]:
    """A vital sign or lab result: one quantity, or components (blood pressure)."""
    display = "Vital Signs" if category == "vital-signs" else "Laboratory"
    resource: dict[str, Any] = {
        "resourceType": "Observation",
        "id": id_,
        "status": "final",
        "category": [{"coding": [{"system": _OBS_CATEGORY, "code": category, "display": display}]}],
        "code": _concept(LOINC, *code),
        "subject": _ref("Patient", patient),
    }
    if encounter_id is not None:
        resource["encounter"] = _ref("Encounter", encounter_id)
    resource["effectiveDateTime"] = clock.fhir_datetime(when)
    if issued is not None:
        resource["issued"] = clock.fhir_instant(issued)
    if value is not None:
        resource["valueQuantity"] = _quantity(value, unit)
        if low is not None or high is not None:
            resource.update(_against_range(value, unit, low, high))
    if components:
        resource["component"] = [
            {"code": _concept(LOINC, *c_code), "valueQuantity": _quantity(c_value, c_unit)}
            for c_code, c_value, c_unit in components
        ]
    return resource


def diagnostic_report(
    id_: str,
    *,
    patient: str,
    encounter_id: str | None,
    org: str,
    code: tuple[str, str],
    service: str,
    when: datetime,
    issued: datetime,
    results: list[str],
) -> dict[str, Any]:
    section = {"HM": "Hematology", "CH": "Chemistry"}[service]
    resource: dict[str, Any] = {
        "resourceType": "DiagnosticReport",
        "id": id_,
        "status": "final",
        "category": [{"coding": [{"system": _V2_0074, "code": service, "display": section}]}],
        "code": _concept(LOINC, *code),
        "subject": _ref("Patient", patient),
    }
    if encounter_id is not None:
        resource["encounter"] = _ref("Encounter", encounter_id)
    resource["effectiveDateTime"] = clock.fhir_datetime(when)
    resource["issued"] = clock.fhir_instant(issued)
    resource["performer"] = [_ref("Organization", org)]
    resource["result"] = [_ref("Observation", r) for r in results]
    return resource


def condition(
    id_: str,
    *,
    patient: str,
    encounter_id: str | None,
    code: tuple[str, str],
    onset: date | datetime,
    recorded: date,
    abated: date | None,
    category: str,
    asserter: str | None = None,
) -> dict[str, Any]:
    clinical = "resolved" if abated is not None else "active"
    cat_display = "Problem List Item" if category == "problem-list-item" else "Encounter Diagnosis"
    resource: dict[str, Any] = {
        "resourceType": "Condition",
        "id": id_,
        "clinicalStatus": {
            "coding": [{"system": _CONDITION_CLINICAL, "code": clinical, "display": clinical.capitalize()}]
        },
        "verificationStatus": {
            "coding": [{"system": _CONDITION_VERIFICATION, "code": "confirmed", "display": "Confirmed"}]
        },
        "category": [{"coding": [{"system": _CONDITION_CATEGORY, "code": category, "display": cat_display}]}],
        "code": _concept(SNOMED, *code),
        "subject": _ref("Patient", patient),
    }
    if encounter_id is not None:
        resource["encounter"] = _ref("Encounter", encounter_id)
    resource["onsetDateTime"] = (
        clock.fhir_datetime(onset) if isinstance(onset, datetime) else clock.fhir_date(onset)
    )
    if abated is not None:
        resource["abatementDateTime"] = clock.fhir_date(abated)
    resource["recordedDate"] = clock.fhir_date(recorded)
    if asserter is not None:
        resource["asserter"] = _ref("Practitioner", asserter)
    return resource


def medication_request(
    id_: str,
    *,
    patient: str,
    encounter_id: str | None,
    medicine: tuple[str, str, str],
    authored: datetime,
    requester: str,
    active: bool,
    reason: str | None,
) -> dict[str, Any]:
    code, display, dosage = medicine
    resource: dict[str, Any] = {
        "resourceType": "MedicationRequest",
        "id": id_,
        "status": "active" if active else "completed",
        "intent": "order",
        "medicationCodeableConcept": _concept(SNOMED, code, display),
        "subject": _ref("Patient", patient),
    }
    if encounter_id is not None:
        resource["encounter"] = _ref("Encounter", encounter_id)
    resource["authoredOn"] = clock.fhir_datetime(authored)
    resource["requester"] = _ref("Practitioner", requester)
    if reason is not None:
        resource["reasonReference"] = [_ref("Condition", reason)]
    resource["dosageInstruction"] = [{"text": dosage}]
    return resource


def allergy(
    id_: str,
    *,
    patient: str,
    code: tuple[str, str],
    category: str,
    manifestation: tuple[str, str],
    onset: date,
    recorded: date,
) -> dict[str, Any]:
    return {
        "resourceType": "AllergyIntolerance",
        "id": id_,
        "clinicalStatus": _concept(_ALLERGY_CLINICAL, "active", "Active"),
        "verificationStatus": _concept(_ALLERGY_VERIFICATION, "confirmed", "Confirmed"),
        "type": "allergy",
        "category": [category],
        "criticality": "high" if manifestation[0] == "39579001" else "low",
        "code": _concept(SNOMED, *code),
        "patient": _ref("Patient", patient),
        "onsetDateTime": clock.fhir_date(onset),
        "recordedDate": clock.fhir_date(recorded),
        "reaction": [{"manifestation": [_concept(SNOMED, *manifestation)]}],
    }


def immunization(
    id_: str,
    *,
    patient: str,
    vaccine: tuple[str, str, str],
    when: datetime,
    performer: str | None,
) -> dict[str, Any]:
    code, display, product = vaccine
    resource: dict[str, Any] = {
        "resourceType": "Immunization",
        "id": id_,
        "status": "completed",
        "vaccineCode": {"coding": [{"system": SNOMED, "code": code, "display": display}], "text": product},
        "patient": _ref("Patient", patient),
        "occurrenceDateTime": clock.fhir_datetime(when),
        "primarySource": performer is not None,
    }
    if performer is not None:
        resource["performer"] = [{"actor": _ref("Practitioner", performer)}]
    return resource
