"""The gateway's inbox on PostgreSQL: the same SQL (store/sql/hl7.py) through the PostgreSQL
backend's sql_read / sql_write / sql_write_tenant. Fails rather than skips under
CAREWEAVE_REQUIRE_SERVICES=1 when PostgreSQL is not there."""

from __future__ import annotations

from pathlib import Path

import pytest

from careweave.gateway import Peer
from careweave.settings import Settings
from careweave.system import Definitions, build_system
from tests.gateway.conftest import corpus, enhanced, msa, with_control_id
from tests.postgres.support import isolated_database

pytestmark = [pytest.mark.anyio, pytest.mark.postgres]

PEER = Peer("127.0.0.1", 1)


async def test_the_inbox_on_postgres(tmp_path: Path, definitions: Definitions) -> None:
    with isolated_database() as url:
        system = build_system(Settings(data_dir=tmp_path / "d", database=url), definitions)
        gateway = system.gateway
        assert gateway is not None
        try:
            first = await gateway.handle(corpus("adt_a01.hl7"), PEER)
            assert msa(first) == ("AA", "RJ1-A01-0001")
            assert await gateway.handle(corpus("adt_a01.hl7"), PEER) == first  # duplicate
            broken = with_control_id(corpus("adt_a01.hl7"), "PG-BAD").replace(
                b"RJ10012345^^^RJ1^MR~9990000018^^^NHS^NH", b""
            )
            assert msa(await gateway.handle(broken, PEER))[0] == "AE"
            unreadable = with_control_id(corpus("adt_a04.hl7"), "PG-4").replace(b"UNICODE UTF-8", b"KLINGON")
            assert msa(await gateway.handle(unreadable, PEER))[0] == "AR"
            fixed = with_control_id(corpus("adt_a04.hl7"), "PG-4")
            assert msa(await gateway.handle(fixed, PEER))[0] == "AA"  # a rejected message, resent
            ca = await gateway.handle(enhanced(corpus("oru_r01.hl7")), PEER)
            assert msa(ca) == ("CA", "RJ1-LAB-0001")
            await gateway.drain()
            tenant = await system.store.tenant("default")
            assert tenant is not None
            rows = {r.control_id: r for r in await gateway.messages(tenant)}
            assert {c: r.status for c, r in rows.items()} == {
                "RJ1-A01-0001": "processed",
                "PG-BAD": "error",
                "PG-4": "processed",
                "RJ1-LAB-0001": "processed",
            }
            assert rows["PG-4"].original == unreadable and rows["RJ1-LAB-0001"].app_ack is not None
            replayed = await gateway.replay(
                tenant, rows["PG-BAD"].id, broken.replace(b"PID|1||||", b"PID|1||RJ1888^^^RJ1^MR||")
            )
            assert replayed.status == "processed" and replayed.attempts == 2
            await gateway.set_route("RJ1", "default")
            assert [(r.facility, n) for r, n in await gateway.routes()] == [("RJ1", "default")]
            assert await gateway.counts(tenant) == {"processed": 4}
        finally:
            await gateway.close()
            await system.close()


async def test_ack_delivery_and_merges_on_postgres(tmp_path: Path, definitions: Definitions) -> None:
    """delivery.py's table (migration 2) and the merge inside the write transaction, on PostgreSQL."""
    from careweave.gateway import send_messages, serve_mllp
    from tests.support import free_port

    received: list[bytes] = []

    async def take(payload: bytes, peer: Peer) -> bytes:
        received.append(payload)
        return b""

    with isolated_database() as url:
        system = build_system(Settings(data_dir=tmp_path / "d", database=url), definitions)
        gateway = system.gateway
        assert gateway is not None
        port = free_port()
        try:
            await gateway.set_route("RJ1", "default", ("127.0.0.1", port))
            ca = await gateway.handle(enhanced(corpus("adt_a01.hl7")), PEER)
            assert msa(ca)[0] == "CA"
            await gateway.drain()
            tenant = await system.store.tenant("default")
            assert tenant is not None
            [row] = await gateway.messages(tenant, (), None, 10, ("pending",))
            first = await gateway.ack_delivery(tenant, row.id)
            assert first is not None and first.attempts == 1 and first.last_error
            listener = await serve_mllp("127.0.0.1", port, take)
            try:
                resent = await gateway.resend_ack(tenant, row.id)
            finally:
                listener.close()
            assert resent.app_ack_state == "sent" and [msa(r)[0] for r in received] == ["AA"]
            retired = with_control_id(corpus("adt_a04.hl7").replace(b"RJ10012345", b"RJ10099999"), "PG-OLD")
            mllp = await serve_mllp("127.0.0.1", 0, gateway.handle)
            try:
                acks = await send_messages(
                    "127.0.0.1", mllp.sockets[0].getsockname()[1], [retired, corpus("adt_a40.hl7")]
                )
            finally:
                mllp.close()
            assert [msa(a)[0] for a in acks] == ["AA", "AA"]
            from zoneinfo import ZoneInfo

            import orjson

            from careweave.hl7v2 import parse
            from careweave.hl7v2.mapping import MapOptions, map_message

            bundle = map_message(parse(corpus("adt_a40.hl7")), MapOptions(ZoneInfo("Europe/London")))
            [gone] = [e["resource"] for e in bundle["entry"] if e["resource"].get("active") is False]
            stored = await system.store.read(tenant, "Patient", gone["id"])
            assert stored is not None and stored.version == 2 and stored.body is not None
            patient = orjson.loads(stored.body)
            assert patient["active"] is False and patient["birthDate"] == "1961-04-17"  # from the A04
            assert patient["link"][0]["type"] == "replaced-by"
        finally:
            await gateway.close()
            await system.close()
