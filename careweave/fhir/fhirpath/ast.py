"""The FHIRPath syntax tree: frozen dataclasses made by the parser and read by the compiler.

Rules:
1. Every node records ``pos``, the character offset where it starts, for error messages.
2. A path ``a.b.c`` is ``Member(Member(Identifier(a), b), c)``; a function call is ``Call`` with
   ``base=None`` when it starts a term (``exists()``), so its input is the current focus.
3. ``TypeSpec`` is a (possibly qualified) type name: ``FHIR.Patient``, ``System.String``, ``Quantity``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = [
    "Binary",
    "Call",
    "EmptyLiteral",
    "Expr",
    "Identifier",
    "Indexer",
    "Literal",
    "Member",
    "TypeOp",
    "TypeSpec",
    "Unary",
    "Variable",
]


@dataclass(frozen=True, slots=True)
class Literal:
    """A literal: ``True``/``False``, int, Decimal, str, a Date/DateTime/Time or a Quantity."""

    value: Any
    pos: int = 0


@dataclass(frozen=True, slots=True)
class EmptyLiteral:
    """``{}``, the empty collection."""

    pos: int = 0


@dataclass(frozen=True, slots=True)
class Identifier:
    """A name at the start of a term: an element of the focus, or a type name (``Patient``)."""

    name: str
    pos: int = 0


@dataclass(frozen=True, slots=True)
class Member:
    """``base.name``: navigation to the children called ``name``."""

    base: Expr
    name: str
    pos: int = 0


@dataclass(frozen=True, slots=True)
class Call:
    """``base.name(args)`` or, with ``base=None``, ``name(args)`` applied to the focus."""

    base: Expr | None
    name: str
    args: tuple[Expr, ...]
    pos: int = 0


@dataclass(frozen=True, slots=True)
class Indexer:
    """``base[index]``."""

    base: Expr
    index: Expr
    pos: int = 0


@dataclass(frozen=True, slots=True)
class Variable:
    """``$this``, ``$index``, ``$total`` (``special=True``) or an external constant ``%name``."""

    name: str
    special: bool
    pos: int = 0


@dataclass(frozen=True, slots=True)
class Unary:
    op: str  # "+" | "-"
    operand: Expr
    pos: int = 0


@dataclass(frozen=True, slots=True)
class Binary:
    op: str
    left: Expr
    right: Expr
    pos: int = 0


@dataclass(frozen=True, slots=True)
class TypeSpec:
    """A type name; ``namespace`` is ``"FHIR"``, ``"System"`` or ``None`` when unqualified."""

    namespace: str | None
    name: str
    pos: int = 0


@dataclass(frozen=True, slots=True)
class TypeOp:
    """``operand is Type`` or ``operand as Type``."""

    op: str  # "is" | "as"
    operand: Expr
    type: TypeSpec
    pos: int = 0


Expr = Literal | EmptyLiteral | Identifier | Member | Call | Indexer | Variable | Unary | Binary | TypeOp
