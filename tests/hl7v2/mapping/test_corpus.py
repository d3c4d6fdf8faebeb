"""Every corpus message maps to a valid FHIR R4 transaction Bundle, with what the v2-to-FHIR IG
(hl7.fhir.uv.v2mappings 1.0.0) and careweave's documented rules say it should hold.

https://build.fhir.org/ig/HL7/v2-to-fhir/ (message maps), http://hl7.org/fhir/R4/bundle.html
"""

from __future__ import annotations

import base64
from collections import Counter
from typing import Any

import pytest

from careweave.hl7v2 import is_batch, parse, split_batch
from careweave.hl7v2.mapping import map_message, structure_of
from careweave.hl7v2.mapping.identifiers import NHS_NUMBER_SYSTEM, ODS_SYSTEM
from tests.hl7v2.conftest import CORPUS, corpus_files


def _messages(path):
    data = path.read_bytes()
    return list(split_batch(data).messages) if is_batch(data) else [data]


def _map(name: str, options) -> dict[str, Any]:
    return map_message(parse((CORPUS / name).read_bytes()), options)


def _one(bundle: dict[str, Any], kind: str) -> dict[str, Any]:
    found = [e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == kind]
    assert len(found) == 1, (kind, len(found))
    return found[0]


def _all(bundle: dict[str, Any], kind: str) -> list[dict[str, Any]]:
    return [e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == kind]


@pytest.mark.parametrize("path", corpus_files(), ids=lambda p: p.name)
def test_every_corpus_message_maps_to_a_valid_bundle(path, options, validator):
    for raw in _messages(path):
        bundle = map_message(parse(raw), options)
        assert bundle["resourceType"] == "Bundle" and bundle["type"] == "transaction"
        urls = [e["request"]["url"] for e in bundle["entry"]]
        assert len(urls) == len(set(urls))
        for entry in bundle["entry"]:
            resource = entry["resource"]
            assert entry["request"] == {
                "method": "PUT",
                "url": f"{resource['resourceType']}/{resource['id']}",
            }
            errors = [i for i in validator.validate(resource) if i.is_error]
            assert errors == [], (resource["resourceType"], errors)
        refs = _references(bundle)
        assert refs <= set(urls), refs - set(urls)  # every reference resolves inside the Bundle
        assert len(_all(bundle, "Provenance")) == 1


def _references(value: Any) -> set[str]:
    if isinstance(value, dict):
        found = {value["reference"]} if isinstance(value.get("reference"), str) else set()
        return found.union(*(_references(v) for v in value.values()))
    if isinstance(value, list):
        return set().union(*(_references(v) for v in value))
    return set()


EXPECTED = [
    (
        "adt_a01.hl7",
        "ADT_A01",
        {
            "Patient": 1,
            "Encounter": 1,
            "Observation": 2,
            "AllergyIntolerance": 1,
            "Condition": 1,
            "Organization": 2,
        },
    ),
    ("adt_a02.hl7", "ADT_A02", {"Patient": 1, "Encounter": 1, "Location": 2}),
    ("adt_a03.hl7", "ADT_A03", {"Patient": 1, "Encounter": 1}),
    ("adt_a04.hl7", "ADT_A01", {"Patient": 1, "Encounter": 1}),
    ("adt_a05.hl7", "ADT_A05", {"Patient": 1, "Encounter": 1}),
    ("adt_a08.hl7", "ADT_A01", {"Patient": 1, "Encounter": 1}),
    ("adt_a11.hl7", "ADT_A09", {"Patient": 1, "Encounter": 1}),
    ("adt_a13.hl7", "ADT_A01", {"Patient": 1, "Encounter": 1}),
    ("adt_a28.hl7", "ADT_A05", {"Patient": 1, "Encounter": 0}),
    ("adt_a31_v23.hl7", "ADT_A05", {"Patient": 1, "Encounter": 0}),
    ("adt_a40.hl7", "ADT_A39", {"Patient": 2}),
    ("oru_r01.hl7", "ORU_R01", {"DiagnosticReport": 1, "Observation": 6, "Specimen": 1, "ServiceRequest": 1}),
    ("oru_r01_custom_delimiters.hl7", "ORU_R01", {"DiagnosticReport": 1, "Observation": 2}),
    ("orm_o01.hl7", "ORM_O01", {"ServiceRequest": 1, "Specimen": 1}),
    ("oml_o21.hl7", "OML_O21", {"ServiceRequest": 1, "Specimen": 1}),
    ("siu_s12.hl7", "SIU_S12", {"Appointment": 1, "Location": 1}),
    ("mdm_t02.hl7", "MDM_T02", {"DocumentReference": 1}),
    ("vxu_v04.hl7", "VXU_V04", {"Immunization": 1, "Observation": 1}),
]


@pytest.mark.parametrize(("name", "structure", "counts"), EXPECTED, ids=[e[0] for e in EXPECTED])
def test_structure_and_resources(name, structure, counts, options):
    message = parse((CORPUS / name).read_bytes())
    assert structure_of(message) == structure
    have = Counter(e["resource"]["resourceType"] for e in map_message(message, options)["entry"])
    for kind, count in counts.items():
        assert have[kind] == count, kind


def test_every_structure_of_the_brief_is_in_the_corpus():
    seen = {structure_of(parse(raw)) for path in corpus_files() for raw in _messages(path)}
    assert seen >= {
        "ADT_A01",
        "ADT_A02",
        "ADT_A03",
        "ADT_A05",
        "ADT_A09",
        "ADT_A39",
        "ORU_R01",
        "ORM_O01",
        "OML_O21",
        "SIU_S12",
        "MDM_T02",
        "VXU_V04",
    }


def test_patient_uk_identifiers_names_address_telecom(options):
    patient = _one(_map("adt_a01.hl7", options), "Patient")
    nhs = next(i for i in patient["identifier"] if i["system"] == NHS_NUMBER_SYSTEM)
    assert nhs["value"] == "9990000018"
    status = nhs["extension"][0]["valueCodeableConcept"]["coding"][0]
    assert status["code"] == "01" and status["system"].endswith("NHSNumberVerificationStatusEngland")
    mrn = next(i for i in patient["identifier"] if i["system"] == "https://fhir.rj1.nhs.uk/Id/mrn")
    assert mrn["value"] == "RJ10012345" and mrn["type"]["coding"][0]["code"] == "MR"
    assert patient["name"][0] == {
        "use": "official",
        "family": "Hughes",
        "given": ["Eleanor", "Mary"],
        "prefix": ["Mrs"],
    }
    assert patient["name"][1]["use"] == "maiden"
    assert patient["gender"] == "female" and patient["birthDate"] == "1961-04-17"
    assert patient["address"][0] == {
        "use": "home",
        "city": "Lambeth",
        "district": "Greater London",
        "postalCode": "SE11 4QT",
        "country": "GBR",
        "line": ["14 Acacia Road", "Flat 2"],
    }
    assert {(t["system"], t["use"], t["value"]) for t in patient["telecom"]} == {
        ("phone", "home", "020 7946 0123"),
        ("phone", "mobile", "07700 900123"),
        ("email", "home", "eleanor.hughes@example.org"),
        ("phone", "work", "020 7946 0999"),
    }
    assert patient["maritalStatus"]["coding"][0]["code"] == "M"
    assert patient["extension"][0]["valueCodeableConcept"]["coding"][0]["code"] == "A"
    assert patient["contact"][0]["name"]["family"] == "Hughes"
    gps = {r["reference"].split("/")[0] for r in patient["generalPractitioner"]}
    assert gps == {"Organization", "Practitioner"}


def test_sending_facility_is_an_ods_organization(options):
    bundle = _map("adt_a04.hl7", options)
    org = _one(bundle, "Organization")
    assert org["identifier"] == [{"system": ODS_SYSTEM, "value": "RJ1"}]
    assert _one(bundle, "Patient")["managingOrganization"]["reference"] == f"Organization/{org['id']}"


def test_v23_feed_reads_nhs_number_from_pid2_and_practice_numbers(options):
    patient = _one(_map("adt_a31_v23.hl7", options), "Patient")
    systems = {i["system"]: i["value"] for i in patient["identifier"]}
    assert systems == {
        "https://fhir.b86023.nhs.uk/Id/local-patient-number": "4521",
        NHS_NUMBER_SYSTEM: "9990000026",
    }
    assert "extension" not in patient["identifier"][1]  # no PID-32: no invented trace status


@pytest.mark.parametrize(
    ("name", "status", "end"),
    [
        ("adt_a01.hl7", "in-progress", None),
        ("adt_a04.hl7", "arrived", None),
        ("adt_a02.hl7", "in-progress", None),
        ("adt_a03.hl7", "finished", "2024-03-15T14:00:00+00:00"),
        ("adt_a03_no_pv1_45.hl7", "finished", "2024-03-15T14:15:00+00:00"),  # EVN-6
        ("adt_a05.hl7", "planned", None),
        ("adt_a08.hl7", "in-progress", None),
        ("adt_a11.hl7", "cancelled", None),
        ("adt_a13.hl7", "in-progress", None),  # the discharge is cancelled: no end
    ],
)
def test_encounter_status_and_period(name, status, end, options):
    encounter = _one(_map(name, options), "Encounter")
    assert encounter["status"] == status
    assert encounter.get("period", {}).get("end") == end


def test_encounter_fields(options):
    bundle = _map("adt_a02.hl7", options)
    encounter = _one(bundle, "Encounter")
    assert encounter["identifier"] == [
        {"use": "official", "system": "https://fhir.rj1.nhs.uk/Id/visit-number", "value": "V900123"}
    ]
    assert encounter["class"]["code"] == "IMP"
    assert encounter["period"]["start"] == "2024-03-12T09:00:00+00:00"
    assert [loc["status"] for loc in encounter["location"]] == ["active", "completed"]
    kinds = [p["type"][0]["coding"][0]["code"] for p in encounter["participant"]]
    assert kinds == ["ATND", "ADM"]
    practitioner = next(p for p in _all(bundle, "Practitioner") if p["identifier"][0]["value"] == "1234567")
    assert practitioner["identifier"][0]["system"] == "https://fhir.hl7.org.uk/Id/gmc-number"


def test_british_summer_time_offsets(options):
    text = (CORPUS / "adt_a01.hl7").read_text().replace("20240312090000", "20240712090000")
    encounter = _one(map_message(parse(text), options), "Encounter")
    assert encounter["period"]["start"] == "2024-07-12T09:00:00+01:00"


def test_same_patient_and_visit_across_messages_and_replays(options):
    ids = {}
    for name in ("adt_a01.hl7", "adt_a08.hl7", "adt_a03.hl7", "oru_r01.hl7"):
        bundle = _map(name, options)
        ids[name] = (_one(bundle, "Patient")["id"], _one(bundle, "Encounter")["id"])
    assert len(set(ids.values())) == 1
    assert _map("adt_a01.hl7", options) == _map("adt_a01.hl7", options)
    a08 = _one(_map("adt_a08.hl7", options), "Patient")
    assert a08["address"][0]["postalCode"] == "SE11 5QY"  # the update is a snapshot


def test_other_facility_same_mrn_is_another_patient(options):
    text = (CORPUS / "adt_a04.hl7").read_text().replace("|PAS|RJ1|", "|PAS|RJZ|")
    other = _one(map_message(parse(text), options), "Patient")
    assert other["id"] != _one(_map("adt_a04.hl7", options), "Patient")["id"]


def test_merge_links_both_patients(options):
    bundle = _map("adt_a40.hl7", options)
    survivor, retired = sorted(_all(bundle, "Patient"), key=lambda p: not p["active"])
    assert survivor["id"] == _one(_map("adt_a01.hl7", options), "Patient")["id"]
    assert survivor["link"] == [{"other": {"reference": f"Patient/{retired['id']}"}, "type": "replaces"}]
    assert retired["active"] is False
    assert retired["link"] == [{"other": {"reference": f"Patient/{survivor['id']}"}, "type": "replaced-by"}]
    assert retired["identifier"][0]["value"] == "RJ10099999"
    assert retired["name"][0]["given"] == ["Ellie"]
    merged_a04 = (CORPUS / "adt_a04.hl7").read_text().replace("RJ10012345", "RJ10099999")
    earlier = _one(map_message(parse(merged_a04), options), "Patient")
    assert earlier["id"] == retired["id"]  # the record the earlier messages made


def test_oru_results(options):
    bundle = _map("oru_r01.hl7", options)
    report = _one(bundle, "DiagnosticReport")
    observations = {o["code"]["coding"][0]["code"]: o for o in _all(bundle, "Observation")}
    assert report["status"] == "final" and report["category"][0]["coding"][0]["code"] == "CH"
    assert report["issued"] == "2024-03-12T15:59:00+00:00"
    assert [r["reference"] for r in report["result"]] == [
        f"Observation/{o['id']}" for o in _all(bundle, "Observation")
    ]
    assert report["presentedForm"][0]["contentType"] == "application/pdf"
    assert base64.b64decode(report["presentedForm"][0]["data"]).startswith(b"%PDF-1.4")
    chol = observations["2093-3"]
    assert chol["valueQuantity"] == {
        "value": 5.8,
        "unit": "mmol/L",
        "system": "http://unitsofmeasure.org",
        "code": "mmol/L",
    }
    assert chol["referenceRange"] == [
        {"high": {"value": 5.0, "unit": "mmol/L", "system": "http://unitsofmeasure.org", "code": "mmol/L"}}
    ]
    assert chol["interpretation"][0]["coding"][0]["code"] == "H"
    assert chol["note"] == [{"text": "Repeat in 3 months"}]
    assert chol["category"][0]["coding"][0]["code"] == "laboratory"
    assert observations["2085-9"]["valueQuantity"]["comparator"] == ">"
    assert observations["9830-1"]["valueRatio"] == {"numerator": {"value": 5.8}, "denominator": {"value": 1}}
    assert observations["882-1"]["valueCodeableConcept"]["coding"][0]["system"] == "http://snomed.info/sct"
    comment = observations["8251-1"]
    assert comment["valueString"] == "Sample slightly lipaemic.\nResults may be affected."
    assert comment["status"] == "preliminary"
    glucose = observations["1558-6"]
    assert glucose["status"] == "corrected" and "valueQuantity" not in glucose
    assert [c["valueQuantity"]["value"] for c in glucose["component"]] == [5.1, 5.3]
    specimen = _one(bundle, "Specimen")
    assert specimen["type"]["coding"][0]["code"] == "119297000"
    assert chol["specimen"]["reference"] == f"Specimen/{specimen['id']}"


def test_custom_delimiters_and_escapes_reach_the_values(options):
    bundle = _map("oru_r01_custom_delimiters.hl7", options)
    values = [o.get("valueString") for o in _all(bundle, "Observation")]
    assert "Na#K ratio normal ! checked\nok" in values
    assert _one(bundle, "DiagnosticReport")["category"][0]["coding"][0]["code"] == "HM"


def test_observation_ids_follow_the_filler_order_number(options):
    first = {o["id"] for o in _all(_map("oru_r01.hl7", options), "Observation")}
    text = (CORPUS / "oru_r01.hl7").read_text()
    renumbered = text.replace("OBX|1|NM|2093-3", "OBX|9|NM|2093-3")
    assert {o["id"] for o in _all(map_message(parse(renumbered), options), "Observation")} == first
    other = text.replace("FIL-5566", "FIL-5567")
    assert not first & {o["id"] for o in _all(map_message(parse(other), options), "Observation")}


def test_orders(options):
    orm = _one(_map("orm_o01.hl7", options), "ServiceRequest")
    assert orm["status"] == "active" and orm["intent"] == "order" and orm["priority"] == "routine"
    assert orm["reasonCode"][0]["coding"][0]["code"] == "R06.0"
    assert orm["note"] == [{"text": "Query consolidation"}]
    assert orm["identifier"][0]["system"] == "https://fhir.rj1.nhs.uk/Id/placer-order-number"
    oml = _one(_map("oml_o21.hl7", options), "ServiceRequest")
    assert oml["priority"] == "stat" and oml["occurrenceDateTime"] == "2024-03-13T08:00:00+00:00"


def test_appointment(options):
    appointment = _one(_map("siu_s12.hl7", options), "Appointment")
    assert appointment["status"] == "booked"
    assert (appointment["start"], appointment["end"]) == (
        "2024-04-02T14:00:00+01:00",
        "2024-04-02T14:30:00+01:00",
    )
    assert appointment["minutesDuration"] == 30
    assert appointment["comment"] == "Bring medication list"
    actors = [p["actor"]["reference"].split("/")[0] for p in appointment["participant"]]
    assert actors == ["Patient", "Practitioner", "Location"]


def test_document(options):
    bundle = _map("mdm_t02.hl7", options)
    document = _one(bundle, "DocumentReference")
    assert document["status"] == "current" and document["docStatus"] == "final"
    assert document["masterIdentifier"]["value"] == "DOC-4455"
    text = base64.b64decode(document["content"][0]["attachment"]["data"]).decode()
    assert text == (
        "Admitted with community acquired pneumonia.\nTreated with amoxicillin & clarithromycin.\n"
        "Discharged home on oral antibiotics."
    )
    assert document["context"]["encounter"][0]["reference"] == f"Encounter/{_one(bundle, 'Encounter')['id']}"


def test_immunization(options):
    immunization = _one(_map("vxu_v04.hl7", options), "Immunization")
    assert immunization["status"] == "completed" and immunization["primarySource"] is True
    assert immunization["vaccineCode"]["coding"][0]["system"] == "https://dmd.nhs.uk"
    assert immunization["doseQuantity"]["value"] == 0.5 and immunization["lotNumber"] == "FLU-2231"
    assert immunization["expirationDate"] == "2024-09-30"
    assert (
        immunization["route"]["coding"][0]["code"] == "IM"
        and immunization["site"]["coding"][0]["code"] == "LD"
    )
    assert [p["function"]["coding"][0]["code"] for p in immunization["performer"]] == ["AP", "OP"]


def test_provenance_names_the_message(options):
    bundle = _map("adt_a01.hl7", options)
    provenance = _one(bundle, "Provenance")
    what = provenance["entity"][0]["what"]
    assert what["identifier"] == {
        "system": "https://fhir.rj1.nhs.uk/Id/hl7v2-message-control-id",
        "value": "RJ1-A01-0001",
    }
    assert provenance["entity"][0]["role"] == "source"
    assert provenance["recorded"] == "2024-03-12T09:30:00+00:00"
    device = _one(bundle, "Device")
    assert provenance["agent"][0]["who"]["reference"] == f"Device/{device['id']}"
    assert device["deviceName"][0]["name"] == "PAS"
    assert provenance["agent"][1]["type"]["coding"][0]["code"] == "enterer"
    targets = {t["reference"] for t in provenance["target"]}
    assert f"Patient/{_one(bundle, 'Patient')['id']}" in targets
