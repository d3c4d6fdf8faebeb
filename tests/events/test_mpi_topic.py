"""The built-in MPI topic: a demographics change at one organisation notifies the subscribers of the
others holding a record of the same person (docs/subscriptions.md, docs/mpi.md "Events"), with a
reference to their own Patient and no patient data; so do links, unlinks, merges and unmerges."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from careweave.events.mpi_feed import CURSOR, MPI_TOPIC
from careweave.events.numbering import event_numbers
from careweave.store.sql import events as events_sql
from tests.events.conftest import subscription
from tests.events.test_delivery import (  # noqa: F401  (fixtures)
    notifications,
    running,
    settings,
    wait_for,
)
from tests.mpi.builders import NHS_A, patient

pytestmark = [pytest.mark.anyio]


@pytest.mark.usefixtures("running")
async def test_a_change_elsewhere_notifies_the_other_organisation(system, client, receiver) -> None:
    for name in ("trust-a", "trust-b"):
        await system.store.create_tenant(name)
    identity = system.services.identity
    assert identity is not None
    await identity.space()
    resource = subscription(criteria=MPI_TOPIC, endpoint=receiver.url, status="active")
    del resource["id"]
    r = await client.post("/t/trust-b/fhir/Subscription", json=resource)
    assert r.status_code == 201, r.text
    sid = r.json()["id"]
    for tenant, body in (
        ("trust-a", patient("a1", nhs=NHS_A)),
        ("trust-b", patient("b1", nhs=NHS_A, given=("Jon",), line="12 Church Rd")),
    ):
        r = await client.put(f"/t/{tenant}/fhir/Patient/{body['id']}", json=body)
        assert r.status_code in (200, 201), r.text
    await identity.catch_up()
    linked = await wait_for(lambda: notifications(receiver))  # b1 joined a1's Person
    assert len(linked) == 1 and event_numbers(linked[0]) == (1,)
    assert linked[0]["entry"][1]["request"] == {"method": "GET", "url": "Patient/b1"}
    assert [r.headers["x-careweave-source"] for r in receiver.received if r.body] == [
        "linked trust-b|Patient/b1"
    ]
    receiver.received.clear()
    moved = patient("a1", nhs=NHS_A, postcode="LS6 4QU", line="3 New Street")
    assert (await client.put("/t/trust-a/fhir/Patient/a1", json=moved)).status_code == 200
    await identity.catch_up()
    found = await wait_for(lambda: notifications(receiver))
    assert len(found) == 1 and event_numbers(found[0]) == (2,)
    status = {p["name"]: p for p in found[0]["entry"][0]["resource"]["parameter"]}
    assert status["topic"]["valueCanonical"] == MPI_TOPIC
    assert status["subscription"]["valueReference"]["reference"].endswith(
        f"/t/trust-b/fhir/Subscription/{sid}"
    )
    focus = found[0]["entry"][1]
    assert focus["fullUrl"] == "http://fhir.test/t/trust-b/fhir/Patient/b1"
    assert focus["request"] == {"method": "GET", "url": "Patient/b1"} and "resource" not in focus
    hit = next(r for r in receiver.received if r.body)
    assert hit.headers["x-careweave-source"] == "trust-a|Patient/a1"
    assert b"New Street" not in hit.body and b"LS6" not in hit.body  # notify, then fetch


@pytest.mark.usefixtures("running")
async def test_an_unlink_elsewhere_notifies_the_organisation_left_behind(system, client, receiver) -> None:
    identity = await _one_person_at_two_trusts(system, client)
    await _subscribe_then_unlink_b1(system, client, receiver, identity)

    def unlinked() -> list[Any]:
        return [
            r for r in receiver.received if r.headers.get("x-careweave-source", "").startswith("unlinked")
        ]

    (hit,) = await wait_for(unlinked)
    assert hit.headers["x-careweave-source"] == "unlinked trust-b|Patient/b1"
    focus = orjson.loads(hit.body)["entry"][1]
    assert focus["request"] == {"method": "GET", "url": "Patient/a1"}  # its own record, to look again


async def test_the_feed_waits_until_the_dispatcher_has_read_the_subscription(
    system, client, receiver
) -> None:
    """mpi_feed rule 2: an outbox row written after a Subscription was stored must reach it even
    when the feed runs before the dispatcher has read that Subscription from the change log."""
    events = system.events
    assert events is not None
    identity = await _one_person_at_two_trusts(system, client)

    async def drain(run: Any) -> None:
        while await run() != -1:
            pass

    await drain(events.dispatcher.run_once)
    await drain(events.mpi_feed.run_once)
    await _subscribe_then_unlink_b1(system, client, receiver, identity)
    before = await system.store.sql_read(lambda sql: events_sql.cursor(sql, CURSOR))
    assert await events.mpi_feed.run_once() == 0  # the dispatcher has not read the Subscription yet
    assert await system.store.sql_read(lambda sql: events_sql.cursor(sql, CURSOR)) == before
    await drain(events.dispatcher.run_once)
    assert await events.mpi_feed.run_once() == 1


async def _one_person_at_two_trusts(system: Any, client: Any) -> Any:
    """trust-a's a1 and trust-b's b1, the same person by NHS number, linked; the identity service."""
    for name in ("trust-a", "trust-b"):
        await system.store.create_tenant(name)
    identity = system.services.identity
    assert identity is not None
    await identity.space()
    for tenant, body in (("trust-a", patient("a1", nhs=NHS_A)), ("trust-b", patient("b1", nhs=NHS_A))):
        r = await client.put(f"/t/{tenant}/fhir/Patient/{body['id']}", json=body)
        assert r.status_code in (200, 201), r.text
    await identity.catch_up()
    return identity


async def _subscribe_then_unlink_b1(system: Any, client: Any, receiver: Any, identity: Any) -> None:
    """trust-a subscribes to the MPI topic; then an operator unlinks b1 from the shared Person."""
    resource = subscription(criteria=MPI_TOPIC, endpoint=receiver.url, status="active")
    del resource["id"]
    assert (await client.post("/t/trust-a/fhir/Subscription", json=resource)).status_code == 201
    tid = (await system.store.tenant("trust-b")).key
    person = await identity.person_of(tid, "b1")
    assert person is not None
    await identity.unlink(person, (tid, "b1"), "ops", "registered against the wrong person")
