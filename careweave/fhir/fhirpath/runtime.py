"""What compiled expressions and function builders share: the evaluation environment, the
closure types, the function signature table entry, and the hooks the engine can be given.

Rules:
1. A compiled expression is a closure ``Fn(env, focus) -> collection``; ``focus`` is the input
   of the term being evaluated, which is also ``$this``.
2. A function compiles to a ``Step(env, input, focus) -> collection``: ``input`` is the
   collection it is called on, ``focus`` what its non-lambda arguments are evaluated against.
3. One Env is made per evaluation and never shared between threads; ``index``/``total`` hold
   ``$index``/``$total`` and are saved and restored around each iteration.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from careweave.fhir.fhirpath import ast
from careweave.fhir.fhirpath.node import Navigator, Node

__all__ = [
    "Builder",
    "Compiler",
    "ConformsTo",
    "Env",
    "Fn",
    "FunctionSpec",
    "Resolver",
    "Step",
    "Terminology",
    "Tracer",
]

Fn = Callable[["Env", list[Any]], list[Any]]
Step = Callable[["Env", list[Any], list[Any]], list[Any]]
Resolver = Callable[[str], "dict[str, Any] | None"]
Tracer = Callable[[str, list[Any]], None]


class Terminology(Protocol):
    """``memberOf``: is the code/Coding/CodeableConcept in the value set? None if unknown."""

    def __call__(self, value: Any, value_set: str) -> bool | None: ...


class ConformsTo(Protocol):
    """``conformsTo``: does the resource conform to the profile? None if unknown."""

    def __call__(self, resource: Node, profile: str) -> bool | None: ...


class Compiler(Protocol):
    """What a function builder may ask of the compiler."""

    navigator: Navigator
    terminology: Terminology | None
    conforms_to: ConformsTo | None

    def compile(self, expr: ast.Expr) -> Fn: ...

    def type_test(self, expr: ast.Expr | ast.TypeSpec) -> Callable[[Any], bool]: ...

    def error(self, message: str, pos: int) -> Exception: ...


Builder = Callable[[Compiler, tuple[ast.Expr, ...], int], Step]


@dataclass(frozen=True, slots=True)
class FunctionSpec:
    """A function's arity and how to compile a call of it."""

    min_args: int
    max_args: int
    build: Builder


class Env:
    """The state of one evaluation: environment variables, resolver, iteration variables."""

    __slots__ = (
        "clock",
        "context",
        "index",
        "moment",
        "resolver",
        "root",
        "total",
        "tracer",
        "variables",
    )

    def __init__(
        self,
        root: Node,
        context: Node,
        variables: Mapping[str, list[Any]],
        resolver: Resolver | None,
        tracer: Tracer | None,
        clock: Callable[[], dt.datetime],
    ) -> None:
        self.root = root
        self.context = context
        self.variables = variables
        self.resolver = resolver
        self.tracer = tracer
        self.clock = clock
        self.moment: dt.datetime | None = None
        self.index: list[Any] = []
        self.total: list[Any] = []

    @property
    def resource(self) -> Node:
        """%resource: the resource that holds the context (the root for a top-level focus)."""
        return self.context.resource or self.root

    def now(self) -> dt.datetime:
        """The evaluation's single instant (``now()``/``today()`` agree within it)."""
        if self.moment is None:
            self.moment = self.clock()
        return self.moment
