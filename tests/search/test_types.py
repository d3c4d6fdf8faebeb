"""Exact semantics of each search parameter type, modifier and prefix (search.html 3.1.1).

Each test stores a few resources chosen to sit on either side of the boundary being tested.
"""

from __future__ import annotations

import pytest

from tests.search.conftest import ids, put

pytestmark = pytest.mark.anyio


@pytest.fixture
async def people(client):
    data = [
        {"resourceType": "Patient", "id": "p1", "name": [{"family": "Smith", "given": ["Ann"]}],
         "gender": "female", "birthDate": "1980-06-15", "active": True,
         "identifier": [{"system": "https://fhir.nhs.uk/Id/nhs-number", "value": "9434765919",
                         "type": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0203",
                                              "code": "NH"}]}}],
         "address": [{"city": "Leeds", "postalCode": "LS1 4AP"}],
         "telecom": [{"system": "email", "value": "ann@example.org"}]},
        {"resourceType": "Patient", "id": "p2", "name": [{"family": "Smithson", "given": ["Bob"]}],
         "gender": "male", "birthDate": "1980", "active": False,
         "identifier": [{"system": "urn:mrn", "value": "9434765919"}]},
        {"resourceType": "Patient", "id": "p3", "name": [{"family": "Zoë Ñúñez-Smith"}],
         "gender": "other", "birthDate": "2001-02-03"},
        {"resourceType": "Patient", "id": "p4", "name": [{"family": "Jones"}]},
    ]
    for r in data:
        await put(client, r)


async def test_string_default_is_starts_with_case_and_accent_insensitive(client, people):
    assert await ids(client, "/fhir/Patient?family=smith") == ["p1", "p2"]
    assert await ids(client, "/fhir/Patient?family=SMITH") == ["p1", "p2"]
    assert await ids(client, "/fhir/Patient?family=zoe") == ["p3"]
    assert await ids(client, "/fhir/Patient?family=nunez") == []
    assert await ids(client, "/fhir/Patient?name=ann") == ["p1"]


async def test_string_exact_and_contains(client, people):
    assert await ids(client, "/fhir/Patient?family:exact=Smith") == ["p1"]
    assert await ids(client, "/fhir/Patient?family:exact=smith") == []
    assert await ids(client, "/fhir/Patient?family:contains=nunez") == ["p3"]
    assert await ids(client, "/fhir/Patient?family:contains=ITH") == ["p1", "p2", "p3"]


async def test_string_or_and(client, people):
    assert await ids(client, "/fhir/Patient?family=jones,zoe") == ["p3", "p4"]
    assert await ids(client, "/fhir/Patient?family=smith&given=bob") == ["p2"]


async def test_token_forms(client, people):
    nhs = "https://fhir.nhs.uk/Id/nhs-number"
    assert await ids(client, f"/fhir/Patient?identifier={nhs}|9434765919") == ["p1"]
    assert await ids(client, "/fhir/Patient?identifier=9434765919") == ["p1", "p2"]
    assert await ids(client, f"/fhir/Patient?identifier={nhs}|") == ["p1"]
    assert await ids(client, "/fhir/Patient?identifier=|9434765919") == []
    assert await ids(client, "/fhir/Patient?gender=female") == ["p1"]
    assert await ids(client, "/fhir/Patient?gender=http://hl7.org/fhir/administrative-gender|male") == ["p2"]
    assert await ids(client, "/fhir/Patient?active=true") == ["p1"]
    assert await ids(client, "/fhir/Patient?email=ann@example.org") == ["p1"]


async def test_token_not_includes_missing(client, people):
    assert await ids(client, "/fhir/Patient?gender:not=female") == ["p2", "p3", "p4"]
    assert await ids(client, "/fhir/Patient?gender:not=female,male") == ["p3", "p4"]


async def test_token_of_type(client, people):
    url = ("/fhir/Patient?identifier:of-type="
           "http://terminology.hl7.org/CodeSystem/v2-0203|NH|9434765919")
    assert await ids(client, url) == ["p1"]


async def test_missing(client, people):
    assert await ids(client, "/fhir/Patient?gender:missing=true") == ["p4"]
    assert await ids(client, "/fhir/Patient?birthdate:missing=false") == ["p1", "p2", "p3"]
    r = await client.get("/fhir/Patient?gender:missing=maybe")
    assert r.status_code == 400


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("birthdate=1980", ["p1", "p2"]),
        ("birthdate=1980-06", ["p1"]),
        ("birthdate=1980-06-15", ["p1"]),
        ("birthdate=eq1980-06-15", ["p1"]),
        ("birthdate=ne1980-06-15", ["p2", "p3"]),
        ("birthdate=gt1980-06-15", ["p2", "p3"]),  # p2 (all of 1980) extends past the 15th
        ("birthdate=lt1980-06-15", ["p2"]),
        ("birthdate=ge1980-06-15", ["p1", "p2", "p3"]),
        ("birthdate=le1980-06-15", ["p1", "p2"]),
        ("birthdate=sa1980-06-15", ["p3"]),
        ("birthdate=eb2001-01-01", ["p1", "p2"]),
        ("birthdate=gt2000", ["p3"]),
        ("birthdate=lt1981&birthdate=gt1979", ["p1", "p2"]),
        ("birthdate=1980-06-15T10:00:00Z", []),  # a day does not fit inside a second
        ("birthdate=ap2001-02-01", ["p3"]),
    ],
)
async def test_date_prefixes(client, people, query, expected):
    assert await ids(client, f"/fhir/Patient?{query}") == expected


async def test_bad_values_are_400(client, people):
    for query in ("birthdate=yesterday", "birthdate=2020-13-01", "_count=x", "identifier=",
                  "_sort=nonsense", "_total=maybe", "_summary=all"):
        r = await client.get(f"/fhir/Patient?{query}")
        assert r.status_code == 400, query
        assert r.json()["resourceType"] == "OperationOutcome"


async def test_unknown_parameter_lenient_and_strict(client, people):
    r = await client.get("/fhir/Patient?family=jones&frobnicate=1")
    bundle = r.json()
    assert [e["resource"]["id"] for e in bundle["entry"] if e["search"]["mode"] == "match"] == ["p4"]
    outcome = [e for e in bundle["entry"] if e["search"]["mode"] == "outcome"]
    assert "frobnicate" in outcome[0]["resource"]["issue"][0]["diagnostics"]
    assert "frobnicate" not in bundle["link"][0]["url"]
    strict = await client.get("/fhir/Patient?family=jones&frobnicate=1",
                              headers={"Prefer": "handling=strict"})
    assert strict.status_code == 400


@pytest.fixture
async def observations(client, people):
    loinc = "http://loinc.org"
    ucum = "http://unitsofmeasure.org"
    rows = [
        ("o1", "p1", "2024-01-10T09:00:00Z", 120, "mm[Hg]", "8480-6"),
        ("o2", "p1", "2024-02-10T09:00:00+01:00", 135.5, "mm[Hg]", "8480-6"),
        ("o3", "p2", "2024-03-01", 70.25, "kg", "29463-7"),
        ("o4", "p3", "2023-12-31T23:59:59Z", 0.1, "g", "29463-7"),
    ]
    for oid, pid, when, value, unit, code in rows:
        await put(client, {
            "resourceType": "Observation", "id": oid, "status": "final",
            "code": {"coding": [{"system": loinc, "code": code, "display": "Some measure"}],
                     "text": "Systolic blood pressure" if code == "8480-6" else "Body weight"},
            "subject": {"reference": f"Patient/{pid}"}, "effectiveDateTime": when,
            "valueQuantity": {"value": value, "unit": unit, "system": ucum, "code": unit},
        })
    await put(client, {
        "resourceType": "Observation", "id": "bp", "status": "final",
        "code": {"coding": [{"system": loinc, "code": "85354-9"}]},
        "subject": {"reference": "Patient/p4"}, "effectivePeriod": {"start": "2024-01-01",
                                                                  "end": "2024-01-31"},
        "component": [
            {"code": {"coding": [{"system": loinc, "code": "8480-6"}]},
             "valueQuantity": {"value": 140, "system": ucum, "code": "mm[Hg]"}},
            {"code": {"coding": [{"system": loinc, "code": "8462-4"}]},
             "valueQuantity": {"value": 90, "system": ucum, "code": "mm[Hg]"}},
        ],
    })


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("value-quantity=120", ["o1"]),
        ("value-quantity=120.0", ["o1"]),
        ("value-quantity=135", []),  # 135.5 is outside [134.5, 135.5)
        ("value-quantity=136", ["o2"]),  # [135.5, 136.5)
        ("value-quantity=gt120", ["o2"]),
        ("value-quantity=ge120", ["o1", "o2"]),
        ("value-quantity=lt70.25", ["o4"]),
        ("value-quantity=le70.25", ["o3", "o4"]),
        ("value-quantity=ne120", ["o2", "o3", "o4"]),
        ("value-quantity=ap130", ["o2"]),  # within 10%: [117, 143]... 120 too
        ("value-quantity=70.25|http://unitsofmeasure.org|kg", ["o3"]),
        ("value-quantity=70.25|http://unitsofmeasure.org|g", []),
        ("value-quantity=70.25||kg", ["o3"]),
        ("value-quantity=gt0|http://unitsofmeasure.org|mm[Hg]", ["o1", "o2"]),
    ],
)
async def test_quantity(client, observations, query, expected):
    if query == "value-quantity=ap130":
        expected = ["o1", "o2"]
    assert await ids(client, f"/fhir/Observation?{query}") == expected


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("date=2024-01", ["bp", "o1"]),
        ("date=2024-01-15", []),  # the period covers the day; the day does not contain the period
        ("date=ge2024-01-15", ["bp", "o2", "o3"]),
        ("date=lt2024", ["o4"]),
        ("date=le2024-01-10T09:00:00Z", ["bp", "o1", "o4"]),
        ("date=2024-02-10T08:00:00Z", ["o2"]),  # 09:00+01:00 is 08:00Z
        ("date=sa2024-01-31", ["o2", "o3"]),
        ("date=eb2024-01-01", ["o4"]),
    ],
)
async def test_date_ranges_on_datetimes_and_periods(client, observations, query, expected):
    assert await ids(client, f"/fhir/Observation?{query}") == expected


async def test_token_text_and_code(client, observations):
    assert await ids(client, "/fhir/Observation?code=8480-6") == ["o1", "o2"]
    assert await ids(client, "/fhir/Observation?code:text=blood") == ["o1", "o2"]
    assert await ids(client, "/fhir/Observation?code:text=body%20weight") == ["o3", "o4"]
    assert await ids(client, "/fhir/Observation?combo-code=8480-6") == ["bp", "o1", "o2"]


async def test_composite(client, observations):
    url = "/fhir/Observation?component-code-value-quantity=http://loinc.org|8480-6$gt130"
    assert await ids(client, url) == ["bp"]
    url = "/fhir/Observation?component-code-value-quantity=http://loinc.org|8462-4$gt130"
    assert await ids(client, url) == []
    url = "/fhir/Observation?code-value-quantity=8480-6$lt130"
    assert await ids(client, url) == ["o1"]
    assert (await client.get("/fhir/Observation?code-value-quantity=8480-6")).status_code == 400


async def test_reference_forms(client, observations):
    assert await ids(client, "/fhir/Observation?subject=Patient/p1") == ["o1", "o2"]
    assert await ids(client, "/fhir/Observation?subject=p1") == ["o1", "o2"]
    assert await ids(client, "/fhir/Observation?subject:Patient=p1") == ["o1", "o2"]
    assert await ids(client, "/fhir/Observation?patient=p2") == ["o3"]
    assert await ids(client, "/fhir/Observation?subject=http://testserver/fhir/Patient/p3") == ["o4"]
    assert await ids(client, "/fhir/Observation?subject=Patient/p1,Patient/p2") == ["o1", "o2", "o3"]


async def test_chaining(client, observations):
    assert await ids(client, "/fhir/Observation?subject:Patient.family=smith") == ["o1", "o2", "o3"]
    assert await ids(client, "/fhir/Observation?subject:Patient.family:contains=smith") == [
        "o1", "o2", "o3", "o4"]
    assert await ids(client, "/fhir/Observation?subject.family=jones") == ["bp"]
    assert await ids(client, "/fhir/Observation?patient.gender=male") == ["o3"]
    assert await ids(client, "/fhir/Observation?patient.identifier=urn:mrn|9434765919") == ["o3"]


async def test_reverse_chaining_has(client, observations):
    assert await ids(client, "/fhir/Patient?_has:Observation:patient:code=8480-6") == ["p1"]
    assert await ids(client, "/fhir/Patient?_has:Observation:subject:value-quantity=gt100") == ["p1"]
    assert await ids(client, "/fhir/Patient?_has:Observation:patient:code=29463-7&gender=male") == ["p2"]
    r = await client.get("/fhir/Patient?_has:Observation:nope:code=1")
    assert r.status_code == 400


async def test_id_and_last_updated(client, observations):
    assert await ids(client, "/fhir/Observation?_id=o1,o3") == ["o1", "o3"]
    assert await ids(client, "/fhir/Observation?_lastUpdated=gt2000-01-01") == ["bp", "o1", "o2", "o3", "o4"]
    assert await ids(client, "/fhir/Observation?_lastUpdated=lt2000-01-01") == []


async def test_uri(client):
    for i, url in enumerate(["http://example.org/fhir/ValueSet/a", "http://example.org/fhir/ValueSet/a/b",
                             "http://example.org/other"]):
        await put(client, {"resourceType": "ValueSet", "id": f"v{i}", "status": "active", "url": url})
    assert await ids(client, "/fhir/ValueSet?url=http://example.org/fhir/ValueSet/a") == ["v0"]
    assert await ids(client, "/fhir/ValueSet?url:below=http://example.org/fhir") == ["v0", "v1"]
    above = "/fhir/ValueSet?url:above=http://example.org/fhir/ValueSet/a/b/c"
    assert await ids(client, above) == ["v0", "v1"]


async def test_phonetic(client, people):
    await put(client, {"resourceType": "Patient", "id": "p5", "name": [{"family": "Smyth",
                                                                       "given": ["Anne"]}]})
    assert await ids(client, "/fhir/Patient?phonetic=smith") == ["p1", "p5"]
    assert await ids(client, "/fhir/Patient?phonetic=Ann") == ["p1", "p5"]
    assert await ids(client, "/fhir/Patient?phonetic=jonez") == ["p4"]


def test_soundex_vectors():
    from careweave.search.values import soundex
    # the classic published examples
    assert [soundex(w) for w in ("Robert", "Rupert", "Rubin", "Ashcraft", "Tymczak", "Pfister")] == [
        "R163", "R163", "R150", "A261", "T522", "P236"]
