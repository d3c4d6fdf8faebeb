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
