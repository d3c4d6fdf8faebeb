"""Schema administration on PostgreSQL for the command line (``careweave migrate``)."""

from __future__ import annotations

import psycopg

from careweave.errors import error
from careweave.store.sql.pg_migrate import migrate, pending_migrations

__all__ = ["apply_migrations"]


def apply_migrations(url: str, *, dry_run: bool = False) -> tuple[list[str], list[str]]:
    """(pending before, applied) for the database at ``url``; ``dry_run`` applies nothing."""
    try:
        conn = psycopg.connect(url, autocommit=True, connect_timeout=10, application_name="careweave-migrate")
    except psycopg.OperationalError:
        from careweave.store.sql.postgres import redact

        raise error("CW-9101", f"PostgreSQL is not reachable at {redact(url)}") from None
    with conn:
        pending = pending_migrations(conn)
        if dry_run:
            return pending, []
        return pending, migrate(conn)
