"""FHIRPath speed: every R4 search-parameter expression of a type, evaluated per resource.

Run as ``python bench/fhirpath_bench.py``. For a realistic (Synthea-shaped) Encounter,
Observation and Patient it compiles, once, every SearchParameter.expression whose base includes
the type (the multi-type union expressions included), then evaluates all of them per resource
with careweave's engine and with fhirpathpy, and prints resources per second for each.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from careweave.fhir.definitions import resources_of
from careweave.fhir.elements import ElementModel
from careweave.fhir.fhirpath import FhirPathEngine

PATIENT_REF = {"reference": "Patient/8f789d0b-3145-4cf2-8504-13159edaa747", "display": "Mr. Abe Ward"}
PRACTITIONER_REF = {
    "reference": "Practitioner/0000016d-3a85-4cca-0000-000000000096",
    "display": "Dr. Lida Gerhold",
}
ENCOUNTER: dict[str, Any] = {
    "resourceType": "Encounter",
    "id": "1b7a7ea7-3cf4-4a04-8ddb-f0c64b8b4c2a",
    "meta": {"versionId": "1", "lastUpdated": "2024-03-01T10:00:00Z",
             "profile": ["http://hl7.org/fhir/us/core/StructureDefinition/us-core-encounter"]},
    "identifier": [{"use": "official", "system": "https://github.com/synthetichealth/synthea",
                    "value": "1b7a7ea7-3cf4-4a04-8ddb-f0c64b8b4c2a"}],
    "status": "finished",
    "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "AMB"},
    "type": [{"coding": [{"system": "http://snomed.info/sct", "code": "185345009",
                          "display": "Encounter for symptom"}], "text": "Encounter for symptom"}],
    "subject": PATIENT_REF,
    "participant": [{
        "type": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ParticipationType",
                              "code": "PPRF", "display": "primary performer"}],
                  "text": "primary performer"}],
        "period": {"start": "2019-02-16T05:11:22-05:00", "end": "2019-02-16T05:26:22-05:00"},
        "individual": PRACTITIONER_REF,
    }],
    "period": {"start": "2019-02-16T05:11:22-05:00", "end": "2019-02-16T05:26:22-05:00"},
    "reasonCode": [{"coding": [{"system": "http://snomed.info/sct", "code": "444814009",
                                "display": "Viral sinusitis (disorder)"}]}],
    "hospitalization": {"dischargeDisposition": {"coding": [{
        "system": "http://www.nubc.org/patient-discharge", "code": "01",
        "display": "Discharged to home"}]}},
    "location": [{"location": {"reference": "Location/a1b2c3", "display": "PCP12345"}}],
    "serviceProvider": {"reference": "Organization/ef58ea08-d883-3957-8300-150554edc8fb",
                        "display": "HALLMARK HEALTH SYSTEM"},
}  # fmt: skip
OBSERVATION: dict[str, Any] = {
    "resourceType": "Observation",
    "id": "c3a0e2e1-0d0f-4b0e-9f7a-1d2a0f1c9e11",
    "meta": {"profile": ["http://hl7.org/fhir/StructureDefinition/vitalsigns"]},
    "status": "final",
    "category": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/observation-category",
                              "code": "vital-signs", "display": "vital-signs"}]}],
    "code": {"coding": [{"system": "http://loinc.org", "code": "85354-9",
                         "display": "Blood pressure panel with all children optional"}],
             "text": "Blood pressure panel with all children optional"},
    "subject": PATIENT_REF,
    "encounter": {"reference": "Encounter/1b7a7ea7-3cf4-4a04-8ddb-f0c64b8b4c2a"},
    "effectiveDateTime": "2019-02-16T05:11:22-05:00",
    "issued": "2019-02-16T05:11:22.239-05:00",
    "performer": [PRACTITIONER_REF],
    "component": [
        {"code": {"coding": [{"system": "http://loinc.org", "code": "8462-4",
                              "display": "Diastolic Blood Pressure"}]},
         "valueQuantity": {"value": 82, "unit": "mm[Hg]", "system": "http://unitsofmeasure.org",
                           "code": "mm[Hg]"}},
        {"code": {"coding": [{"system": "http://loinc.org", "code": "8480-6",
                              "display": "Systolic Blood Pressure"}]},
         "valueQuantity": {"value": 131, "unit": "mm[Hg]", "system": "http://unitsofmeasure.org",
                           "code": "mm[Hg]"}},
    ],
}  # fmt: skip
PATIENT: dict[str, Any] = {
    "resourceType": "Patient",
    "id": "8f789d0b-3145-4cf2-8504-13159edaa747",
    "text": {"status": "generated", "div": "<div xmlns=\"http://www.w3.org/1999/xhtml\">Abe Ward</div>"},
    "extension": [
        {"url": "http://hl7.org/fhir/us/core/StructureDefinition/us-core-race",
         "extension": [{"url": "ombCategory", "valueCoding": {"system": "urn:oid:2.16.840.1.113883.6.238",
                                                              "code": "2106-3", "display": "White"}},
                       {"url": "text", "valueString": "White"}]},
        {"url": "http://hl7.org/fhir/StructureDefinition/patient-mothersMaidenName",
         "valueString": "Lavonia Kohler"},
        {"url": "http://hl7.org/fhir/StructureDefinition/patient-birthPlace",
         "valueAddress": {"city": "Boston", "state": "Massachusetts", "country": "US"}},
    ],
    "identifier": [
        {"system": "https://github.com/synthetichealth/synthea",
         "value": "8f789d0b-3145-4cf2-8504-13159edaa747"},
        {"type": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0203", "code": "MR"}]},
         "system": "http://hospital.smarthealthit.org", "value": "8f789d0b-3145-4cf2-8504-13159edaa747"},
        {"type": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0203", "code": "SS"}]},
         "system": "http://hl7.org/fhir/sid/us-ssn", "value": "999-41-2466"},
    ],
    "name": [{"use": "official", "family": "Ward", "given": ["Abe", "Jerome"], "prefix": ["Mr."]}],
    "telecom": [{"system": "phone", "value": "555-873-2206", "use": "home"}],
    "gender": "male",
    "birthDate": "1961-04-13",
    "address": [{"extension": [{"url": "http://hl7.org/fhir/StructureDefinition/geolocation",
                                "extension": [{"url": "latitude", "valueDecimal": 42.36},
                                              {"url": "longitude", "valueDecimal": -71.05}]}],
                 "line": ["1012 Bogan Green"], "city": "Boston", "state": "MA",
                 "postalCode": "02108", "country": "US"}],
    "maritalStatus": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-MaritalStatus",
                                  "code": "M", "display": "Married"}], "text": "Married"},
    "multipleBirthBoolean": False,
    "communication": [{"language": {"coding": [{"system": "urn:ietf:bcp:47", "code": "en-US"}]}}],
    "generalPractitioner": [PRACTITIONER_REF],
    "managingOrganization": {"reference": "Organization/ef58ea08-d883-3957-8300-150554edc8fb"},
}  # fmt: skip


def expressions_for(resource_type: str) -> list[str]:
    out = []
    for sp in resources_of("search-parameters"):
        if sp.get("resourceType") != "SearchParameter" or not sp.get("expression"):
            continue
        if resource_type in sp.get("base", ()) or "Resource" in sp.get("base", ()):
            out.append(sp["expression"])
    return out


def stub_resolve(inputs: list[Any]) -> list[Any]:
    """fhirpathpy has no resolve(); give it the same reference stubs careweave makes."""
    from fhirpathpy.engine.nodes import ResourceNode

    out = []
    for item in inputs:
        ref = item.get("reference") if isinstance(item, dict) else item
        if isinstance(ref, str) and "/" in ref:
            rtype, rid = ref.split("/_history/")[0].rsplit("/", 2)[-2:]
            out.append(ResourceNode.create_node({"resourceType": rtype, "id": rid}, rtype))
    return out


FHIRPATHPY_OPTIONS = {"userInvocationTable": {"resolve": {"fn": stub_resolve, "arity": {0: []}}}}


def rate(run: Callable[[dict[str, Any]], object], resource: dict[str, Any], seconds: float) -> float:
    run(resource)
    count, start = 0, time.perf_counter()
    while (elapsed := time.perf_counter() - start) < seconds:
        for _ in range(10):
            run(resource)
        count += 10
    return count / elapsed


def main() -> None:
    import fhirpathpy
    from fhirpathpy.models import models

    model = ElementModel.from_structure_definitions(
        resources_of("profiles-types") + resources_of("profiles-resources")
    )
    engine = FhirPathEngine(model)
    seconds = float(sys.argv[1]) if len(sys.argv) > 1 else 2.0
    print(f"{'resource':<12} {'exprs':>5} {'careweave/s':>12} {'fhirpathpy/s':>13} {'speed-up':>9}")
    for resource in (ENCOUNTER, OBSERVATION, PATIENT):
        texts = expressions_for(resource["resourceType"])
        ours = [engine.compile(t) for t in texts]
        theirs = [fhirpathpy.compile(t, models["r4"], FHIRPATHPY_OPTIONS) for t in texts]

        def run_ours(r: dict[str, Any], compiled: list[Any] = ours) -> object:
            return [c.evaluate(r) for c in compiled]

        def run_theirs(r: dict[str, Any], compiled: list[Any] = theirs) -> object:
            out = []
            for c in compiled:
                try:
                    out.append(c(r))
                except Exception as exc:  # fhirpathpy refuses some R4 expressions
                    out.append(exc)
            return out

        a = rate(run_ours, resource, seconds)
        b = rate(run_theirs, resource, seconds)
        refused = sum(isinstance(x, Exception) for x in run_theirs(resource))  # type: ignore[union-attr]
        print(
            f"{resource['resourceType']:<12} {len(texts):>5} {a:>12.0f} {b:>13.0f} {a / b:>8.1f}x"
            + (f"  (fhirpathpy raised on {refused})" if refused else "")
        )


if __name__ == "__main__":
    main()
