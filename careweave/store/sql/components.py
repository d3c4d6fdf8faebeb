"""Extension points for the subsystems that keep their own tables (events, HL7 v2, MPI).

Rules:
1. Each subsystem owns one module here (``events.py``, ``hl7.py``, ``mpi.py``) holding its DDL as
   numbered, append-only migrations and all of its SQL; nothing outside ``careweave.store`` sees SQL.
2. A component's migrations are numbered on their own (``component_version`` records the last one
   applied), so subsystems evolve independently of the core schema and of each other.
3. DDL uses a portable subset so the PostgreSQL backend can translate it mechanically: column types
   INTEGER, REAL, TEXT and BLOB; ``INTEGER PRIMARY KEY`` for a surrogate key; plain and partial
   ``CREATE [UNIQUE] INDEX``. Statements use ``?`` placeholders, ``ON CONFLICT ... DO ...`` and
   ``RETURNING`` (both backends have them), never ``INSERT OR IGNORE`` or ``lastrowid``.
4. Tables holding tenant data have a ``tid`` column and are listed in the component's
   ``TENANT_TABLES`` (removed with the tenant).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

__all__ = ["COMPONENTS", "Component", "Cursor", "Sql"]


class Cursor(Protocol):
    """The part of a DB-API cursor that component SQL may use."""

    rowcount: int

    def fetchone(self) -> Any: ...

    def fetchall(self) -> list[Any]: ...

    def __iter__(self) -> Any: ...


class Sql(Protocol):
    """A connection inside a transaction, as both backends give it to component SQL."""

    def execute(self, sql: str, params: Any = ..., /) -> Any:
        """Run one statement with ``?`` placeholders; returns a :class:`Cursor`."""

    def executemany(self, sql: str, rows: Iterable[Sequence[Any]], /) -> Any: ...


@dataclass(frozen=True, slots=True)
class Component:
    name: str
    migrations: tuple[str, ...]
    tenant_tables: tuple[str, ...]


def _components() -> tuple[Component, ...]:
    from careweave.store.sql import events, hl7, mpi

    return tuple(Component(m.NAME, tuple(m.MIGRATIONS), tuple(m.TENANT_TABLES)) for m in (events, hl7, mpi))


COMPONENTS: tuple[Component, ...] = _components()
