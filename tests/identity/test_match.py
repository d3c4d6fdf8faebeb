"""Patient/$match (https://hl7.org/fhir/R4/patient-operation-match.html): Parameters in
(resource, onlyCertainMatches, count), a searchset Bundle out with search.score and the
match-grade extension (http://hl7.org/fhir/StructureDefinition/match-grade)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.identity.conftest import Mpi
from tests.mpi.builders import NHS_A, NHS_B, patient

pytestmark = pytest.mark.anyio
GRADE = "http://hl7.org/fhir/StructureDefinition/match-grade"


def match_params(resource: dict[str, Any], **extra: Any) -> dict[str, Any]:
    parameter: list[dict[str, Any]] = [{"name": "resource", "resource": resource}]
    if "only_certain" in extra:
        parameter.append({"name": "onlyCertainMatches", "valueBoolean": extra["only_certain"]})
    if "count" in extra:
        parameter.append({"name": "count", "valueInteger": extra["count"]})
    return {"resourceType": "Parameters", "parameter": parameter}


def query(**kwargs: Any) -> dict[str, Any]:
    resource = patient("ignored", **kwargs)
    del resource["id"]
    return resource


async def populated(mpi: Mpi) -> None:
    await mpi.put("trust-a", patient("a1", nhs=NHS_A))
    await mpi.put("trust-a", patient("a2", nhs=None, given=("Johnny",), postcode="LS6 4QT"))
    await mpi.put("trust-b", patient("b1", nhs=NHS_A, given=("Jon",)))
    baby = {"family": "Jones", "birth": "2025-03-01", "gender": "female", "status": "08"}
    await mpi.put("trust-a", patient("n1", nhs=NHS_B, given=("Baby",), **baby))
    await mpi.settle()


def grades(bundle: dict[str, Any]) -> list[tuple[str, str]]:
    return [
        (e["resource"]["id"], next(x["valueCode"] for x in e["search"]["extension"] if x["url"] == GRADE))
        for e in bundle.get("entry", ())
    ]


async def test_match_answers_a_graded_searchset_of_the_tenants_patients(mpi: Mpi) -> None:
    await populated(mpi)
    response = await mpi.client.post("/t/trust-a/fhir/Patient/$match", json=match_params(query(nhs=NHS_A)))
    assert response.status_code == 200, response.text
    bundle = response.json()
    assert bundle["resourceType"] == "Bundle" and bundle["type"] == "searchset"
    first = bundle["entry"][0]
    assert first["fullUrl"] == "http://testserver/t/trust-a/fhir/Patient/a1"
    assert first["search"]["mode"] == "match"
    assert 0.99 < first["search"]["score"] <= 1.0
    assert grades(bundle)[0] == ("a1", "certain")
    scores = [e["search"]["score"] for e in bundle["entry"]]
    assert scores == sorted(scores, reverse=True)
    assert {e["resource"]["id"] for e in bundle["entry"]} <= {"a1", "a2"}  # trust-a's own only


async def test_match_at_the_identity_space_looks_across_tenants(mpi: Mpi) -> None:
    await populated(mpi)
    response = await mpi.client.post("/mpi/fhir/Patient/$match", json=match_params(query(nhs=NHS_A)))
    assert response.status_code == 200, response.text
    urls = {e["fullUrl"] for e in response.json()["entry"]}
    assert {
        "http://testserver/t/trust-a/fhir/Patient/a1",
        "http://testserver/t/trust-b/fhir/Patient/b1",
    } <= urls


async def test_only_certain_matches_and_count(mpi: Mpi) -> None:
    await populated(mpi)
    baby = query(nhs=NHS_B, given=("Ella",), family="Jones", birth="2025-03-01", gender="female", status="08")
    loose = (await mpi.client.post("/t/trust-a/fhir/Patient/$match", json=match_params(baby))).json()
    assert grades(loose) == [("n1", "probable")] or grades(loose) == [("n1", "possible")]
    strict = await mpi.client.post(
        "/t/trust-a/fhir/Patient/$match", json=match_params(baby, only_certain=True)
    )
    assert strict.json()["total"] == 0 and "entry" not in strict.json()
    one = await mpi.client.post("/mpi/fhir/Patient/$match", json=match_params(query(nhs=NHS_A), count=1))
    assert len(one.json()["entry"]) == 1
    certain = await mpi.client.post(
        "/mpi/fhir/Patient/$match", json=match_params(query(nhs=NHS_A), only_certain=True)
    )
    assert {g for _, g in grades(certain.json())} == {"certain"}


async def test_no_match_is_an_empty_bundle(mpi: Mpi) -> None:
    await populated(mpi)
    stranger = query(nhs=None, given=("Xanthe",), family="Oyelaran", birth="1931-02-03", postcode="TR1 1AA")
    response = await mpi.client.post("/t/trust-a/fhir/Patient/$match", json=match_params(stranger))
    assert response.status_code == 200
    assert response.json()["total"] == 0


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ({"resourceType": "Parameters", "parameter": []}, 400),
        (
            {
                "resourceType": "Parameters",
                "parameter": [{"name": "resource", "resource": {"resourceType": "Observation"}}],
            },
            400,
        ),
        (
            {
                "resourceType": "Parameters",
                "parameter": [
                    {"name": "resource", "resource": {"resourceType": "Patient"}},
                    {"name": "count", "valueInteger": 0},
                ],
            },
            400,
        ),
        (
            {
                "resourceType": "Parameters",
                "parameter": [
                    {"name": "resource", "resource": {"resourceType": "Patient"}},
                    {"name": "onlyCertainMatches", "valueString": "yes"},
                ],
            },
            400,
        ),
        ({"resourceType": "Observation"}, 400),
    ],
)
async def test_bad_match_requests_are_operation_outcomes(mpi: Mpi, body: dict[str, Any], status: int) -> None:
    response = await mpi.client.post("/t/trust-a/fhir/Patient/$match", json=body)
    assert response.status_code == status
    assert response.json()["resourceType"] == "OperationOutcome"


async def test_match_takes_post_only_and_is_in_the_capability_statement(mpi: Mpi) -> None:
    assert (await mpi.client.get("/t/trust-a/fhir/Patient/$match")).status_code == 405
    statement = (await mpi.client.get("/t/trust-a/fhir/metadata")).json()
    patient_ops = next(r for r in statement["rest"][0]["resource"] if r["type"] == "Patient").get(
        "operation", []
    )
    assert {
        "name": "match",
        "definition": "http://hl7.org/fhir/OperationDefinition/Patient-match",
    } in patient_ops


async def test_an_empty_patient_matches_nothing(mpi: Mpi) -> None:
    await populated(mpi)
    response = await mpi.client.post(
        "/t/trust-a/fhir/Patient/$match", json=match_params({"resourceType": "Patient"})
    )
    assert response.status_code == 200 and response.json()["total"] == 0
