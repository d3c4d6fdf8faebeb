"""SQL for the hl7 subsystem (see components.py for the rules)."""

from __future__ import annotations

__all__ = ["MIGRATIONS", "NAME", "TENANT_TABLES"]

NAME = "hl7"
MIGRATIONS: tuple[str, ...] = ()
TENANT_TABLES: tuple[str, ...] = ()
