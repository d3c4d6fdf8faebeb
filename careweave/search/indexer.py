"""Resource -> IndexRows for every search parameter of its type, driven by the definitions.

Rules:
1. Each parameter's own FHIRPath ``expression`` (for that base type) selects the values; the
   parameter's type decides how they become rows (:mod:`careweave.search.extract`). Nothing is
   written per resource type by hand.
2. ``_id`` and ``_lastUpdated`` live on the resource row; ``_text`` (the narrative) and ``_content``
   (every string in the resource) go to the full-text index.
3. A parameter whose expression cannot be compiled or evaluated is skipped for that resource and
   counted in :attr:`Indexer.failures` (never an error for the write); the tests require none.
"""

from __future__ import annotations

import html
import itertools
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from careweave.fhir.elements import ElementModel
from careweave.fhir.fhirpath import Expression, FhirPathEngine, FhirPathError, Node
from careweave.search.extract import EXTRACTORS, Context, token_rows
from careweave.search.index import IndexRows
from careweave.search.paths import PathAccessor, compile_path, compile_relative
from careweave.search.registry import SearchParam, SearchParamRegistry, split_expression
from careweave.search.values import normalise

__all__ = ["Indexer", "code_systems_of"]

_NOT_INDEXED = frozenset({"_id", "_lastUpdated", "_text", "_content", "_query", "_list", "_has"})
_TAG = re.compile(r"<[^>]+>")
_MAX_CONTENT = 20_000

# (parameter, its expression, its components' expressions, the top-level elements it reads or
# None when that cannot be told from the expression, a direct accessor when it is a simple path)
Plan = list[tuple[SearchParam, Expression, list[Expression], frozenset[str] | None, PathAccessor | None]]
_PATH_START = re.compile(r"\(*\s*([A-Z][A-Za-z]+)\.([a-z][A-Za-z0-9]*)")


def _top_elements(type_: str, expression: str) -> frozenset[str] | None:
    """The top-level element names an expression starts from (``Observation.code | (Observation.value
    as Quantity)`` -> {code, value}); None when some part does not start from one."""
    names = set()
    for part in split_expression(expression):
        m = _PATH_START.match(part)
        if m is None or m.group(1) != type_:
            return None
        names.add(m.group(2))
    return frozenset(names)


def _present(model: ElementModel, type_: str, resource: dict[str, Any]) -> frozenset[str]:
    """The element names present at the top of a resource (``valueQuantity`` counts as ``value``)."""
    names = set()
    for key in resource:
        found = model.resolve_key(type_, key[1:] if key.startswith("_") else key)
        if found is not None:
            names.add(found[0].name)
    return frozenset(names)


def code_systems_of(model: ElementModel, value_sets: Iterable[Mapping[str, Any]]) -> dict[str, str]:
    """Element path -> code system, for ``code`` elements bound to a value set of one system."""
    single: dict[str, str] = {}
    for vs in value_sets:
        if vs.get("resourceType") != "ValueSet":
            continue
        systems = {inc.get("system") for inc in vs.get("compose", {}).get("include", ())}
        systems.discard(None)
        if len(systems) == 1 and isinstance(vs.get("url"), str):
            single[vs["url"]] = systems.pop()
    out: dict[str, str] = {}
    for path, element in model.elements().items():
        binding = element.binding
        if binding is not None and binding.value_set in single and "code" in element.type_codes:
            out[path] = single[binding.value_set]
    return out


class Indexer:
    """Extracts index rows; built once (it compiles every parameter's expression lazily)."""

    def __init__(
        self,
        registry: SearchParamRegistry,
        engine: FhirPathEngine,
        code_systems: Mapping[str, str] | None = None,
        *,
        fast: bool = True,
    ) -> None:
        self._registry = registry
        self._fast = fast  # False: every expression through the FHIRPath engine (tests, benchmarks)
        self._engine = engine
        self._ctx = Context(code_systems)
        self._plans: dict[str, Plan] = {}
        self._relatives: dict[tuple[str, str], tuple[PathAccessor, bool] | None] = {}
        self.failures: dict[str, str] = {}

    def plan(self, type_: str) -> Plan:
        found = self._plans.get(type_)
        if found is None:
            found = []
            for param in self._registry.for_type(type_):
                if param.code in _NOT_INDEXED or not param.expression:
                    continue
                expression = param.expression
                if param.base in ("Resource", "DomainResource"):
                    expression = expression.replace(f"{param.base}.", f"{type_}.", 1)
                try:
                    compiled = self._engine.compile(expression)
                    components = [self._engine.compile(c.expression) for c in param.components]
                except FhirPathError as exc:
                    self.failures[f"{type_}.{param.code}"] = str(exc)
                    continue
                accessor = compile_path(self._engine.model, type_, expression) if self._fast else None
                found.append((param, compiled, components, _top_elements(type_, expression), accessor))
            self._plans[type_] = found
        return found

    def index(self, resource: dict[str, Any]) -> IndexRows:
        rows = IndexRows()
        type_ = resource.get("resourceType", "")
        root: Node | None = None
        present = _present(self._engine.model, type_, resource)
        seen: dict[Any, list[Node]] = {}
        for param, expression, components, reads, accessor in self.plan(type_):
            if reads is not None and reads.isdisjoint(present):
                continue
            try:
                if (
                    param.type == "composite"
                    and accessor is not None
                    and (self._composite_fast(rows, param, accessor, resource, type_))
                ):
                    continue
                values: Sequence[tuple[Any, str, str | None]]
                if accessor is not None and param.type != "composite":
                    values = accessor.values(resource, type_)
                else:
                    if root is None:
                        root = self._engine.node(resource)
                    nodes = seen.get(expression.text)
                    if nodes is None:
                        nodes = seen[expression.text] = expression.evaluate_nodes(root)
                    if param.type == "composite":
                        self._composite(rows, param, nodes, components, root, seen)
                        continue
                    values = [(n.value, n.type, _element_path(n)) for n in nodes]
                extract = EXTRACTORS.get(param.type)
                if extract is None:
                    continue
                for value, value_type, path in values:
                    if param.type == "token":
                        token_rows(rows, param.key, value, value_type, self._ctx, path)
                    else:
                        extract(rows, param.key, value, value_type, self._ctx)
            except (FhirPathError, TypeError, ValueError, AttributeError) as exc:
                self.failures[f"{type_}.{param.code}"] = f"{type(exc).__name__}: {exc}"
        rows.narrative = _narrative(resource)
        rows.content = _content(resource)
        return rows.finish()

    # -- composites ---------------------------------------------------------------------------
    def _relative(self, context: str, expression: str, type_: str) -> tuple[PathAccessor, bool] | None:
        """A component's accessor: relative to its focus, or from the resource for %resource."""
        key = (context, expression)
        if key not in self._relatives:
            if expression.startswith("%resource."):
                found = compile_path(self._engine.model, type_, f"{type_}.{expression[10:]}")
                self._relatives[key] = None if found is None else (found, True)
            else:
                found = compile_relative(self._engine.model, context, expression)
                self._relatives[key] = None if found is None else (found, False)
        return self._relatives[key]

    def _composite_fast(
        self,
        rows: IndexRows,
        param: SearchParam,
        focus: PathAccessor,
        resource: dict[str, Any],
        type_: str,
    ) -> bool:
        """Composite rows through accessors; False (nothing written) when a component needs the
        engine."""
        kinds = self._component_kinds(param)
        combos: list[tuple[Any, ...]] = []
        for value, value_type, context, _ in focus.cursors(resource, type_):
            values = []
            for kind, component in zip(kinds, param.components, strict=True):
                found = self._relative(context, component.expression, type_)
                if found is None:
                    return False
                accessor, from_root = found
                items = (
                    accessor.values(resource, type_)
                    if from_root
                    else accessor.values(value, value_type, context)
                )
                values.append(_component_items(kind, items, self._ctx))
            combos.extend(itertools.product(*values))
        rows.composites.extend(_composite_row(param.key, combo) for combo in combos)
        return True

    def _component_kinds(self, param: SearchParam) -> list[str]:
        kinds = []
        for component in param.components:
            definition = self._registry.by_url(component.definition)
            kinds.append(definition.type if definition is not None else "")
        return kinds

    def _composite(
        self,
        rows: IndexRows,
        param: SearchParam,
        focuses: list[Node],
        components: list[Expression],
        root: Node,
        seen: dict[Any, list[Node]],
    ) -> None:
        kinds = self._component_kinds(param)
        for focus in focuses:
            values = []
            for kind, expr in zip(kinds, components, strict=True):
                key = (id(focus.value), expr.text)
                nodes = seen.get(key)
                if nodes is None:
                    nodes = seen[key] = expr.evaluate_nodes(root, context=focus)
                values.append(
                    _component_items(kind, [(n.value, n.type, _element_path(n)) for n in nodes], self._ctx)
                )
            for combo in itertools.product(*values):
                rows.composites.append(_composite_row(param.key, combo))


def _element_path(node: Node) -> str | None:
    parent = node.parent
    if parent is None:
        return None
    return f"{parent.ctx}.{node.name}" if parent.ctx else None


Component = tuple[str | None, str | None, float | None, float | None]  # s, v, lo, hi


def _component_items(
    kind: str, items: Sequence[tuple[Any, str, str | None]], ctx: Context
) -> list[Component]:
    out: list[Component] = []
    for value, value_type, path in items:
        rows = IndexRows()
        if kind == "token":
            token_rows(rows, "", value, value_type, ctx, path)
            out.extend((s, c, None, None) for _, s, c, _ in rows.tokens)
        elif kind == "quantity":
            EXTRACTORS["quantity"](rows, "", value, value_type, ctx)
            out.extend((s, c, lo, hi) for _, s, c, lo, hi, _ in rows.quantities)
        elif kind == "number":
            EXTRACTORS["number"](rows, "", value, value_type, ctx)
            out.extend((None, None, lo, hi) for _, lo, hi, _ in rows.numbers)
        elif kind == "date":
            EXTRACTORS["date"](rows, "", value, value_type, ctx)
            out.extend((None, None, float(lo), float(hi)) for _, lo, hi, _ in rows.dates)
        elif kind == "string":
            EXTRACTORS["string"](rows, "", value, value_type, ctx)
            out.extend((None, norm, None, None) for _, norm, _, _ in rows.strings)
        elif kind == "reference":
            EXTRACTORS["reference"](rows, "", value, value_type, ctx)
            out.extend((t, i or u, None, None) for _, t, i, u, _ in rows.references)
        elif kind == "uri" and isinstance(value, str):
            out.append((None, value, None, None))
    return out


def _composite_row(key: str, combo: tuple[Component, ...]) -> tuple[Any, ...]:
    first = combo[0]
    second = combo[1] if len(combo) > 1 else (None, None, None, None)
    third = combo[2] if len(combo) > 2 else (None, None, None, None)
    return (key, first[0], first[1], second[0], second[1], second[2], second[3], third[2], third[3])


def _narrative(resource: dict[str, Any]) -> str:
    text = resource.get("text")
    if isinstance(text, dict) and isinstance(text.get("div"), str):
        return normalise(html.unescape(_TAG.sub(" ", text["div"])))[:_MAX_CONTENT]
    return ""


_NOT_CONTENT = frozenset({"div", "resourceType", "id", "meta", "url", "system", "reference"})


def _content(resource: dict[str, Any]) -> str:
    """Every string value of the resource (not ids, urls, systems or references), for _content."""
    out: list[str] = []
    stack: list[Any] = [resource]
    while stack and len(out) < 2000:
        value = stack.pop()
        if value.__class__ is dict:
            stack.extend(v for k, v in value.items() if k not in _NOT_CONTENT)
        elif value.__class__ is list:
            stack.extend(value)
        elif value.__class__ is str:
            out.append(value)
    out.reverse()
    return normalise(" ".join(out))[:_MAX_CONTENT]
