"""Validation and indexing in worker processes (gateway/workers.py) give what the server process
would: the same stored resources, the same refusals."""

from __future__ import annotations

import asyncio
from zoneinfo import ZoneInfo

import orjson
import pytest

from careweave.gateway import Gateway, GatewayConfig, Peer
from careweave.gateway.workers import PreparePool, init_worker, prepare_resources
from careweave.search.index import IndexRows
from careweave.system import System, gateway_worker_parts
from tests.gateway.conftest import corpus, msa, with_control_id

pytestmark = pytest.mark.anyio


def test_a_worker_indexes_valid_resources_and_refuses_invalid_ones() -> None:
    init_worker(gateway_worker_parts)  # what each spawned worker runs first
    good = {"resourceType": "Patient", "id": "p1", "gender": "female", "name": [{"family": "Hughes"}]}
    bad = {"resourceType": "Patient", "id": "p2", "gender": "sometimes", "birthDate": "1961-02-30"}
    indexed, refused = prepare_resources([orjson.dumps(good), orjson.dumps(bad)], False)
    assert isinstance(indexed, IndexRows) and indexed.count() > 0
    assert isinstance(refused, list) and {i.expression[0] for i in refused if i.is_error} >= {
        "Patient.gender",
        "Patient.birthDate",
    }


async def test_messages_prepared_in_a_worker_are_stored(system: System, client, monkeypatch) -> None:
    monkeypatch.setattr("careweave.gateway.resources._RECENT", 3)  # evictions while others wait
    pool = PreparePool(1, gateway_worker_parts)
    gateway = Gateway(system.services, GatewayConfig(ZoneInfo("Europe/London")), pool=pool)
    try:
        await gateway.start()
        names = ("adt_a01.hl7", "oru_r01.hl7", "adt_a04.hl7", "siu_s12.hl7", "vxu_v04.hl7", "mdm_t02.hl7")
        acks = await asyncio.gather(*(gateway.handle(corpus(n), Peer("127.0.0.1", 1)) for n in names))
        assert [msa(a)[0] for a in acks] == ["AA"] * len(names)
    finally:
        await gateway.close()
    reports = (await client.get("/fhir/DiagnosticReport")).json()["entry"]
    observations = (await client.get("/fhir/Observation?_count=100")).json()["entry"]
    assert len(reports) == 1 and len(observations) >= len(reports[0]["resource"]["result"])
    found = (await client.get("/fhir/Patient?identifier=RJ10012345")).json()["entry"]
    assert len(found) == 1


async def test_with_workers_messages_for_one_patient_keep_their_order(system: System, client) -> None:
    """Mapping in two worker processes finishes out of order; processing keeps arrival order
    (ordering.py rule 4), and a message the mapping refuses gets the same AE as in-process."""
    from tests.gateway.test_service import BROKEN, visit

    pool = PreparePool(2, gateway_worker_parts)
    gateway = Gateway(system.services, GatewayConfig(ZoneInfo("Europe/London")), pool=pool)
    try:
        await gateway.start()
        messages = []
        for patient in (1, 2, 3):
            messages += [visit(3 * patient, "A01", patient), visit(3 * patient + 1, "A08", patient),
                         visit(3 * patient + 2, "A03", patient, "20240312120000")]  # fmt: skip
        peer = Peer("127.0.0.1", 1)
        tasks = [asyncio.create_task(gateway.handle(m, peer)) for m in [*messages, BROKEN]]
        *acks, refused = await asyncio.gather(*tasks)
        assert {msa(a)[0] for a in acks} == {"AA"}
        here = Gateway(system.services, GatewayConfig(ZoneInfo("Europe/London")))
        expected = await here.handle(with_control_id(BROKEN, "BAD-2"), peer)
        assert msa(refused)[0] == "AE"
        assert refused.split(b"\rERR|")[1] == expected.split(b"\rERR|")[1]  # same error, same place
    finally:
        await gateway.close()
    for patient in (1, 2, 3):
        [encounter] = (await client.get(f"/fhir/Encounter?identifier=V{patient}")).json()["entry"]
        history = (await client.get(f"/fhir/Encounter/{encounter['resource']['id']}/_history")).json()
        statuses = [e["resource"]["status"] for e in reversed(history["entry"])]
        assert statuses[0] == "in-progress" and statuses[-1] == "finished", statuses
