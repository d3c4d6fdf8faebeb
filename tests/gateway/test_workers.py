"""Validation and indexing in worker processes (gateway/workers.py) give what the server process
would: the same stored resources, the same refusals."""

from __future__ import annotations

import asyncio
import pickle
from typing import Any
from zoneinfo import ZoneInfo

import orjson
import pytest

from careweave.errors import Issue
from careweave.gateway import Gateway, GatewayConfig, Peer, workers
from careweave.gateway.workers import (
    PreparePool,
    Recent,
    SecondSight,
    init_worker,
    map_and_prepare,
    prepare_resources,
)
from careweave.hl7v2.mapping import MapOptions
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


def _unstamped(ack: bytes) -> bytes:
    """An ACK without its MSH-7 and MSH-10 (the time and control id of each answer)."""
    msh, _, rest = ack.partition(b"\r")
    sep = msh[3:4]  # the answer's own field separator (a message with custom delimiters gets them back)
    fields = msh.split(sep)
    fields[6:7] = [b""]
    if len(fields) > 9:
        fields[9] = b""
    return sep.join(fields) + b"\r" + rest


async def test_with_workers_the_parent_reads_only_the_header_and_answers_the_same(system: System) -> None:
    """The parent reads the MSH alone when a worker parses (work.glance): every message, broken
    ones included, is stored and answered as without workers."""
    from tests.gateway.conftest import enhanced
    from tests.gateway.test_service import BROKEN

    a01 = corpus("adt_a01.hl7")
    bad_segment = a01.replace(b"\rPV1|", b"\rp v1|", 1)
    second_msh = a01 + b"MSH|^~\\&|PAS|RJ1|CW|CW|20240312093000||ADT^A01|X-2|P|2.5.1\r"
    messages = [
        a01, corpus("adt_a04_bom.hl7"), corpus("adt_a28_latin1_crlf.hl7"),
        corpus("oru_r01_custom_delimiters.hl7"), corpus("adt_a31_v23.hl7"), BROKEN, enhanced(BROKEN),
        with_control_id(bad_segment, "BAD-SEG"), enhanced(with_control_id(bad_segment, "BAD-SEG-E")),
        with_control_id(second_msh, "TWO-MSH"), b"not hl7 at all", b"MSH|", b"  \r\nMSH|^~\\&|A|B\nPID|1",
        enhanced(with_control_id(a01, "E-1"), "AL", "NE"),
    ]  # fmt: skip
    tenants = [await system.store.create_tenant(name) for name in ("here", "workers")]
    here = Gateway(system.services, GatewayConfig(ZoneInfo("Europe/London")))
    pool = PreparePool(1, gateway_worker_parts)
    there = Gateway(system.services, GatewayConfig(ZoneInfo("Europe/London")), pool=pool)
    try:
        await there.start()
        got = []
        for gateway, tenant in zip((here, there), tenants, strict=True):
            received = [await gateway.receive(m, "test", tenant) for m in messages]
            await gateway.drain()
            rows = sorted(await gateway.messages(tenant), key=lambda r: r.id)
            got.append((
                [(_unstamped(r.reply), r.status) for r in received],
                [(r.sender, r.facility, r.control_id, r.kind, r.status, r.reason, r.raw) for r in rows],
            ))  # fmt: skip
    finally:
        await there.close()
    assert got[0] == got[1]
    assert {status for _, status in got[0][0]} >= {"processed", "received", "error", "rejected"}


def test_second_sight_admits_what_comes_again() -> None:
    seen = SecondSight(size=2)
    assert [seen.again("a"), seen.again("a"), seen.again("a")] == [False, True, False]
    seen.again("b"), seen.again("c"), seen.again("d")  # "b" is pushed out by "c" and "d"
    assert [seen.again("d"), seen.again("b")] == [True, False]


def test_a_worker_remembers_only_what_it_saw_before() -> None:
    """A resource's rows go to the parent until the worker has seen it twice, then None; the
    Provenance, new in every message, is never remembered (workers.py rule 4)."""
    init_worker(gateway_worker_parts)
    options = MapOptions(ZoneInfo("Europe/London"))
    raw = with_control_id(corpus("adt_a01.hl7"), "SEEN-0")
    runs = [map_and_prepare(with_control_id(raw, f"SEEN-{n}"), options, False).entries for n in range(3)]
    for n, entries in enumerate(runs):
        for url, _, rows in entries:
            if url.startswith("Provenance/"):
                assert isinstance(rows, IndexRows), n
            else:
                assert (rows is None) == (n == 2), (n, url)


async def test_the_parent_remembers_only_what_it_prepared_before(system: System) -> None:
    from careweave.gateway.resources import Resources
    from careweave.hl7v2 import parse
    from careweave.hl7v2.mapping import map_message

    tenant = await system.services.tenants.get("default")
    assert tenant is not None
    resources = Resources(system.services)
    options = MapOptions(ZoneInfo("Europe/London"))
    raw = corpus("adt_a01.hl7")
    bundles = [map_message(parse(with_control_id(raw, f"P-{n}")), options) for n in range(3)]
    counts = []
    for bundle in bundles:
        await resources.prepared(tenant, bundle, None)
        counts.append(len(resources._recent))
    assert counts[0] == 0 and counts[1] == counts[2] == len(bundles[0]["entry"]) - 1  # not the Provenance


async def test_a_resource_twice_in_one_message_is_prepared_once(system: System, monkeypatch) -> None:
    from careweave.gateway.resources import Resources

    org = {"resourceType": "Organization", "id": "o1", "name": "Twice"}
    entry = {"resource": org, "request": {"method": "PUT", "url": "Organization/o1"}}
    bundle = {"resourceType": "Bundle", "type": "transaction", "entry": [entry, entry]}
    monkeypatch.setattr("careweave.gateway.workers.map_message", lambda message, options: bundle)
    init_worker(gateway_worker_parts)
    mapped = map_and_prepare(corpus("adt_a01.hl7"), MapOptions(ZoneInfo("Europe/London")), False)
    assert [type(rows) for _, _, rows in mapped.entries] == [IndexRows, type(None)]
    tenant = await system.services.tenants.get("default")
    assert tenant is not None
    first, second = await Resources(system.services).prepared(tenant, None, mapped)
    assert first[0] is second[0] and first[0].resource == org


def test_recent_keeps_what_comes_again_soon_or_later() -> None:
    """A value is on trial when first put; found again it is kept. Once its trial is over, its
    key is remembered by hash alone, and its next put keeps it (workers.py rule 4)."""
    recent: Recent[str, int] = Recent(size=2, trial=2)
    recent.put("a", 1)
    assert recent.kept("a") is None and len(recent) == 0
    assert recent.tried("a") == 1 and recent.kept("a") == 1  # found again: kept
    recent.put("b", 2), recent.put("c", 3), recent.put("d", 4)  # "b" leaves the trial
    assert recent.get("b") is None and recent.get("c") == 3
    recent.put("b", 2)  # seen before: kept at once
    assert recent.kept("b") == 2 and recent.kept("a") is None  # at most two kept: "a" went


def test_a_resource_seen_once_just_before_is_not_validated_again(monkeypatch) -> None:
    """The second time a content comes, the worker sends the rows it made the first time (the
    parent may not have kept them) without validating or indexing it again."""
    init_worker(gateway_worker_parts)
    validated: list[str] = []
    worker = workers._worker
    assert worker is not None
    check = worker.validate
    monkeypatch.setattr(worker, "validate", lambda r, t: validated.append(r["resourceType"]) or check(r, t))
    options = MapOptions(ZoneInfo("Europe/London"))
    raw = corpus("adt_a01.hl7")
    first, second, third = (
        map_and_prepare(with_control_id(raw, f"TRY-{n}"), options, False) for n in range(3)
    )
    assert len(validated) == len(first.entries) + 2  # the first time all, then each Provenance
    again = {url: rows for url, _, rows in second.entries}
    assert all(again[url] == rows for url, _, rows in first.entries if not url.startswith("Provenance/"))
    assert all(rows is None for url, _, rows in third.entries if not url.startswith("Provenance/"))


def test_index_rows_cross_the_pipe_as_they_were() -> None:
    init_worker(gateway_worker_parts)
    options = MapOptions(ZoneInfo("Europe/London"))
    mapped = map_and_prepare(with_control_id(corpus("oru_r01.hl7"), "PIPE-1"), options, False)
    sent = workers._unpack(pickle.loads(pickle.dumps(workers._pack(mapped))))
    assert sent == mapped and all(isinstance(rows, IndexRows) for _, _, rows in sent.entries)
    refused = [Issue("error", "value", "bad"), None]
    assert workers._unpack(pickle.loads(pickle.dumps(workers._pack(refused)))) == refused


async def test_the_parent_validates_a_content_once_when_it_comes_again_soon(
    system: System, monkeypatch
) -> None:
    from careweave.gateway import resources as module
    from careweave.hl7v2 import parse
    from careweave.hl7v2.mapping import map_message

    prepared: list[str] = []
    prepare = module.prepare

    async def counted(services: Any, request: Any, resource: dict[str, Any]) -> Any:
        prepared.append(resource["resourceType"])
        return await prepare(services, request, resource)

    monkeypatch.setattr(module, "prepare", counted)
    tenant = await system.services.tenants.get("default")
    assert tenant is not None
    resources = module.Resources(system.services)
    options = MapOptions(ZoneInfo("Europe/London"))
    bundles = [
        map_message(parse(with_control_id(corpus("adt_a01.hl7"), f"T-{n}")), options) for n in range(2)
    ]
    first = await resources.prepared(tenant, bundles[0], None)
    second = await resources.prepared(tenant, bundles[1], None)
    assert prepared == [e["resource"]["resourceType"] for e in bundles[0]["entry"]] + ["Provenance"]
    assert [p for p, *_ in first[:-1]] == [p for p, *_ in second[:-1]]  # the same validated, indexed forms


def test_a_worker_sends_what_it_finished_in_one_write_while_requests_wait() -> None:
    """Rule 8: results held while more requests wait in the pipe go back together; a request
    alone is answered at once."""
    import multiprocessing
    import threading

    parent, child = multiprocessing.Pipe(duplex=True)
    for seq in range(3):  # waiting before the worker reads its first one
        parent.send_bytes(pickle.dumps((seq, "prepare", ([], False))))
    thread = threading.Thread(target=workers._serve, args=(child, gateway_worker_parts), daemon=True)
    thread.start()
    try:
        assert parent.recv_bytes() == b"ready"
        together = pickle.loads(parent.recv_bytes())
        assert [(seq, ok) for seq, ok, _ in together] == [(0, True), (1, True), (2, True)]
        parent.send_bytes(pickle.dumps((3, "prepare", ([], False))))
        assert parent.poll(5)
        assert [seq for seq, _, _ in pickle.loads(parent.recv_bytes())] == [3]
    finally:
        parent.close()
        thread.join(5)
    assert not thread.is_alive()
