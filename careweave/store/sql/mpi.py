"""SQL for the mpi subsystem (see components.py for the rules)."""

from __future__ import annotations

__all__ = ["MIGRATIONS", "NAME", "TENANT_TABLES"]

NAME = "mpi"
MIGRATIONS: tuple[str, ...] = ()
TENANT_TABLES: tuple[str, ...] = ()
