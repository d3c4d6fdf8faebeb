"""HL7 v2 over HTTP (``POST /hl7v2``, ``/t/{tenant}/hl7v2``) and the operator routes, in process.
Every error is an OperationOutcome with its HTTP status (https://hl7.org/fhir/R4/http.html)."""

from __future__ import annotations

import pytest

from careweave.system import System
from tests.gateway.conftest import corpus, msa

pytestmark = pytest.mark.anyio

ER7 = {"content-type": "x-application/hl7-v2+er7"}
HTML = {"content-type": "text/html"}


def code_of(response) -> str:
    body = response.json()
    assert body["resourceType"] == "OperationOutcome"
    return body["issue"][0]["details"]["coding"][0]["code"]


async def test_post_a_message_answers_the_ack(client) -> None:
    response = await client.post("/hl7v2", content=corpus("adt_a01.hl7"), headers=ER7)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("x-application/hl7-v2+er7")
    assert msa(response.content) == ("AA", "RJ1-A01-0001")
    found = (await client.get("/fhir/Patient?identifier=RJ10012345")).json()
    assert len(found["entry"]) == 1
    again = await client.post(
        "/hl7v2", content=corpus("adt_a01.hl7"), headers={"content-type": "application/hl7-v2"}
    )
    assert again.content == response.content  # a duplicate: the stored ACK


async def test_post_a_batch(client) -> None:
    response = await client.post("/hl7v2", content=corpus("batch_adt.hl7"), headers=ER7)
    assert response.status_code == 200 and response.content.startswith(b"FHS|")
    assert response.content.count(b"MSA|AA|") == 2


async def test_a_tenant_url_names_the_tenant(system: System, client) -> None:
    await system.store.create_tenant("trust-c")
    response = await client.post("/t/trust-c/hl7v2", content=corpus("adt_a01.hl7"), headers=ER7)
    assert msa(response.content)[0] == "AA"
    assert len((await client.get("/t/trust-c/fhir/Patient")).json()["entry"]) == 1
    assert (await client.get("/fhir/Patient")).json().get("entry", []) == []
    listed = (await client.get("/t/trust-c/hl7v2/messages")).json()
    assert [m["controlId"] for m in listed["messages"]] == ["RJ1-A01-0001"]
    assert (await client.get("/hl7v2/messages")).json()["messages"] == []


async def test_content_errors_are_acks_and_http_errors_are_outcomes(client) -> None:
    bad = await client.post("/hl7v2", content=b"MSH|^~\\&|A|B|||20240101||ZZZ^Z01|1|P|2.5.1\r", headers=ER7)
    assert bad.status_code == 200 and msa(bad.content) == ("AR", "1")
    cases = [
        (await client.post("/hl7v2", content=corpus("adt_a01.hl7"), headers=HTML), 415, "CW-1002"),
        (await client.post("/hl7v2", content=b"", headers=ER7), 400, "CW-1007"),
        (await client.get("/hl7v2"), 405, "CW-1013"),
        (await client.post("/t/nobody/hl7v2", content=corpus("adt_a01.hl7"), headers=ER7), 404, "CW-4001"),
        (await client.get("/hl7v2/messages/999"), 404, "CW-7003"),
        (await client.get("/hl7v2/messages/abc"), 404, "CW-7003"),
        (await client.get("/hl7v2/messages?status=lost"), 400, "CW-1011"),
        (await client.get("/hl7v2/messages?_count=x"), 400, "CW-1011"),
        (await client.get("/hl7v2/elsewhere"), 404, "CW-1012"),
        (await client.post("/hl7v2/messages/1/$other"), 404, "CW-1012"),
    ]  # fmt: skip
    for response, status, code in cases:
        assert (response.status_code, code_of(response)) == (status, code)


async def test_listing_pages_newest_first(client) -> None:
    for name in ("adt_a01.hl7", "adt_a02.hl7", "adt_a03.hl7"):
        await client.post("/hl7v2", content=corpus(name), headers=ER7)
    first = (await client.get("/hl7v2/messages?_count=2")).json()
    assert [m["controlId"] for m in first["messages"]] == ["RJ1-A03-0001", "RJ1-A02-0001"]
    second = (await client.get(first["next"])).json()
    assert [m["controlId"] for m in second["messages"]] == ["RJ1-A01-0001"]
    assert "next" not in second
    one = (await client.get(f"/hl7v2/messages/{second['messages'][0]['id']}")).json()
    assert one["message"].startswith("MSH|") and msa(one["reply"].encode()) == ("AA", "RJ1-A01-0001")


async def test_an_empty_batch_gets_an_empty_batch_ack(client) -> None:
    empty = b"BHS|^~\\&|PAS|RJ1|CW|CW|20240312170000||||B-0\rBTS|0\r"
    response = await client.post("/hl7v2", content=empty, headers=ER7)
    assert response.status_code == 200
    assert (
        response.content.startswith(b"BHS|")
        and b"BTS|0" in response.content
        and b"MSA" not in response.content
    )
