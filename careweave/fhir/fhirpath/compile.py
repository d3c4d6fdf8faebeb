"""AST -> closures. Each syntax node becomes one Python closure; evaluation never walks the tree.

Rules:
1. An identifier that starts a path and names a FHIR type (``Patient``) filters the focus to
   items of that type; any other identifier navigates to the focus's children of that name.
2. Type names resolve in the FHIR namespace first, then System; ``FHIR.x``/``System.X`` are
   explicit; unqualified ``Quantity`` (in both) matches either. A name neither namespace
   defines matches nothing (R4B types named by some R4 invariants). A FHIR type test matches
   subtypes (Age is a Quantity); FHIR primitives are not System values
   (``Patient.active is Boolean`` is false, ``is boolean`` is true).
3. ``%ucum``, ``%sct``, ``%loinc``, ``%vs-*`` and ``%ext-*`` are constants; ``%context``,
   ``%resource``, ``%rootResource`` come from the evaluation; any other ``%name`` must be
   supplied by the caller or evaluation fails.
4. A union whose branches each start with a resource type (the search-parameter shape
   ``Patient.x | Practitioner.y``) runs only the branches for the focus's resourceType.
5. Unknown functions and wrong arities fail at compile time.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from careweave.fhir.fhirpath import ast
from careweave.fhir.fhirpath.arithmetic import negate
from careweave.fhir.fhirpath.errors import FhirPathError
from careweave.fhir.fhirpath.node import Navigator, Node
from careweave.fhir.fhirpath.operators import binary_operator
from careweave.fhir.fhirpath.runtime import ConformsTo, Env, Fn, FunctionSpec, Terminology
from careweave.fhir.fhirpath.values import distinct, system_type_name, system_value

__all__ = ["SYSTEM_TYPES", "ExpressionCompiler"]

SYSTEM_TYPES = frozenset(
    {"Any", "Boolean", "Integer", "Decimal", "String", "Date", "DateTime", "Time", "Quantity"}
)
_CONSTANTS: dict[str, str] = {
    "ucum": "http://unitsofmeasure.org",
    "sct": "http://snomed.info/sct",
    "loinc": "http://loinc.org",
}


def _identity(env: Env, focus: list[Any]) -> list[Any]:
    return focus


class ExpressionCompiler:
    """Compiles one expression's AST; built by the engine per ``compile`` call."""

    def __init__(
        self,
        text: str,
        navigator: Navigator,
        functions: Mapping[str, FunctionSpec],
        terminology: Terminology | None,
        conforms_to: ConformsTo | None,
    ) -> None:
        self.text = text
        self.navigator = navigator
        self.functions = functions
        self.terminology = terminology
        self.conforms_to = conforms_to
        self._dispatch: dict[type, Callable[[Any], Fn]] = {
            ast.Literal: self._literal,
            ast.EmptyLiteral: lambda e: lambda env, focus: [],
            ast.Identifier: self._identifier,
            ast.Member: self._member,
            ast.Call: self._call,
            ast.Indexer: self._indexer,
            ast.Variable: self._variable,
            ast.Unary: self._unary,
            ast.Binary: self._binary,
            ast.TypeOp: self._type_op,
        }

    def error(self, message: str, pos: int) -> FhirPathError:
        return FhirPathError(message, self.text, pos)

    def compile(self, expr: ast.Expr) -> Fn:
        return self._dispatch[type(expr)](expr)

    # -- terms --------------------------------------------------------------------------------
    def _literal(self, expr: ast.Literal) -> Fn:
        value = [expr.value]
        return lambda env, focus: value

    def _is_type_name(self, name: str) -> bool:
        return name[:1].isupper() and name in self.navigator.model.types

    def _identifier(self, expr: ast.Identifier) -> Fn:
        if self._is_type_name(expr.name):
            test = self.type_test(ast.TypeSpec("FHIR", expr.name, expr.pos))
            name = expr.name

            def type_filter(env: Env, focus: list[Any]) -> list[Any]:
                return [x for x in focus if x.__class__ is Node and (x.type == name or test(x))]

            return type_filter
        step = self.navigator.member(expr.name)
        return lambda env, focus: step(focus)

    def _member(self, expr: ast.Member) -> Fn:
        base = self.compile(expr.base)
        step = self.navigator.member(expr.name)
        return lambda env, focus: step(base(env, focus))

    def _call(self, expr: ast.Call) -> Fn:
        spec = self.functions.get(expr.name)
        if spec is None:
            raise self.error(f"unknown function {expr.name}()", expr.pos)
        if not spec.min_args <= len(expr.args) <= spec.max_args:
            raise self.error(f"wrong number of arguments to {expr.name}()", expr.pos)
        step = spec.build(self, expr.args, expr.pos)
        if expr.base is None:
            return lambda env, focus: step(env, focus, focus)
        base = self.compile(expr.base)
        return lambda env, focus: step(env, base(env, focus), focus)

    def _indexer(self, expr: ast.Indexer) -> Fn:
        base = self.compile(expr.base)
        index = self.compile(expr.index)

        def run(env: Env, focus: list[Any]) -> list[Any]:
            items = base(env, focus)
            position = index(env, focus)
            if not position:
                return []
            value = system_value(position[0])
            if value.__class__ is not int:
                raise FhirPathError("an index must be an Integer")
            return [items[value]] if 0 <= value < len(items) else []

        return run

    def _variable(self, expr: ast.Variable) -> Fn:
        name = expr.name
        if expr.special:
            if name == "$this":
                return _identity
            if name == "$index":
                return lambda env, focus: env.index
            return lambda env, focus: env.total
        return self._external(name, expr.pos)

    def _external(self, name: str, pos: int) -> Fn:
        constant = _CONSTANTS.get(name)
        if constant is None and name.startswith("vs-"):
            constant = "http://hl7.org/fhir/ValueSet/" + name[3:]
        if constant is None and name.startswith("ext-"):
            constant = "http://hl7.org/fhir/StructureDefinition/" + name[4:]
        if constant is not None:
            value = [constant]
            return lambda env, focus: value
        if name == "context":
            return lambda env, focus: env.variables.get("context") or [env.context]
        if name == "resource":
            return lambda env, focus: env.variables.get("resource") or [env.resource]
        if name == "rootResource":
            return lambda env, focus: env.variables.get("rootResource") or [env.root]

        def lookup(env: Env, focus: list[Any]) -> list[Any]:
            found = env.variables.get(name)
            if found is None:
                raise FhirPathError(f"unknown environment variable %{name}", self.text, pos)
            return found

        return lookup

    # -- operators ----------------------------------------------------------------------------
    def _unary(self, expr: ast.Unary) -> Fn:
        operand = self.compile(expr.operand)
        if expr.op == "+":
            return operand
        return lambda env, focus: negate(operand(env, focus))

    def _binary(self, expr: ast.Binary) -> Fn:
        if expr.op == "|":
            dispatched = self._dispatched_union(expr)
            if dispatched is not None:
                return dispatched
        return binary_operator(expr.op, self.compile(expr.left), self.compile(expr.right))

    def _type_op(self, expr: ast.TypeOp) -> Fn:
        operand = self.compile(expr.operand)
        test = self.type_test(expr.type)
        if expr.op == "as":
            return lambda env, focus: [x for x in operand(env, focus) if test(x)]

        def is_type(env: Env, focus: list[Any]) -> list[Any]:
            items = operand(env, focus)
            if not items:
                return []
            if len(items) > 1:
                raise FhirPathError("'is' expects a single item")
            return [test(items[0])]

        return is_type

    # -- union dispatch (rule 4) --------------------------------------------------------------
    def _lead_type(self, expr: ast.Expr | None) -> str | None:
        while expr is not None:
            if isinstance(expr, ast.Member | ast.Indexer) or (
                isinstance(expr, ast.Call) and expr.base is not None
            ):
                expr = expr.base
            elif isinstance(expr, ast.TypeOp):
                expr = expr.operand
            elif isinstance(expr, ast.Identifier):
                model = self.navigator.model
                name = expr.name
                return name if name in model.resource_types else None
            else:
                return None
        return None

    def _dispatched_union(self, expr: ast.Binary) -> Fn | None:
        branches: list[ast.Expr] = []
        stack: list[ast.Expr] = [expr]
        while stack:
            item = stack.pop()
            if isinstance(item, ast.Binary) and item.op == "|":
                stack.extend((item.right, item.left))
            else:
                branches.append(item)
        leads = [self._lead_type(b) for b in branches]
        if any(lead is None for lead in leads):
            return None
        table: dict[str, list[Fn]] = {}
        compiled = [self.compile(b) for b in branches]
        for lead, fn in zip(leads, compiled, strict=True):
            table.setdefault(lead or "", []).append(fn)
        empty: list[Fn] = []

        def run(env: Env, focus: list[Any]) -> list[Any]:
            if len(focus) == 1 and focus[0].__class__ is Node:
                chosen = table.get(focus[0].type, empty)
            else:
                chosen = compiled
            out: list[Any] = []
            for fn in chosen:
                out.extend(fn(env, focus))
            return distinct(out)

        return run

    # -- types --------------------------------------------------------------------------------
    def type_spec_of(self, expr: ast.Expr | ast.TypeSpec) -> ast.TypeSpec:
        if isinstance(expr, ast.TypeSpec):
            return expr
        if isinstance(expr, ast.Identifier):
            return ast.TypeSpec(None, expr.name, expr.pos)
        if isinstance(expr, ast.Member) and isinstance(expr.base, ast.Identifier):
            return ast.TypeSpec(expr.base.name, expr.name, expr.pos)
        raise self.error("expected a type name", getattr(expr, "pos", -1))

    def type_test(self, expr: ast.Expr | ast.TypeSpec) -> Callable[[Any], bool]:
        spec = self.type_spec_of(expr)
        namespace, name = spec.namespace, spec.name
        model = self.navigator.model
        if namespace is None and name in SYSTEM_TYPES and name in model.types:
            # ``Quantity`` names both a FHIR type and a System type: either matches
            fhir_test = self.type_test(ast.TypeSpec("FHIR", name, spec.pos))
            system_test = self.type_test(ast.TypeSpec("System", name, spec.pos))
            return lambda x: fhir_test(x) or system_test(x)
        if namespace is None:
            namespace = "FHIR" if name in model.types or name not in SYSTEM_TYPES else "System"
        if namespace == "FHIR":
            if name not in model.types:
                return lambda x: False  # a type this model does not define matches nothing
            is_subtype = self.navigator.is_subtype
            return lambda x: x.__class__ is Node and is_subtype(x.type, name)
        if namespace != "System":
            raise self.error(f"unknown type namespace {namespace}", spec.pos)
        if name not in SYSTEM_TYPES:
            return lambda x: False
        if name == "Any":
            return lambda x: x.__class__ is not Node
        return lambda x: x.__class__ is not Node and system_type_name(x) == name
