"""The FHIRPath engine: compile an expression once, evaluate it on many resources.

Rules:
1. ``FhirPathEngine(model)`` is built once by its caller and passed where needed; it owns the
   Navigator (per-context lookups) and a cache of compiled expressions by source text.
2. ``evaluate`` returns plain Python values: JSON values for elements of the resource, and for
   computed values bool, int, Decimal, str, ISO text for dates and times, a Quantity as
   ``{"value", "unit"[, "system", "code"]}`` and a type() result as ``{"namespace", "name"}``.
3. ``evaluate_nodes`` returns Nodes: elements keep their FHIR type and path; computed values get
   a System type (``System.Boolean``) and an empty path.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from decimal import Decimal
from typing import Any

from careweave.fhir.elements import ElementModel
from careweave.fhir.fhirpath import ast
from careweave.fhir.fhirpath.compile import ExpressionCompiler
from careweave.fhir.fhirpath.errors import FhirPathError
from careweave.fhir.fhirpath.fn_conversion import FUNCTIONS as CONVERSION
from careweave.fhir.fhirpath.fn_existence import FUNCTIONS as EXISTENCE
from careweave.fhir.fhirpath.fn_fhir import FUNCTIONS as FHIR
from careweave.fhir.fhirpath.fn_filtering import FUNCTIONS as FILTERING
from careweave.fhir.fhirpath.fn_math import FUNCTIONS as MATH
from careweave.fhir.fhirpath.fn_string import FUNCTIONS as STRING
from careweave.fhir.fhirpath.fn_utility import FUNCTIONS as UTILITY
from careweave.fhir.fhirpath.node import Navigator, Node
from careweave.fhir.fhirpath.parser import parse
from careweave.fhir.fhirpath.quantity import Quantity
from careweave.fhir.fhirpath.runtime import (
    ConformsTo,
    Env,
    Fn,
    FunctionSpec,
    Resolver,
    Terminology,
    Tracer,
)
from careweave.fhir.fhirpath.temporal import Date, DateTime, Time
from careweave.fhir.fhirpath.values import UCUM, TypeInfo, system_type_name, to_decimal

__all__ = ["Expression", "FhirPathEngine"]

FUNCTION_FAMILIES: tuple[Mapping[str, FunctionSpec], ...] = (
    EXISTENCE, FILTERING, CONVERSION, STRING, MATH, UTILITY, FHIR,
)  # fmt: skip


def _local_now() -> dt.datetime:
    return dt.datetime.now().astimezone()


class FhirPathEngine:
    """Compiles FHIRPath expressions against an R4 element model."""

    def __init__(
        self,
        model: ElementModel,
        *,
        terminology: Terminology | None = None,
        conforms_to: ConformsTo | None = None,
        tracer: Tracer | None = None,
        clock: Callable[[], dt.datetime] = _local_now,
    ) -> None:
        self.model = model
        self.navigator = Navigator(model)
        self.terminology = terminology
        self.conforms_to = conforms_to
        self.tracer = tracer
        self.clock = clock
        self.functions: dict[str, FunctionSpec] = {}
        for family in FUNCTION_FAMILIES:
            self.functions.update(family)
        self._compiled: dict[str, Expression] = {}

    def compile(self, text: str) -> Expression:
        """Parse and compile ``text``. Raises FhirPathError for bad syntax, unknown functions or
        types, wrong arities and unsupported functions."""
        found = self._compiled.get(text)
        if found is None:
            tree = parse(text)
            compiler = ExpressionCompiler(
                text, self.navigator, self.functions, self.terminology, self.conforms_to
            )
            found = Expression(text, tree, compiler.compile(tree), self)
            self._compiled[text] = found
        return found

    def node(self, value: Any, type_: str | None = None, path: str | None = None) -> Node:
        """A typed root Node for a resource (type from resourceType) or a value of ``type_``."""
        return self.navigator.root(value, type_, path)


class Expression:
    """A compiled FHIRPath expression; evaluate it as often as needed (thread-safe)."""

    def __init__(self, text: str, tree: ast.Expr, fn: Fn, engine: FhirPathEngine) -> None:
        self.text = text
        self.tree = tree
        self._fn = fn
        self._engine = engine

    def __repr__(self) -> str:
        return f"Expression({self.text!r})"

    def _run(
        self,
        resource: Any,
        context: Any,
        variables: Mapping[str, Any] | None,
        resolver: Resolver | None,
    ) -> list[Any]:
        engine = self._engine
        root = resource if resource.__class__ is Node else engine.navigator.root(resource)
        if context is None:
            focus = root
        elif context.__class__ is Node:
            focus = context
        else:
            focus = engine.navigator.root(context, name="")
        env = Env(
            root,
            focus,
            _variables(engine, variables) if variables else {},
            resolver,
            engine.tracer,
            engine.clock,
        )
        try:
            return self._fn(env, [focus])
        except FhirPathError as exc:
            if exc.expression:
                raise
            raise FhirPathError(exc.message, self.text) from exc
        except (ArithmeticError, RecursionError) as exc:
            raise FhirPathError(f"evaluation failed: {exc}", self.text) from exc

    def evaluate(
        self,
        resource: Any,
        *,
        context: Any = None,
        variables: Mapping[str, Any] | None = None,
        resolver: Resolver | None = None,
    ) -> list[Any]:
        """Evaluate on a resource (FHIR JSON dict, or a Node); values as plain Python (rule 2).

        ``context`` is the focus (``%context``) when it is not the resource itself, e.g. the
        element an invariant is declared on: a Node (typed, with its path; see
        :meth:`FhirPathEngine.node`) or a bare JSON value (typed from its resourceType, else
        navigated by its JSON keys); ``variables`` supplies ``%name`` constants;
        ``resolver`` backs ``resolve()``."""
        return [python_value(x) for x in self._run(resource, context, variables, resolver)]

    def evaluate_nodes(
        self,
        resource: Any,
        *,
        context: Any = None,
        variables: Mapping[str, Any] | None = None,
        resolver: Resolver | None = None,
    ) -> list[Node]:
        """Like :meth:`evaluate`, but every result as a Node (rule 3)."""
        return [as_node(x) for x in self._run(resource, context, variables, resolver)]


def _variables(engine: FhirPathEngine, variables: Mapping[str, Any]) -> dict[str, list[Any]]:
    out: dict[str, list[Any]] = {}
    for name, value in variables.items():
        values = value if isinstance(value, list | tuple) else [value]
        out[name] = [_item(engine, v) for v in values]
    return out


def _item(engine: FhirPathEngine, value: Any) -> Any:
    if value.__class__ is Node:
        return value
    if value.__class__ is dict:
        return engine.navigator.root(value)
    if value.__class__ is float:
        return to_decimal(value)
    return value


def python_value(item: Any) -> Any:
    """A result item as a plain Python value (rule 2)."""
    if item.__class__ is Node:
        return item.value
    if item.__class__ in (Date, DateTime, Time):
        return str(item)
    if item.__class__ is Quantity:
        if item.is_calendar:
            return {"value": item.value, "unit": item.unit}
        return {"value": item.value, "unit": item.unit, "system": UCUM, "code": item.unit}
    if item.__class__ is TypeInfo:
        return {"namespace": item.namespace, "name": item.name}
    return item


def as_node(item: Any) -> Node:
    """A result item as a Node (rule 3)."""
    if item.__class__ is Node:
        return item
    name = system_type_name(item) or ("TypeInfo" if item.__class__ is TypeInfo else "Any")
    if item.__class__ is Decimal:
        name = "Decimal"
    return Node(python_value(item), "System." + name, "", None, "", None, None)
