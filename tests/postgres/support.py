"""PostgreSQL for tests: the server at CAREWEAVE_TEST_POSTGRES (default: 127.0.0.1:5432, trust
auth), one database for the test run and an empty schema per test (schemas are emptied and reused:
migrating a new one costs ~0.4 s, emptying one ~0.02 s).

With CAREWEAVE_REQUIRE_SERVICES=1 (CI) a test needing PostgreSQL fails when the server is not
reachable; otherwise it is skipped."""

from __future__ import annotations

import atexit
import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache
from urllib.parse import quote

import psycopg
import pytest

DEFAULT = "postgresql://postgres@127.0.0.1:5432/careweave_test"


def base_url() -> str:
    return os.environ.get("CAREWEAVE_TEST_POSTGRES", DEFAULT)


def _admin_url(url: str) -> str:
    head, _, _ = url.rpartition("/")
    return head + "/postgres"


@cache
def _prepare(url: str) -> str | None:
    """Create the test database if needed; the reason it cannot be used, or None."""
    try:
        with psycopg.connect(url, connect_timeout=3):
            return None
    except psycopg.OperationalError as exc:
        if "does not exist" not in str(exc):
            return str(exc).strip()
    try:
        with psycopg.connect(_admin_url(url), autocommit=True, connect_timeout=3) as conn:
            name = url.rpartition("/")[2].split("?")[0]
            conn.execute(f'CREATE DATABASE "{name}"')
    except psycopg.Error as exc:
        return str(exc).strip()
    return None


def require_postgres() -> str:
    """The test database's URL; skips (fails under CAREWEAVE_REQUIRE_SERVICES=1) without one."""
    url = base_url()
    problem = _prepare(url)
    if problem is not None:
        message = f"PostgreSQL is not reachable at {url}: {problem}"
        if os.environ.get("CAREWEAVE_REQUIRE_SERVICES") == "1":
            pytest.fail(message)
        pytest.skip(message)
    return url


def with_schema(url: str, schema: str) -> str:
    """``url`` with every connection's search_path set to ``schema``."""
    sep = "&" if "?" in url else "?"
    return f"{url}{sep}options={quote(f'-csearch_path={schema}')}"


_RESET = """
DO $$
DECLARE name text;
BEGIN
    FOR name IN SELECT tablename FROM pg_tables
                WHERE schemaname = current_schema() AND tablename <> 'component_version' LOOP
        EXECUTE format('DELETE FROM %I', name);
    END LOOP;
    FOR name IN SELECT sequencename FROM pg_sequences WHERE schemaname = current_schema() LOOP
        EXECUTE format('ALTER SEQUENCE %I RESTART', name);
    END LOOP;
END $$
"""
_clean: list[str] = []  # schemas of this test process, migrated and emptied, ready for the next test
_ours: list[str] = []


def _seeds() -> list[str]:
    """The rows the migrations insert (the default tenant, the change-log counter, ...)."""
    from careweave.store.sql.pg_migrate import schema_plan

    return [
        statement
        for _, scripts in schema_plan()
        for script in scripts
        for statement in script.split(";\n")
        if statement.strip().upper().startswith("INSERT")
    ]


def _reset(url: str, schema: str) -> None:
    """Empty ``schema`` back to a freshly migrated state (much faster than a new schema)."""
    with psycopg.connect(with_schema(url, schema), autocommit=True) as conn, conn.transaction():
        migrated = conn.execute("SELECT to_regclass('component_version') IS NOT NULL").fetchone()
        if not migrated or not migrated[0]:
            return
        conn.execute(_RESET)
        for statement in _seeds():
            conn.execute(statement)


@atexit.register
def _drop_ours() -> None:
    if not _ours:
        return
    with psycopg.connect(base_url(), autocommit=True) as conn:
        for schema in _ours:
            conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")


@contextmanager
def isolated_database(fresh: bool = False) -> Iterator[str]:
    """A database URL of its own for one test: a schema of this test process, empty (freshly
    migrated, or not migrated at all), emptied again afterwards; ``fresh``: never migrated."""
    url = require_postgres()
    if _clean and not fresh:
        schema = _clean.pop()
    else:
        schema = f"t_{os.getpid()}_{uuid.uuid4().hex[:8]}"
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(f"CREATE SCHEMA {schema}")
        _ours.append(schema)
    try:
        yield with_schema(url, schema)
    finally:
        try:
            _reset(url, schema)
        except psycopg.Error:
            return  # left for the exit hook to drop
        _clean.append(schema)
