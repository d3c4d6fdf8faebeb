"""Bad input gets the right 4xx and an OperationOutcome; nothing is stored; never a 500."""

from __future__ import annotations

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

pytestmark = pytest.mark.anyio

JSON = {"content-type": "application/fhir+json"}


def outcome(r: httpx.Response) -> dict:
    body = r.json()
    assert body["resourceType"] == "OperationOutcome", r.text
    assert body["issue"] and body["issue"][0]["severity"] == "error"
    return body


@pytest.mark.parametrize(
    ("method", "url", "content", "headers", "status"),
    [
        ("POST", "/fhir/Patient", b"{not json", JSON, 400),
        ("POST", "/fhir/Patient", b"", JSON, 400),
        ("POST", "/fhir/Patient", b"[1, 2]", JSON, 400),
        ("POST", "/fhir/Patient", b'{"name": []}', JSON, 400),
        ("POST", "/fhir/Patient", b'{"resourceType": "Observation"}', JSON, 400),
        (
            "POST",
            "/fhir/Patient",
            b'{"resourceType": "Patient"}',
            {"content-type": "application/fhir+xml"},
            415,
        ),
        (
            "POST",
            "/fhir/Patient",
            b'{"resourceType": "Patient"}',
            {"content-type": "image/png"},
            415,
        ),
        ("POST", "/fhir/NotAType", b'{"resourceType": "NotAType"}', JSON, 404),
        ("GET", "/fhir/NotAType/1", b"", {}, 404),
        ("GET", "/fhir/Patient/a%20b", b"", {}, 400),
        ("GET", "/fhir/Patient/1/_history/x", b"", {}, 404),
        ("GET", "/fhir/Patient/1/_history/1/more", b"", {}, 404),
        ("POST", "/fhir/Patient/1", b"{}", JSON, 405),
        ("GET", "/fhir/Patient/$nope", b"", {}, 404),
        ("PUT", "/fhir/Patient/1", b"\xff\xfe", JSON, 400),
        ("GET", "/fhir/Patient", b"", {"accept": "application/fhir+xml"}, 406),
        ("GET", "/fhir/Patient?_format=xml", b"", {}, 406),
        ("GET", "/fhir/_history?_count=many", b"", {}, 400),
        ("GET", "/t/nobody/fhir/Patient", b"", {}, 404),
        ("GET", "/fhir/Patient/1", b"", {"if-match": "garbage"}, 404),
        (
            "PUT",
            "/fhir/Patient/1",
            b'{"resourceType":"Patient","id":"1"}',
            {**JSON, "if-match": "garbage"},
            400,
        ),
    ],
)
async def test_bad_requests(client, method, url, content, headers, status) -> None:
    r = await client.request(method, url, content=content, headers=headers)
    assert r.status_code == status, r.text
    outcome(r)
    history = (await client.get("/fhir/_history")).json()
    assert history["entry"] == []  # nothing half-written


async def test_body_over_limit_is_413(system, client) -> None:
    limit = 1024
    system.app._max_body = limit
    big = b'{"resourceType":"Patient","text":"' + b"x" * limit + b'"}'
    r = await client.post("/fhir/Patient", content=big, headers=JSON)
    assert r.status_code == 413
    outcome(r)


async def test_accept_and_format_negotiation(client) -> None:
    r = await client.get("/fhir/metadata", headers={"accept": "application/json"})
    assert r.headers["content-type"].startswith("application/json")
    r = await client.get("/fhir/metadata?_format=json")
    assert r.headers["content-type"].startswith("application/fhir+json")
    r = await client.get(
        "/fhir/metadata", headers={"accept": "application/fhir+xml;q=0.9, application/fhir+json"}
    )
    assert r.status_code == 200
    r = await client.get("/fhir/metadata?_pretty=true")
    assert b'\n  "resourceType"' in r.content
    plain = await client.get("/fhir/metadata")
    assert b"\n" not in plain.content


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=st.binary(max_size=300), rtype=st.sampled_from(["Patient", "Observation", "Bundle"]))
async def test_no_body_makes_a_500(client, body: bytes, rtype: str) -> None:
    for method, url in (("POST", f"/fhir/{rtype}"), ("PUT", f"/fhir/{rtype}/x")):
        r = await client.request(method, url, content=body, headers=JSON)
        assert r.status_code < 500, r.text


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    doc=st.recursive(
        st.none() | st.booleans() | st.integers() | st.text(max_size=5),
        lambda children: (
            st.lists(children, max_size=3)
            | st.dictionaries(
                st.sampled_from(["resourceType", "id", "meta", "name", "x"]), children, max_size=4
            )
        ),
        max_leaves=10,
    )
)
async def test_no_json_document_makes_a_500(client, doc) -> None:
    r = await client.post("/fhir/Patient", json=doc, headers=JSON)
    assert r.status_code < 500, r.text
    r = await client.put("/fhir/Patient/x", json=doc, headers=JSON)
    assert r.status_code < 500, r.text
