"""The gateway service end to end: real MLLP sockets on localhost into the in-process system's real
store (HL7 v2.5.1 chapter 2: original and enhanced acknowledgement, MSA/ERR; MLLP, Appendix C).

Covers: durable receipt and ACK after the write, searchable results and their Provenance,
duplicates, the error queue and replay, routing, per-patient order, batches, enhanced mode and
application ACKs, recovery of messages left ``received``.
"""

from __future__ import annotations

import asyncio
from zoneinfo import ZoneInfo

import httpx
import orjson
import pytest

from careweave.gateway import Gateway, Peer, send_messages, serve_mllp
from careweave.hl7v2 import is_batch, parse, split_batch
from careweave.hl7v2.mapping import MapOptions, map_message
from careweave.store.sql import hl7 as hl7sql
from careweave.system import System
from tests.gateway.conftest import corpus, enhanced, msa, with_control_id

pytestmark = pytest.mark.anyio

NHS = "https://fhir.nhs.uk/Id/nhs-number"


async def search(client: httpx.AsyncClient, url: str) -> list[dict]:
    response = await client.get(url)
    assert response.status_code == 200, response.text
    return [e["resource"] for e in response.json().get("entry", [])]


async def rows(gateway: Gateway, tenant: str = "default", *statuses: str):
    found = await gateway.services.store.tenant(tenant)
    assert found is not None
    return await gateway.messages(found, tuple(statuses))


async def test_a_message_is_stored_mapped_and_acknowledged(mllp_port, gateway, client) -> None:
    [ack] = await send_messages("127.0.0.1", mllp_port, [corpus("adt_a01.hl7")])
    assert msa(ack) == ("AA", "RJ1-A01-0001")
    [row] = await rows(gateway)
    assert (row.status, row.kind, row.control_id, row.facility) == (
        "processed",
        "ADT^A01",
        "RJ1-A01-0001",
        "RJ1",
    )
    assert row.raw == corpus("adt_a01.hl7") and row.reply == ack
    patients = await search(client, f"/fhir/Patient?identifier={NHS}|9990000018")
    assert [p["name"][0]["family"] for p in patients] == ["Hughes"]
    encounters = await search(client, f"/fhir/Encounter?subject=Patient/{patients[0]['id']}")
    assert [e["status"] for e in encounters] == ["in-progress"]
    provenance = await search(client, f"/fhir/Provenance?target=Patient/{patients[0]['id']}")
    assert [p["entity"][0]["what"]["identifier"]["value"] for p in provenance] == ["RJ1-A01-0001"]
    history = (await client.get("/fhir/_history")).json()  # the change log subscriptions read
    assert {e["resource"]["resourceType"] for e in history["entry"]} >= {"Patient", "Encounter", "Provenance"}


async def test_duplicates_get_the_stored_ack_and_are_not_processed_again(mllp_port, gateway, client) -> None:
    first, again = await send_messages("127.0.0.1", mllp_port, [corpus("adt_a01.hl7")] * 2)
    assert again == first  # the stored ACK, byte for byte
    assert len(await rows(gateway)) == 1
    patients = await search(client, f"/fhir/Patient?identifier={NHS}|9990000018")
    assert patients[0]["meta"]["versionId"] == "1"
    # the same control id from another facility is another message
    other = corpus("adt_a01.hl7").replace(b"|PAS|RJ1|", b"|PAS|RJ2|", 1)
    [ack] = await send_messages("127.0.0.1", mllp_port, [other])
    assert msa(ack) == ("AA", "RJ1-A01-0001") and ack != first
    assert len(await rows(gateway)) == 2


PID3 = b"PID|1||RJ10012345^^^RJ1^MR~9990000018^^^NHS^NH||"
BROKEN = with_control_id(corpus("adt_a01.hl7"), "BAD-1").replace(PID3, b"PID|1||||")  # no PID-3


async def test_a_message_that_cannot_be_mapped_waits_in_the_error_queue(mllp_port, gateway, client) -> None:
    [ack] = await send_messages("127.0.0.1", mllp_port, [BROKEN])
    assert msa(ack) == ("AE", "BAD-1")
    err = parse(ack).segment("ERR")
    assert err is not None and err.get(3) == "101" and err.get(2) == "PID"
    [row] = await rows(gateway, "default", "error")
    assert row.reason is not None and "PID-3" in row.reason
    # nothing of it was stored
    assert await search(client, "/fhir/Patient") == []
    listed = (await client.get("/hl7v2/messages?status=error")).json()
    assert [m["controlId"] for m in listed["messages"]] == ["BAD-1"]
    assert "PID-3" in listed["messages"][0]["reason"]


async def test_replay_with_a_corrected_message(mllp_port, gateway, client) -> None:
    await send_messages("127.0.0.1", mllp_port, [BROKEN])
    [row] = await rows(gateway, "default", "error")
    # replaying it unchanged fails again, and says why
    again = await client.post(f"/hl7v2/messages/{row.id}/$replay")
    assert again.status_code == 400
    assert again.json()["issue"][0]["details"]["coding"][0]["code"] == "CW-7001"
    fixed = BROKEN.replace(b"PID|1||||", b"PID|1||RJ1999^^^RJ1^MR||")
    replayed = await client.post(
        f"/hl7v2/messages/{row.id}/$replay",
        content=fixed,
        headers={"content-type": "x-application/hl7-v2+er7"},
    )
    assert replayed.status_code == 200, replayed.text
    body = replayed.json()
    assert body["status"] == "processed" and body["attempts"] == 3
    assert "RJ1999" not in body["original"] and "RJ1999" in body["message"]
    assert msa(body["reply"].encode()) == ("AA", "BAD-1")
    patients = await search(client, "/fhir/Patient")
    assert [p["identifier"][0]["value"] for p in patients] == ["RJ1999"]
    # a resend of the message now gets the new answer, still without processing it again
    [ack] = await send_messages("127.0.0.1", mllp_port, [BROKEN])
    assert msa(ack) == ("AA", "BAD-1")
    assert (await client.get("/hl7v2/messages?status=error")).json()["messages"] == []


async def test_unreadable_and_unsupported_messages_are_kept_as_rejected(mllp_port, gateway, client) -> None:
    unsupported = b"MSH|^~\\&|PAS|RJ1|CW|CW|20240312093000||ZZZ^Z01|Z-1|P|2.5.1\r"
    acks = await send_messages("127.0.0.1", mllp_port, [b"not hl7 at all", unsupported])
    assert [msa(a)[0] for a in acks] == ["AR", "AR"]
    assert parse(acks[1]).segment("ERR").get(3) == "200"  # type: ignore[union-attr]
    stored = await rows(gateway, "default", "rejected")
    assert sorted(r.raw for r in stored) == sorted([b"not hl7 at all", unsupported])
    shown = (await client.get(f"/hl7v2/messages/{stored[-1].id}")).json()
    assert shown["message"] == "not hl7 at all" and shown["status"] == "rejected"


async def test_routes_send_a_facility_to_its_tenant(system: System, mllp_port, gateway, client) -> None:
    await system.store.create_tenant("trust-b")
    await gateway.set_route("rj1", "trust-b")
    [ack] = await send_messages("127.0.0.1", mllp_port, [corpus("adt_a01.hl7")])
    assert msa(ack)[0] == "AA"
    assert len(await search(client, "/t/trust-b/fhir/Patient")) == 1
    assert await search(client, "/fhir/Patient") == []
    assert [r.control_id for r in await rows(gateway, "trust-b")] == ["RJ1-A01-0001"]
    # another facility is not routed: the default tenant
    other = corpus("adt_a01.hl7").replace(b"|PAS|RJ1|", b"|PAS|RX9|", 1)
    await send_messages("127.0.0.1", mllp_port, [other])
    assert len(await search(client, "/fhir/Patient")) == 1
    assert [(r.facility, n) for r, n in await gateway.routes()] == [("RJ1", "trust-b")]
    assert await gateway.remove_route("RJ1")
    assert await gateway.routes() == []


def visit(n: int, event: str, patient: int, end: str = "") -> bytes:
    """An admission (A01), update (A08) or discharge (A03, with PV1-45) for visit V<patient>."""
    structure = "ADT_A03" if event == "A03" else "ADT_A01"
    pv1 = ["PV1", "1", "I", "AMW^B12^3^RJ1"] + [""] * 15 + [f"V{patient}"] + [""] * 24
    pv1 += ["20240312090000", end]
    return (
        f"MSH|^~\\&|PAS|RJ1|CW|CW|2024031209{n:02d}00||ADT^{event}^{structure}|ORD-{n}|P|2.5.1\r"
        f"EVN|{event}|2024031209{n:02d}00\r"
        f"PID|1||RJ1{patient}^^^RJ1^MR||Person^Number{patient}||19610417|F\r" + "|".join(pv1) + "\r"
    ).encode()


async def test_messages_for_one_patient_keep_their_order(gateway, client) -> None:
    """A01, A08, A03 for one patient, arriving together, are applied in arrival order; the other
    patients' messages are interleaved with them."""
    messages = []
    for patient in (1, 2, 3):
        messages += [visit(3 * patient, "A01", patient), visit(3 * patient + 1, "A08", patient),
                     visit(3 * patient + 2, "A03", patient, "20240312120000")]  # fmt: skip
    peer = Peer("127.0.0.1", 1)
    tasks = [asyncio.create_task(gateway.handle(m, peer)) for m in messages]  # arrival order
    acks = await asyncio.gather(*tasks)
    assert {msa(a)[0] for a in acks} == {"AA"}
    for patient in (1, 2, 3):
        [encounter] = await search(client, f"/fhir/Encounter?identifier=V{patient}")
        history = (await client.get(f"/fhir/Encounter/{encounter['id']}/_history")).json()
        statuses = [e["resource"]["status"] for e in reversed(history["entry"])]
        assert statuses[0] == "in-progress" and statuses[-1] == "finished", statuses


async def test_a_batch_is_answered_with_a_batch_ack(mllp_port, gateway) -> None:
    [ack] = await send_messages("127.0.0.1", mllp_port, [corpus("batch_adt.hl7")])
    assert is_batch(ack)
    answers = [msa(m) for m in split_batch(ack).messages]
    assert answers == [("AA", "RJ1-A28-0001"), ("AA", "RJ1-A04-0001")]
    assert sorted(r.control_id for r in await rows(gateway)) == ["RJ1-A04-0001", "RJ1-A28-0001"]


async def test_enhanced_mode_commit_ack_and_a_kept_application_ack(mllp_port, gateway) -> None:
    message = enhanced(corpus("adt_a01.hl7"), "AL", "AL")
    [ack] = await send_messages("127.0.0.1", mllp_port, [message])
    assert msa(ack) == ("CA", "RJ1-A01-0001")  # after the raw message was committed
    await gateway.drain()  # processing follows the CA
    [row] = await rows(gateway)
    assert row.status == "processed" and row.app_ack_state == "kept"
    assert row.app_ack is not None and msa(row.app_ack) == ("AA", "RJ1-A01-0001")
    # the generator's feeds: MSH-15=AL, MSH-16=NE (no application ACK wanted)
    quiet = enhanced(with_control_id(corpus("adt_a04.hl7"), "E-2"), "AL", "NE")
    [ack] = await send_messages("127.0.0.1", mllp_port, [quiet])
    assert msa(ack) == ("CA", "E-2")
    await gateway.drain()
    assert next(r for r in await rows(gateway) if r.control_id == "E-2").app_ack is None


async def test_enhanced_mode_application_acks_go_to_the_return_address(mllp_port, gateway) -> None:
    received: list[bytes] = []

    async def sender_side(payload: bytes, peer: Peer) -> bytes:
        received.append(payload)
        return b""

    listener = await serve_mllp("127.0.0.1", 0, sender_side)
    try:
        port = listener.sockets[0].getsockname()[1]
        await gateway.set_route("RJ1", "default", ("127.0.0.1", port))
        message = enhanced(BROKEN, "AL", "ER")
        [ack] = await send_messages("127.0.0.1", mllp_port, [message])
        assert msa(ack) == ("CA", "BAD-1")  # committed: stored durably
        await gateway.drain()
        assert [msa(r) for r in received] == [("AE", "BAD-1")]
        [row] = await rows(gateway, "default", "error")
        assert row.app_ack_state == "sent"
    finally:
        listener.close()


async def test_messages_left_received_are_processed_on_start(system: System, gateway, client) -> None:
    """A crash after the raw write and before processing: the row stays received until recover()."""
    tenant = await system.store.tenant("default")
    assert tenant is not None
    raw = corpus("adt_a01.hl7")
    left = hl7sql.NewMessage(tenant.key, "PAS", "RJ1", "RJ1-A01-0001", "ADT^A01", "received", 1, "test", raw)
    await system.store.sql_write(lambda conn: hl7sql.insert(conn, left))
    assert await search(client, "/fhir/Patient") == []
    assert await gateway.recover() == 1
    [row] = await rows(gateway)
    assert row.status == "processed" and msa(row.reply or b"") == ("AA", "RJ1-A01-0001")
    assert len(await search(client, "/fhir/Patient")) == 1
    assert await gateway.recover() == 0


async def test_results_are_searchable_and_in_the_change_log(mllp_port, client) -> None:
    acks = await send_messages("127.0.0.1", mllp_port, [corpus("adt_a01.hl7"), corpus("oru_r01.hl7")])
    assert [msa(a)[0] for a in acks] == ["AA", "AA"]
    reports = await search(client, "/fhir/DiagnosticReport")
    assert len(reports) == 1
    observations = await search(
        client, f"/fhir/Observation?_has:DiagnosticReport:result:_id={reports[0]['id']}"
    )
    assert len(observations) == len(reports[0]["result"])
    changes = (await client.get("/fhir/_history?_count=200")).json()
    types = {e["resource"]["resourceType"] for e in changes["entry"]}
    assert {"Patient", "Encounter", "Provenance", "DiagnosticReport", "Observation"} <= types
    assert orjson.dumps(changes)  # serialisable, no half-written entries


async def test_a_rejected_message_sent_again_is_a_new_attempt(mllp_port, gateway) -> None:
    """AR refuses what a message is; the sender may fix it and send it with the same MSH-10."""
    good = corpus("adt_a04.hl7")
    unreadable = good.replace(b"UNICODE UTF-8", b"KLINGON-8")  # an unknown character set
    [ar, aa] = await send_messages("127.0.0.1", mllp_port, [unreadable, good])
    assert (msa(ar), msa(aa)) == (("AR", "RJ1-A04-0001"), ("AA", "RJ1-A04-0001"))
    [row] = await rows(gateway)
    assert row.status == "processed" and row.raw == good and row.original == unreadable


async def test_enhanced_mode_answers_after_the_commit_and_processes_after(
    system: System, gateway, client
) -> None:
    """The CA follows the commit of the raw message; if the process stops before processing it,
    the message waits as received and the next start processes it."""
    message = enhanced(corpus("adt_a01.hl7"), "AL", "NE")
    bundle = map_message(parse(message), MapOptions(ZoneInfo("Europe/London")))
    patient = next(e["request"]["url"] for e in bundle["entry"] if e["request"]["url"].startswith("Patient/"))
    ahead = gateway._locks.enter([patient])  # an earlier message about the patient, still running
    received = await gateway.receive(message, "test")
    assert msa(received.reply) == ("CA", "RJ1-A01-0001") and received.status == "received"
    await gateway.close(grace=0)  # stops before the processing ran: as a crash would
    gateway._locks.leave(ahead)
    [row] = await rows(gateway)
    assert row.status == "received" and row.raw == enhanced(corpus("adt_a01.hl7"), "AL", "NE")
    assert await search(client, "/fhir/Patient") == []
    restarted = Gateway(system.services, gateway.config)
    assert await restarted.recover() == 1
    [row] = await rows(restarted)
    assert row.status == "processed" and msa(row.reply or b"") == ("CA", "RJ1-A01-0001")
    assert len(await search(client, "/fhir/Patient")) == 1


async def test_a_resource_changed_by_someone_else_is_written_again(mllp_port, client) -> None:
    """Unchanged resources are skipped only while the stored version is one the gateway wrote:
    after a change through the FHIR API, the next message's snapshot is written again."""
    await send_messages("127.0.0.1", mllp_port, [corpus("adt_a01.hl7")])
    [patient] = await search(client, "/fhir/Patient?identifier=RJ10012345")
    changed = {**patient, "gender": "unknown"}
    changed.pop("meta")
    response = await client.put(f"/fhir/Patient/{patient['id']}", json=changed)
    assert response.status_code == 200 and response.json()["meta"]["versionId"] == "2"
    again = with_control_id(corpus("adt_a01.hl7"), "RJ1-A01-0002")
    [ack] = await send_messages("127.0.0.1", mllp_port, [again])
    assert msa(ack)[0] == "AA"
    [restored] = await search(client, "/fhir/Patient?identifier=RJ10012345")
    assert (restored["gender"], restored["meta"]["versionId"]) == ("female", "3")
    third = with_control_id(corpus("adt_a01.hl7"), "RJ1-A01-0003")
    await send_messages("127.0.0.1", mllp_port, [third])
    [same] = await search(client, "/fhir/Patient?identifier=RJ10012345")
    assert same["meta"]["versionId"] == "3"  # unchanged: no new version


async def test_a_merge_outlives_later_messages_and_keeps_the_retired_demographics(mllp_port, client) -> None:
    """A40 (ADT_A39): the retired record keeps what earlier messages said about it; a later A08
    on the survivor keeps ``replaces`` (Patient.link, patient.html#links)."""
    retired_a04 = corpus("adt_a04.hl7").replace(b"RJ10012345", b"RJ10099999")
    retired_a04 = with_control_id(retired_a04.replace(b"19610417", b"19610418"), "OLD-1")
    messages = [retired_a04, corpus("adt_a01.hl7"), corpus("adt_a40.hl7"), corpus("adt_a08.hl7")]
    acks = await send_messages("127.0.0.1", mllp_port, messages)
    assert [msa(a)[0] for a in acks] == ["AA"] * 4
    [retired] = await search(client, "/fhir/Patient?identifier=RJ10099999")
    [survivor] = await search(client, "/fhir/Patient?identifier=RJ10012345")
    assert survivor["link"] == [{"other": {"reference": f"Patient/{retired['id']}"}, "type": "replaces"}]
    assert retired["active"] is False
    assert retired["link"] == [{"other": {"reference": f"Patient/{survivor['id']}"}, "type": "replaced-by"}]
    assert retired["birthDate"] == "1961-04-18" and retired["name"][0]["given"][0] == "Eleanor"
    assert retired["telecom"] and retired["address"]  # demographics from the A04, not MRG alone
    assert retired["meta"]["versionId"] == "2"  # the A04's version, then the merge
    linked = await search(client, f"/fhir/Patient?link=Patient/{retired['id']}")
    assert [p["id"] for p in linked] == [survivor["id"]]
