"""Nothing sent to /mpi/fhir makes the server answer 500: every refusal is an OperationOutcome with
its CW-8xxx (or CW-1xxx) code and status."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from tests.identity.conftest import Mpi
from tests.mpi.builders import NHS_A, patient

pytestmark = pytest.mark.anyio


def p(**values: Any) -> dict[str, Any]:
    return {
        "resourceType": "Parameters",
        "parameter": [
            {"name": k, "valueInteger": v} if isinstance(v, int) else {"name": k, "valueString": v}
            for k, v in values.items()
        ],
    }


@pytest.mark.parametrize(
    ("method", "path", "body", "status", "code"),
    [
        (
            "POST",
            "/mpi/fhir/Person/{person}/$link",
            p(patient="trust-a/Patient/a1", reason="r"),
            400,
            "CW-8005",
        ),
        (
            "POST",
            "/mpi/fhir/Person/{person}/$link",
            p(patient="nonsense", actor="a", reason="r"),
            400,
            "CW-8005",
        ),
        (
            "POST",
            "/mpi/fhir/Person/{person}/$link",
            p(patient="nope/Patient/a1", actor="a", reason="r"),
            404,
            "CW-4001",
        ),
        (
            "POST",
            "/mpi/fhir/Person/{person}/$link",
            p(patient="trust-a/Patient/zz", actor="a", reason="r"),
            404,
            "CW-8002",
        ),
        (
            "POST",
            "/mpi/fhir/Person/unknown/$link",
            p(patient="trust-a/Patient/a1", actor="a", reason="r"),
            404,
            "CW-8001",
        ),
        (
            "POST",
            "/mpi/fhir/Person/{person}/$unlink",
            p(patient="trust-b/Patient/zz", actor="a", reason="r"),
            404,
            "CW-8002",
        ),
        (
            "POST",
            "/mpi/fhir/Person/{person}/$merge",
            p(source="Person/{person}", actor="a", reason="r"),
            400,
            "CW-8005",
        ),
        (
            "POST",
            "/mpi/fhir/Person/{person}/$merge",
            p(source="Person/missing", actor="a", reason="r"),
            404,
            "CW-8001",
        ),
        (
            "POST",
            "/mpi/fhir/Person/{person}/$unmerge",
            p(source="Person/missing", actor="a", reason="r"),
            409,
            "CW-8008",
        ),
        ("POST", "/mpi/fhir/Person/{person}/$link", {"resourceType": "Patient"}, 400, "CW-1006"),
        ("POST", "/mpi/fhir/Person/{person}/$link", b"{not json", 400, "CW-1001"),
        ("GET", "/mpi/fhir/$review-compare?item=abc", None, 400, "CW-8005"),
        ("GET", "/mpi/fhir/$review-compare?item=999", None, 404, "CW-8006"),
        (
            "POST",
            "/mpi/fhir/$review-decide",
            p(item=1, decision="maybe", actor="a", reason="r"),
            400,
            "CW-8005",
        ),
        (
            "POST",
            "/mpi/fhir/$review-decide",
            p(item=999, decision="same", actor="a", reason="r"),
            404,
            "CW-8006",
        ),
        ("GET", "/mpi/fhir/Person/{person}/$everything", None, 404, "CW-1012"),
        ("PATCH", "/mpi/fhir/Person/{person}", b"[]", 405, "CW-8009"),
        ("POST", "/mpi/fhir", {"resourceType": "Bundle", "type": "batch"}, 405, "CW-8009"),
    ],
)
async def test_refusals(mpi: Mpi, method: str, path: str, body: Any, status: int, code: str) -> None:
    await mpi.put("trust-a", patient("a1", nhs=NHS_A))
    await mpi.settle()
    person = str(await mpi.person_of("trust-a", "a1"))
    url = path.replace("{person}", person)
    content = orjson.dumps(body).replace(b"{person}", person.encode()) if isinstance(body, dict) else body
    headers = {"content-type": "application/fhir+json"} if content is not None else {}
    response = await mpi.client.request(method, url, content=content, headers=headers)
    assert response.status_code == status, response.text
    outcome = response.json()
    assert outcome["resourceType"] == "OperationOutcome"
    assert outcome["issue"][0]["details"]["coding"][0]["code"] == code
