"""Every statement the gateway runs on its inbox carries the tenant predicate (as the core tables'
statements do: tests/store/test_tenant_scope.py), traced from SQLite itself."""

from __future__ import annotations

import re
from pathlib import Path

import httpx
import pytest

from careweave.settings import Settings
from careweave.system import build_system
from tests.gateway.conftest import corpus
from tests.store.test_tenant_scope import unscoped
from tests.support import trace_sqlite

pytestmark = pytest.mark.anyio

ER7 = {"content-type": "x-application/hl7-v2+er7"}


async def test_inbox_statements_are_tenant_scoped(tmp_path: Path, monkeypatch, definitions) -> None:
    statements = trace_sqlite(monkeypatch)
    monkeypatch.setattr("tests.store.test_tenant_scope.TENANT_TABLES", ("hl7_message",))
    system = build_system(Settings(data_dir=tmp_path / "d", sqlite_synchronous="NORMAL"), definitions)
    gateway = system.gateway
    assert gateway is not None
    try:
        await system.store.create_tenant("other")
        await gateway.set_route("RJ9", "other")
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=system.app), base_url="http://t"
        ) as client:
            for prefix in ("/hl7v2", "/t/other/hl7v2"):
                for name in ("adt_a01.hl7", "adt_a01.hl7", "batch_adt.hl7"):
                    assert (await client.post(prefix, content=corpus(name), headers=ER7)).status_code == 200
                bad = await client.post(
                    prefix, content=b"MSH|^~\\&|A|B|||2024||ZZZ^Z|Z1|P|2.5.1\r", headers=ER7
                )
                assert bad.status_code == 200
                listed = (await client.get(f"{prefix}/messages")).json()["messages"]
                await client.get(f"{prefix}/messages/{listed[0]['id']}")
                await client.post(f"{prefix}/messages/{listed[0]['id']}/$replay")
        await gateway.recover()
        assert await system.store.remove_tenant("other")
    finally:
        await system.close()
    assert unscoped("SELECT id FROM hl7_message WHERE id = 1") == ["hl7_message"]  # the checker bites
    touching = [s for s in statements if re.search(r"\bhl7_message\b", s)]
    assert len(touching) > 20
    problems = {s: unscoped(s) for s in touching if unscoped(s)}
    assert problems == {}
