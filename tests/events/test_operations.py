"""Subscription operations over the FHIR API: $status, $events (backport IG v1.1.0 operations.html),
the mailbox channel ($mailbox, $mailbox-ack) and $get-ws-binding-token."""

from __future__ import annotations

from typing import Any

import pytest

from careweave.events.channels.websocket import BindingGrant, open_binding_token
from careweave.events.numbering import event_numbers, events_since_start
from careweave.events.subscription import CHANNEL_SYSTEM
from tests.events.test_delivery import (  # noqa: F401  (fixtures)
    _is,
    classic,
    create,
    observation,
    running,
    settings,
    status_of,
    wait_for,
)

pytestmark = [pytest.mark.anyio, pytest.mark.usefixtures("running")]

BACKPORT = "http://hl7.org/fhir/uv/subscriptions-backport/StructureDefinition/"


def mailbox_subscription() -> dict[str, Any]:
    resource = classic("https://unused.example.org", status="requested")
    resource["channel"] = {
        "type": "rest-hook",
        "_type": {
            "extension": [
                {
                    "url": BACKPORT + "backport-channel-type",
                    "valueCoding": {"system": CHANNEL_SYSTEM, "code": "mailbox"},
                }
            ]
        },
        "payload": "application/fhir+json",
        "_payload": {"extension": [{"url": BACKPORT + "backport-payload-content", "valueCode": "id-only"}]},
    }
    return resource


async def test_mailbox_polled_and_acknowledged_then_status_and_events(client) -> None:
    sub = await create(client, mailbox_subscription())
    sid = sub["id"]
    await wait_for(lambda: _is(status_of(client, sid), "active"))  # no endpoint to test: active at once
    made = [await create(client, observation(value=float(i))) for i in range(3)]

    async def polled() -> list[dict[str, Any]]:
        r = await client.get(f"/fhir/Subscription/{sid}/$mailbox")
        assert r.status_code == 200, r.text
        return [e["resource"] for e in r.json().get("entry", [])]

    async def three() -> bool:
        return len(await polled()) == 3

    await wait_for(three)
    first = await polled()
    assert [event_numbers(b) for b in first] == [(1,), (2,), (3,)]
    assert first[0]["entry"][1]["fullUrl"] == f"http://fhir.test/fhir/Observation/{made[0]['id']}"
    body = {
        "resourceType": "Parameters",
        "parameter": [{"name": "id", "valueString": b["id"]} for b in first[:2]],
    }
    r = await client.post(f"/fhir/Subscription/{sid}/$mailbox-ack", json=body)
    assert r.status_code == 200 and r.json()["parameter"][0]["valueInteger"] == 2
    again = await polled()
    assert [event_numbers(b) for b in again] == [(3,)]  # unacknowledged: offered again
    assert again[0]["id"] == first[2]["id"]

    r = await client.get(f"/fhir/Subscription/{sid}/$status")
    assert r.status_code == 200
    bundle = r.json()
    assert bundle["type"] == "searchset"
    params = {p["name"]: p for p in bundle["entry"][0]["resource"]["parameter"]}
    assert params["type"]["valueCode"] == "query-status"
    assert params["status"]["valueCode"] == "active"
    assert params["events-since-subscription-start"]["valueString"] == "3"

    r = await client.get(f"/fhir/Subscription/{sid}/$events?eventsSinceNumber=2&content=full-resource")
    assert r.status_code == 200, r.text
    replayed = r.json()
    assert event_numbers(replayed) == (2, 3) and events_since_start(replayed) == 3
    assert [e["resource"]["id"] for e in replayed["entry"][1:]] == [made[1]["id"], made[2]["id"]]
    r = await client.get(f"/fhir/Subscription/{sid}/$events?content=bogus")
    assert r.status_code == 400


async def test_operations_refuse_what_does_not_fit(client) -> None:
    sub = await create(client, classic("https://example.org/hook", status="off"))
    r = await client.get(f"/fhir/Subscription/{sub['id']}/$mailbox")
    assert r.status_code == 422 and "CW-6003" in r.text
    r = await client.post(f"/fhir/Subscription/{sub['id']}/$get-ws-binding-token")
    assert r.status_code == 422
    r = await client.get("/fhir/Subscription/nope/$status")
    assert r.status_code == 404
    r = await client.get(f"/fhir/Patient/{sub['id']}/$status")
    assert r.status_code == 404  # not defined on Patient


async def test_ws_binding_token(client, system) -> None:
    resource = classic("", status="requested")
    resource["channel"] = {"type": "websocket", "payload": "application/fhir+json"}
    sub = await create(client, resource)
    r = await client.post(f"/fhir/Subscription/{sub['id']}/$get-ws-binding-token")
    assert r.status_code == 200, r.text
    params = {p["name"]: p for p in r.json()["parameter"]}
    assert params["websocket-url"]["valueUrl"] == "ws://fhir.test/fhir/$subscription-ws"
    grant = open_binding_token(system.services.events_secret, params["token"]["valueString"], now_ms=0)
    assert isinstance(grant, BindingGrant) and grant.subscription_ids == (sub["id"],)


async def test_status_at_type_level_lists_what_is_found(client) -> None:
    a = await create(client, classic("https://example.org/a", status="off"))
    b = await create(client, mailbox_subscription())
    await wait_for(lambda: _is(status_of(client, b["id"]), "active"))
    r = await client.get(f"/fhir/Subscription/$status?id={a['id']},missing&id={b['id']}")
    assert r.status_code == 200, r.text
    found = [e["resource"]["parameter"][0]["valueReference"]["reference"] for e in r.json()["entry"]]
    assert [f.rsplit("/", 1)[1] for f in found] == [a["id"], b["id"]]
    r = await client.get("/fhir/Subscription/$status?status=active")
    assert [
        e["resource"]["parameter"][0]["valueReference"]["reference"].rsplit("/", 1)[1]
        for e in r.json()["entry"]
    ] == [b["id"]]


async def test_odd_operation_inputs_are_client_errors_never_500(client) -> None:
    mailbox = await create(client, mailbox_subscription())
    sid = mailbox["id"]
    await wait_for(lambda: _is(status_of(client, sid), "active"))
    cases = [
        ("GET", f"/fhir/Subscription/{sid}/$events?eventsSinceNumber=abc", None, 400),
        ("GET", f"/fhir/Subscription/{sid}/$events?eventsSinceNumber=-3&eventsUntilNumber=-9", None, 200),
        ("GET", f"/fhir/Subscription/{sid}/$mailbox?_count=lots", None, 400),
        ("POST", f"/fhir/Subscription/{sid}/$mailbox-ack", b"{not json", 400),
        ("POST", f"/fhir/Subscription/{sid}/$mailbox-ack", b'{"resourceType":"Patient"}', 400),
        ("POST", f"/fhir/Subscription/{sid}/$mailbox-ack", b'{"resourceType":"Parameters"}', 400),
        ("POST", f"/fhir/Subscription/{sid}/$replay", b'{"resourceType":"Parameters","parameter":7}', 400),
        ("POST", f"/fhir/Subscription/{sid}/$replay", b'{"resourceType":"Parameters","parameter":[3]}', 200),
        ("GET", "/fhir/Subscription/nope/$dead-letters", None, 404),
        ("POST", "/fhir/Subscription/nope/$replay", None, 404),
        ("GET", "/fhir/Subscription/$get-ws-binding-token", None, 400),
        ("GET", f"/fhir/Subscription/{sid}/$replay", None, 405),
    ]
    for method, url, body, expected in cases:
        headers = {"content-type": "application/fhir+json"} if body is not None else {}
        r = await client.request(method, url, content=body, headers=headers)
        assert r.status_code == expected, (method, url, r.status_code, r.text)
        assert r.json()["resourceType"] in ("OperationOutcome", "Bundle", "Parameters")
