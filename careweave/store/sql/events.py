"""SQL for the events subsystem (see components.py for the rules)."""

from __future__ import annotations

__all__ = ["MIGRATIONS", "NAME", "TENANT_TABLES"]

NAME = "events"
MIGRATIONS: tuple[str, ...] = ()
TENANT_TABLES: tuple[str, ...] = ()
