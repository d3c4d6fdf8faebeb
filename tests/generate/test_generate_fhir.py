"""The generated FHIR: valid R4 (and UK Core for Patients), references that resolve, bundles that
hold exactly the NDJSON resources, UK-shaped contact details.

Spec: https://hl7.org/fhir/R4/resource.html, https://hl7.org/fhir/R4/http.html#transaction,
https://hl7.org/fhir/uv/bulkdata/ (NDJSON), UK Core Patient (packaged in careweave.fhir.ukcore).
"""

from __future__ import annotations

import random
import re
from collections import Counter
from typing import Any

import orjson
import pytest

from careweave.fhir.model import parse_instant
from careweave.generate import places

# identity-notes 4.2, the BS 7666 postcode pattern
POSTCODE = re.compile(
    r"^(GIR 0AA|(?:[A-PR-UWYZ][0-9][0-9]?|[A-PR-UWYZ][A-HK-Y][0-9][0-9]?|[A-PR-UWYZ][0-9][A-HJKPSTUW]"
    r"|[A-PR-UWYZ][A-HK-Y][0-9][ABEHMNPRVWXY]) [0-9][ABD-HJLNP-UW-Z]{2})$"
)
DRAMA_PHONES = re.compile(
    r"^(07700 900\d{3}|01632 960\d{3}|0113 496 0\d{3}|0114 496 0\d{3}|0116 496 0\d{3}"
    r"|0117 496 0\d{3}|0121 496 0\d{3}|0161 496 0\d{3}|0191 498 0\d{3}|020 7946 0\d{3}"
    r"|029 2018 0\d{3})$"
)
DATE_TIME = re.compile(r"^\d{4}-\d{2}-\d{2}T")
REQUIRED = {
    "Observation": ("status", "code"),
    "Encounter": ("status", "class"),
    "Condition": ("subject", "code"),
    "MedicationRequest": ("status", "intent", "medicationCodeableConcept", "subject"),
    "AllergyIntolerance": ("patient", "code"),
    "Immunization": ("status", "vaccineCode", "patient", "occurrenceDateTime"),
    "DiagnosticReport": ("status", "code", "subject"),
    "Patient": ("identifier", "name", "gender", "birthDate", "managingOrganization"),
}


def _walk(value: Any, path: str = ""):
    if isinstance(value, dict):
        for key, child in value.items():
            yield from _walk(child, f"{path}.{key}")
    elif isinstance(value, list):
        for child in value:
            yield from _walk(child, path)
    else:
        yield path, value


@pytest.mark.parametrize("run_name", ["demo_run", "hard_run"])
def test_every_resource_is_valid_r4(request, run_name, validator, ukcore_patient):
    run = request.getfixturevalue(run_name)
    problems: Counter[str] = Counter()
    count = 0
    for resource in run.resources():
        count += 1
        profiles = [ukcore_patient] if resource["resourceType"] == "Patient" else []
        for issue in validator.validate(resource, profiles):
            if issue.details == "dom-6":  # narrative is a best-practice warning; none is generated
                continue
            problems[f"{resource['resourceType']}: {issue.severity} {issue.diagnostics}"] += 1
    assert count == run.summary.total_resources
    assert not problems, problems.most_common(10)


def test_the_validator_would_catch_a_broken_resource(demo_run, validator, ukcore_patient):
    patient = next(p for p in demo_run.resources("Patient") if p["identifier"][0].get("extension"))
    broken = {**patient, "gender": "mail", "birthDate": "1980-02-30"}
    assert any(i.is_error for i in validator.validate(broken, [ukcore_patient]))
    unknown_status = orjson.loads(orjson.dumps(patient))
    unknown_status["identifier"][0]["extension"][0]["valueCodeableConcept"]["coding"][0]["code"] = "99"
    issues = validator.validate(unknown_status, [ukcore_patient])
    assert any(i.is_error and i.details == "CW-3002" for i in issues)  # the UK Core binding


def test_required_elements_present(demo_run):
    for resource in demo_run.resources():
        for key in REQUIRED.get(resource["resourceType"], ()):
            assert key in resource, (resource["resourceType"], key)


def test_ids_are_unique_and_references_resolve(hard_run):
    ids: set[str] = set()
    references: list[str] = []
    for resource in hard_run.resources():
        key = f"{resource['resourceType']}/{resource['id']}"
        assert key not in ids
        ids.add(key)
        references += [v for p, v in _walk(resource) if p.endswith(".reference")]
    assert references
    assert all(re.fullmatch(r"[A-Z][A-Za-z]+/[A-Za-z0-9\-.]{1,64}", r) for r in references)
    missing = [r for r in references if r not in ids]
    assert not missing, missing[:5]


def test_date_times_with_a_time_carry_an_offset(hard_run):
    seen = 0
    for resource in hard_run.resources():
        for path, value in _walk(resource):
            if isinstance(value, str) and DATE_TIME.match(value) and not path.endswith(".value"):
                seen += 1
                assert parse_instant(value) is not None, (path, value)
    assert seen > 1000


def test_patient_contact_details_are_uk_and_fictional(hard_run):
    truth = {row["patient_id"]: row for row in hard_run.truth()}
    for patient in hard_run.resources("Patient"):
        for address in patient["address"]:
            postcode = address["postalCode"]
            if postcode == "ZZ99 3VZ":
                assert "no-fixed-abode" in truth[patient["id"]]["discrepancies"]
            else:
                assert POSTCODE.match(postcode), postcode
        for telecom in patient.get("telecom", ()):
            if telecom["system"] == "phone":
                assert DRAMA_PHONES.match(telecom["value"]), telecom["value"]
            else:
                assert re.search(r"@example\.(com|org|net)$", telecom["value"])


@pytest.mark.parametrize("region", sorted(places.REGIONS))
def test_postcodes_phones_and_addresses_are_valid(region):
    rng = random.Random(region)
    info = places.REGIONS[region]
    for _ in range(300):
        assert POSTCODE.match(places.make_postcode(rng, info))
        assert DRAMA_PHONES.match(places.landline_number(rng, info))
        assert DRAMA_PHONES.match(places.mobile_number(rng))
        address = places.make_address(rng, info)
        assert address.city == info.city and 1 <= len(address.lines) <= 3
        assert address.postcode.split()[0] in info.outward


def test_no_fixed_abode_is_the_nhs_pseudo_postcode():
    assert places.NO_FIXED_ABODE.postcode == "ZZ99 3VZ"
    assert not POSTCODE.match(places.NO_FIXED_ABODE.postcode)


def test_organisations_and_practitioners_identified(demo_run):
    orgs = list(demo_run.resources("Organization"))
    assert len(orgs) == demo_run.config.organisations
    for org in orgs:
        (identifier,) = org["identifier"]
        assert identifier["system"] == "https://fhir.nhs.uk/Id/ods-organization-code"
        assert re.fullmatch(r"R[A-Z][0-9A-Z]|[A-Z][0-9]{5}", identifier["value"])
    gmc = [p["identifier"][0] for p in demo_run.resources("Practitioner")]
    assert {g["system"] for g in gmc} == {"https://fhir.hl7.org.uk/Id/gmc-number"}
    assert len({g["value"] for g in gmc}) == len(gmc)
    assert all(re.fullmatch(r"\d{7}", g["value"]) for g in gmc)


def test_each_patient_uses_its_organisations_mrn_system(demo_run):
    systems = {
        f"Organization/{o['id']}": o["identifier"][0]["value"].lower()
        for o in demo_run.resources("Organization")
    }
    seen: set[tuple[str, str]] = set()
    for patient in demo_run.resources("Patient"):
        code = systems[patient["managingOrganization"]["reference"]]
        (mrn,) = [i for i in patient["identifier"] if i.get("type")]
        assert mrn["system"].startswith(f"https://fhir.{code}.nhs.uk/Id/")
        assert (mrn["system"], mrn["value"]) not in seen
        seen.add((mrn["system"], mrn["value"]))


def test_bundles_hold_exactly_the_ndjson_resources_as_puts(demo_run):
    paths = sorted((demo_run.out / "bundles").glob("*.json"))
    assert len(paths) == demo_run.summary.bundles > 1
    from_bundles: list[bytes] = []
    for index, path in enumerate(paths):
        bundle = orjson.loads(path.read_bytes())
        assert bundle["resourceType"] == "Bundle"
        assert bundle["type"] == "transaction"
        kinds = set()
        for entry in bundle["entry"]:
            resource = entry["resource"]
            kinds.add(resource["resourceType"])
            assert entry["request"] == {
                "method": "PUT",
                "url": f"{resource['resourceType']}/{resource['id']}",
            }
            from_bundles.append(orjson.dumps(resource))
        if index == 0:
            assert kinds == {"Organization", "Practitioner", "PractitionerRole"}
    from_ndjson = [orjson.dumps(r) for r in demo_run.resources()]
    assert Counter(from_bundles) == Counter(from_ndjson)


def test_a_person_is_never_split_across_bundles(demo_run):
    patient_bundle: dict[str, int] = {}
    for index, path in enumerate(sorted((demo_run.out / "bundles").glob("*.json"))):
        for entry in orjson.loads(path.read_bytes())["entry"]:
            if entry["resource"]["resourceType"] == "Patient":
                patient_bundle[entry["resource"]["id"]] = index
    by_person: dict[str, set[int]] = {}
    for row in demo_run.truth():
        by_person.setdefault(row["person_id"], set()).add(patient_bundle[row["patient_id"]])
    assert all(len(bundles) == 1 for bundles in by_person.values())


@pytest.mark.parametrize("kind", ["Observation", "Encounter", "Condition", "MedicationRequest"])
def test_clinical_resources_use_real_code_systems(demo_run, kind):
    systems = Counter()
    for resource in demo_run.resources(kind):
        for path, value in _walk(resource):
            if path.endswith(".system"):
                systems[value] += 1
    assert systems
    assert set(systems) <= {
        "http://loinc.org",
        "http://snomed.info/sct",
        "http://unitsofmeasure.org",
        "http://terminology.hl7.org/CodeSystem/observation-category",
        "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation",
        "http://terminology.hl7.org/CodeSystem/v3-ActCode",
        "http://terminology.hl7.org/CodeSystem/v3-ParticipationType",
        "http://terminology.hl7.org/CodeSystem/discharge-disposition",
        "http://terminology.hl7.org/CodeSystem/condition-clinical",
        "http://terminology.hl7.org/CodeSystem/condition-ver-status",
        "http://terminology.hl7.org/CodeSystem/condition-category",
    } | {s for s in systems if s.startswith("https://fhir.") and s.endswith("/Id/visit-number")}


def test_mean_resources_per_person_follows_the_config(hard_run):
    clinical = hard_run.summary.total_resources - sum(
        hard_run.summary.resources[k] for k in ("Organization", "Practitioner", "PractitionerRole")
    )
    mean = clinical / hard_run.summary.persons
    assert hard_run.config.resources_per_patient * 0.8 < mean < hard_run.config.resources_per_patient * 1.2
