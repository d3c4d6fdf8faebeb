"""More exact semantics: :in / :not-in, :identifier, meta parameters, near, :missing on references,
nested _has, multi-level chains (search.html 3.1.1.4, 3.1.1.7, 3.1.1.8)."""

from __future__ import annotations

import pytest

from tests.search.conftest import ids, put

pytestmark = pytest.mark.anyio

GENDER_VS = "http://hl7.org/fhir/ValueSet/administrative-gender"


@pytest.fixture
async def data(client):
    await put(client, {"resourceType": "Organization", "id": "trust", "name": "Trust",
                       "identifier": [{"system": "https://fhir.nhs.uk/Id/ods-organization-code",
                                       "value": "RXR"}]})
    await put(client, {"resourceType": "Organization", "id": "gp", "name": "GP",
                       "partOf": {"reference": "Organization/trust"}})
    await put(client, {"resourceType": "Patient", "id": "a", "gender": "female",
                       "managingOrganization": {"reference": "Organization/gp"},
                       "generalPractitioner": [{"identifier": {
                           "system": "https://fhir.nhs.uk/Id/ods-organization-code",
                           "value": "B82005"}}],
                       "meta": {"tag": [{"system": "urn:t", "code": "vip"}],
                                "security": [{"system": "http://terminology.hl7.org/CodeSystem/"
                                              "v3-Confidentiality", "code": "R"}],
                                "profile": ["https://fhir.hl7.org.uk/StructureDefinition/"
                                            "UKCore-Patient"],
                                "source": "urn:source:pas"}})
    await put(client, {"resourceType": "Patient", "id": "b", "gender": "male"})
    await put(client, {"resourceType": "Patient", "id": "c", "gender": "unknown",
                       "managingOrganization": {"reference": "Organization/trust"}})
    await put(client, {"resourceType": "Observation", "id": "o1", "status": "final",
                       "code": {"text": "x"}, "subject": {"reference": "Patient/a"}})
    await put(client, {"resourceType": "Provenance", "id": "pv", "recorded": "2024-01-01T00:00:00Z",
                       "target": [{"reference": "Observation/o1"}],
                       "agent": [{"who": {"reference": "Organization/gp"}}]})
    await put(client, {"resourceType": "Location", "id": "leeds", "name": "Leeds",
                       "position": {"latitude": 53.8008, "longitude": -1.5491}})
    await put(client, {"resourceType": "Location", "id": "london", "name": "London",
                       "position": {"latitude": 51.5074, "longitude": -0.1278}})


async def test_in_and_not_in_value_sets(client, data):
    assert await ids(client, f"/fhir/Patient?gender:in={GENDER_VS}") == ["a", "b", "c"]
    assert await ids(client, f"/fhir/Patient?gender:not-in={GENDER_VS}") == []
    r = await client.get("/fhir/Patient?gender:in=http://example.org/no-such-value-set")
    assert r.status_code == 400


async def test_reference_identifier_modifier(client, data):
    url = ("/fhir/Patient?general-practitioner:identifier="
           "https://fhir.nhs.uk/Id/ods-organization-code|B82005")
    assert await ids(client, url) == ["a"]


async def test_meta_parameters(client, data):
    assert await ids(client, "/fhir/Patient?_tag=urn:t|vip") == ["a"]
    assert await ids(client, "/fhir/Patient?_security=R") == ["a"]
    profile = "https://fhir.hl7.org.uk/StructureDefinition/UKCore-Patient"
    assert await ids(client, f"/fhir/Patient?_profile={profile}") == ["a"]
    assert await ids(client, "/fhir/Patient?_source=urn:source:pas") == ["a"]
    assert await ids(client, "/fhir/Patient?_tag:not=urn:t|vip") == ["b", "c"]


async def test_near(client, data):
    # Leeds station to Leeds: under 1 km; London is ~270 km away
    assert await ids(client, "/fhir/Location?near=53.7950|-1.5474|5|km") == ["leeds"]
    assert await ids(client, "/fhir/Location?near=53.7950|-1.5474|300|km") == ["leeds", "london"]
    assert await ids(client, "/fhir/Location?near=53.7950|-1.5474|2000|m") == ["leeds"]
    assert (await client.get("/fhir/Location?near=north")).status_code == 400


async def test_missing_on_references(client, data):
    assert await ids(client, "/fhir/Patient?organization:missing=true") == ["b"]
    assert await ids(client, "/fhir/Patient?organization:missing=false") == ["a", "c"]


async def test_multi_level_chain(client, data):
    assert await ids(client, "/fhir/Observation?subject:Patient.organization.partof.name=trust") == [
        "o1"]
    assert await ids(client, "/fhir/Patient?organization.partof.identifier=RXR") == ["a"]
    assert await ids(client, "/fhir/Patient?organization.partof:missing=true") == ["c"]


async def test_nested_has_and_has_with_chain(client, data):
    url = "/fhir/Patient?_has:Observation:subject:_has:Provenance:target:agent=Organization/gp"
    assert await ids(client, url) == ["a"]
    url = "/fhir/Patient?_has:Observation:subject:status=final&organization.name=gp"
    assert await ids(client, url) == ["a"]
    assert await ids(client, "/fhir/Organization?_has:Patient:organization:gender=unknown") == [
        "trust"]
