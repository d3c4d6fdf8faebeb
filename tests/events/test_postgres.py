"""Subscriptions on PostgreSQL (the server at 127.0.0.1:5432, or CAREWEAVE_TEST_POSTGRES): the
dispatcher, the delivery worker and the operations use only ``Store.changes`` (committed rows in
``seq`` order) and the component SQL methods, so the same flows as on SQLite hold: a handshake,
numbered notifications in order with additional context, and ``$status``.

Specs: Subscriptions R5 Backport IG v1.1.0 (notifications, handshake, $status)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest

from careweave.events.numbering import event_numbers
from careweave.settings import Settings
from tests.events.receiver import Receiver
from tests.events.test_context import encounter, subscribe, topic_with_context
from tests.events.test_delivery import (  # noqa: F401  (fixtures)
    SECRET,
    _is,
    create,
    notifications,
    running,
    wait_for,
)
from tests.postgres.support import isolated_database

pytestmark = [pytest.mark.anyio, pytest.mark.postgres, pytest.mark.usefixtures("running")]


@pytest.fixture
def settings(tmp_path: Path) -> Iterator[Settings]:
    with isolated_database() as url:
        yield Settings(
            data_dir=tmp_path / "data",
            database=url,
            pg_pool_size=4,
            base_url="http://fhir.test",
            events_retry_first_s=0.2,
            events_retry_cap_s=0.5,
            events_poll_ms=100,
            events_secret=SECRET,
        )


async def test_topic_notifications_in_order_on_postgres(client, receiver: Receiver) -> None:
    assert (await client.put("/fhir/Basic/encounter-discharge", json=topic_with_context())).status_code == 201
    r = await client.put("/fhir/Patient/p1", json={"resourceType": "Patient", "id": "p1"})
    assert r.status_code == 201
    sid = await subscribe(client, receiver.url, "id-only")
    made = []
    for _ in range(4):
        enc = await create(client, encounter("in-progress"))
        r = await client.put(f"/fhir/Encounter/{enc['id']}", json={**enc, "status": "finished"})
        assert r.status_code == 200
        made.append(enc["id"])
    await wait_for(lambda: len(notifications(receiver)) >= 4)
    await asyncio.sleep(0.2)
    bundles = notifications(receiver)
    assert [event_numbers(b) for b in bundles] == [(1,), (2,), (3,), (4,)]
    assert [b["entry"][1]["fullUrl"].rsplit("/", 1)[1] for b in bundles] == made
    assert bundles[0]["entry"][2]["fullUrl"] == "http://fhir.test/fhir/Patient/p1"  # the include
    r = await client.get(f"/fhir/Subscription/{sid}/$status")
    params = {p["name"]: p for p in r.json()["entry"][0]["resource"]["parameter"]}
    assert params["events-since-subscription-start"]["valueString"] == "4"
    assert orjson.loads(receiver.received[0].body)["entry"][0]["resource"]["resourceType"] == "Parameters"
