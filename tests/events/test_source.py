"""The source of each event (``X-Careweave-Source``): for writes from the HL7 v2 gateway, the
message that made them (the Provenance the gateway writes in the same commit, its ``source``
entity naming the message by MSH-10); for other writes, the resource's ``meta.source``
(https://hl7.org/fhir/R4/resource.html#Meta, provenance.html)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from careweave.events.dispatch import provenance_source, provenance_sources
from careweave.store.base import Change
from tests.events.receiver import Receiver
from tests.events.test_delivery import (  # noqa: F401  (fixtures)
    _is,
    create,
    running,
    settings,
    status_of,
    wait_for,
)
from tests.gateway.conftest import corpus, msa

pytestmark = pytest.mark.anyio

V2 = "application/hl7-v2"
MESSAGE_ID = "https://fhir.rj1.nhs.uk/Id/hl7v2-message-control-id"


def patient_subscription(endpoint: str) -> dict[str, Any]:
    return {
        "resourceType": "Subscription",
        "status": "requested",
        "reason": "source test",
        "criteria": "Patient?gender=female",
        "channel": {"type": "rest-hook", "endpoint": endpoint, "payload": "application/fhir+json"},
    }


@pytest.mark.usefixtures("running")
async def test_gateway_writes_name_the_hl7_message_api_writes_their_meta_source(
    client, receiver: Receiver
) -> None:
    sub = await create(client, patient_subscription(receiver.url))
    await wait_for(lambda: _is(status_of(client, sub["id"]), "active"))
    r = await client.post(
        "/hl7v2", content=corpus("adt_a01.hl7"), headers={"content-type": "application/hl7-v2"}
    )
    assert r.status_code == 200 and msa(r.content) == ("AA", "RJ1-A01-0001")
    api = {"resourceType": "Patient", "gender": "female", "meta": {"source": "https://pas.example.org#42"}}
    made = await create(client, api)
    await wait_for(lambda: len(receiver.received) >= 2)
    await asyncio.sleep(0.2)
    sources = {r.path.rsplit("/", 1)[1]: r.headers.get("x-careweave-source") for r in receiver.received}
    assert sources.pop(made["id"]) == "https://pas.example.org#42"
    assert list(sources.values()) == [f"{MESSAGE_ID}|RJ1-A01-0001"]


def change(seq: int, type_: str, id_: str, body: bytes | None, ms: int = 5) -> Change:
    return Change(seq, 1, type_, id_, 1, ms, "PUT", body)


def test_provenance_sources_map_targets_of_the_same_commit() -> None:
    prov = (
        b'{"resourceType":"Provenance","id":"p","target":[{"reference":"Patient/a"},'
        b'{"reference":"Encounter/e/_history/2"},{"reference":"http://x/Patient/b"}],'
        b'"entity":[{"role":"derivation","what":{"display":"no"}},'
        b'{"role":"source","what":{"identifier":{"system":"urn:s","value":"M1"}}}]}'
    )
    found = provenance_sources([change(1, "Patient", "a", b"{}"), change(2, "Provenance", "p", prov)])
    assert found == {
        (1, "Provenance", "p", 5): "urn:s|M1",
        (1, "Patient", "a", 5): "urn:s|M1",
        (1, "Encounter", "e", 5): "urn:s|M1",
    }
    assert (
        provenance_source({"entity": [{"role": "source", "what": {"reference": "Binary/m"}}]}) == "Binary/m"
    )
    assert provenance_source({"entity": "junk"}) is None
