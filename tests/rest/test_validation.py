"""Every write is validated against the R4 definitions; profiles only where the tenant asks.

A rejected write answers 400 (base R4 rules) or 422 (profiles) with every issue and its location,
and stores nothing (http.html#create, validation.html)."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.anyio

JSON = {"content-type": "application/fhir+json"}
UKCORE_PATIENT = "https://fhir.hl7.org.uk/StructureDefinition/UKCore-Patient"


async def test_invalid_resource_lists_every_issue_with_location(client) -> None:
    bad = {
        "resourceType": "Patient",
        "gender": "woman",  # not in the required value set
        "birthDate": "2023-02-30",  # not a calendar date
        "name": {"family": "Smith"},  # must be an array
        "unknownThing": 1,
        "deceasedBoolean": False,
        "deceasedDateTime": "2020-01-01",  # two choices of one element
    }
    r = await client.post("/fhir/Patient", json=bad, headers=JSON)
    assert r.status_code == 400
    issues = r.json()["issue"]
    where = {e for i in issues for e in i.get("expression", ())}
    for expected in ("Patient.gender", "Patient.birthDate", "Patient.name", "Patient.unknownThing"):
        assert any(w.startswith(expected) for w in where), (expected, issues)
    assert len([i for i in issues if i["severity"] == "error"]) >= 5
    assert (await client.get("/fhir/Patient")).json()["entry"] == []


async def test_invariant_is_enforced(client) -> None:
    # obs-6: dataAbsentReason SHALL only be present if Observation.value[x] is not present
    obs = {"resourceType": "Observation", "status": "final", "code": {"text": "x"},
           "valueString": "1", "dataAbsentReason": {"text": "no"}}
    r = await client.post("/fhir/Observation", json=obs, headers=JSON)
    assert r.status_code == 400
    assert any(i.get("details", {}).get("coding", [{}])[0].get("code") == "obs-6"
               or "obs-6" in i.get("diagnostics", "") for i in r.json()["issue"])


async def test_update_and_patch_are_validated(client) -> None:
    await client.put("/fhir/Patient/v1", json={"resourceType": "Patient", "id": "v1"}, headers=JSON)
    r = await client.put("/fhir/Patient/v1", json={"resourceType": "Patient", "id": "v1",
                                                   "active": "yes"}, headers=JSON)
    assert r.status_code == 400
    r = await client.patch("/fhir/Patient/v1", json=[{"op": "add", "path": "/gender",
                                                      "value": "robot"}],
                           headers={"content-type": "application/json-patch+json"})
    assert r.status_code == 400
    assert (await client.get("/fhir/Patient/v1")).json()["meta"]["versionId"] == "1"


async def test_validate_operation_returns_outcome_with_200(client) -> None:
    good = await client.post("/fhir/Patient/$validate", json={"resourceType": "Patient"},
                             headers=JSON)
    assert good.status_code == 200
    assert all(i["severity"] not in ("error", "fatal") for i in good.json()["issue"])
    bad = await client.post("/fhir/Patient/$validate",
                            json={"resourceType": "Patient", "gender": "x"}, headers=JSON)
    assert bad.status_code == 200
    assert any(i["severity"] == "error" for i in bad.json()["issue"])
    wrapped = await client.post("/fhir/Patient/$validate", json={
        "resourceType": "Parameters",
        "parameter": [{"name": "resource", "resource": {"resourceType": "Patient", "gender": "x"}}]},
        headers=JSON)
    assert any(i["severity"] == "error" for i in wrapped.json()["issue"])
    await client.put("/fhir/Patient/s1", json={"resourceType": "Patient", "id": "s1"}, headers=JSON)
    instance = await client.get("/fhir/Patient/s1/$validate")
    assert instance.status_code == 200


async def test_profiles_are_checked_only_when_the_tenant_asks(system, client) -> None:
    # UK Core Patient requires an identifier? It constrains identifier slices and extensions;
    # a NHS number that is not 10 digits breaks its nhsNumber slice pattern.
    patient = {"resourceType": "Patient", "meta": {"profile": [UKCORE_PATIENT]},
               "identifier": [{"system": "https://fhir.nhs.uk/Id/nhs-number", "value": "123"}],
               "extension": [{"url": "https://fhir.hl7.org.uk/StructureDefinition/"
                                     "Extension-UKCore-EthnicCategory",
                              "valueString": "not a CodeableConcept"}]}
    lax = await client.post("/fhir/Patient", json=patient, headers=JSON)
    assert lax.status_code == 201  # default: profiles claimed are not enforced
    await system.store.create_tenant("strict", {"validate_profiles": True})
    strict = await client.post("/t/strict/fhir/Patient", json=patient, headers=JSON)
    assert strict.status_code == 422, strict.text
    assert strict.json()["resourceType"] == "OperationOutcome"
    unknown = {"resourceType": "Patient", "meta": {"profile": ["http://example.org/nope"]}}
    warned = await client.post("/t/strict/fhir/Patient/$validate", json=unknown, headers=JSON)
    assert any("not known" in i.get("diagnostics", "") for i in warned.json()["issue"])
