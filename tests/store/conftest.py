"""The store under test, on each backend: SQLite, and PostgreSQL when it is there (the shared
contract: tests/store/test_contract.py, test_buffered_writes.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from careweave.store.base import Store, Tenant
from careweave.store.sql.sqlite import SqliteStore


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def store(request, tmp_path: Path) -> AsyncIterator[Store]:
    if request.param == "postgres":
        from careweave.store.sql.postgres import PostgresStore
        from tests.postgres.support import isolated_database

        with isolated_database() as url:
            backend: Store = PostgresStore(url, pool_size=8)
            try:
                yield backend
            finally:
                await backend.close()
        return
    backend = SqliteStore(tmp_path / "store.db", synchronous="NORMAL")
    try:
        yield backend
    finally:
        await backend.close()


@pytest.fixture
async def tenant(store: Store) -> Tenant:
    t = await store.tenant("default")
    assert t is not None
    return t
