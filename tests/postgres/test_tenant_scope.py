"""Every statement the PostgreSQL backend runs on a tenant table carries its tenant predicate: the
same broad run of interactions and the same checker as tests/store/test_tenant_scope.py, with the
statements recorded by the backend's own trace hook (parameters written into the text)."""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import httpx
import pytest

from careweave.settings import Settings
from careweave.store.sql.postgres import PostgresStore
from careweave.store.sql.schema import TENANT_TABLES
from careweave.system import build_system
from tests.postgres.support import isolated_database
from tests.store.test_tenant_scope import _exercise, unscoped

pytestmark = [pytest.mark.anyio, pytest.mark.postgres]

_MARK = re.compile(r"'(?:[^']|'')*'|\?")


def render(sql: str, params: Sequence[Any]) -> str:
    """``sql`` with its ``?`` replaced by the values, as SQLite's trace shows statements."""
    values = iter(params)

    def one(m: re.Match[str]) -> str:
        if m.group(0) != "?":
            return m.group(0)
        value = next(values, None)
        if isinstance(value, bool) or not isinstance(value, int):
            return "'v'"
        return str(value)

    return _MARK.sub(one, sql)


def test_render() -> None:
    assert render("SELECT 1 FROM resource r WHERE r.tid = ? AND r.id = ?", [3, "x"]) == (
        "SELECT 1 FROM resource r WHERE r.tid = 3 AND r.id = 'v'"
    )


async def test_no_statement_escapes_its_tenant(tmp_path: Path, monkeypatch, definitions) -> None:
    statements: list[str] = []

    def trace(sql: str, params: Sequence[Any]) -> None:
        statements.append(render(sql, params))

    with isolated_database() as url:

        def open_traced(settings: Settings) -> PostgresStore:
            return PostgresStore(settings.database, pool_size=6, trace=trace)

        monkeypatch.setattr("careweave.system.open_store", open_traced)
        system = build_system(Settings(data_dir=tmp_path / "d", database=url), definitions)
        try:
            await system.store.create_tenant("other")
            transport = httpx.ASGITransport(app=system.app)
            async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
                await _exercise(client, "/fhir")
                await _exercise(client, "/t/other/fhir")
                await system.jobs.run_once()
                for base in ("/fhir", "/t/other/fhir"):
                    r = await client.get(f"{base}/Patient?birthplace=leeds&_sort=birthplace")
                    assert r.status_code == 200
            assert await system.store.remove_tenant("other")
        finally:
            await system.close()
    touching = [s for s in statements if any(t in s for t in TENANT_TABLES)]
    assert len(touching) > 300
    assert any("FOR UPDATE" in s for s in touching)  # the write path ran
    problems = {s: unscoped(s) for s in statements if unscoped(s)}
    assert problems == {}
