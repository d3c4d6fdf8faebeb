"""Resource -> IndexRows for every search parameter of its type, driven by the definitions.

Rules:
1. Each parameter's own FHIRPath ``expression`` (for that base type) selects the values; the
   parameter's type decides how they become rows (:mod:`careweave.search.extract`). Nothing is
   written per resource type by hand.
2. ``_id`` and ``_lastUpdated`` live on the resource row; ``_text`` (the narrative) and ``_content``
   (every string in the resource) go to the full-text index.
3. A parameter whose expression cannot be compiled or evaluated is skipped for that resource and
   counted in :attr:`Indexer.failures` (never an error for the write); the tests require none.
4. Each type's parameters are compiled once (:meth:`Indexer.plan`): a direct accessor for a simple
   path (:mod:`careweave.search.paths`), else the FHIRPath engine. A parameter that reads only
   top-level elements the resource does not have gives no rows and is not evaluated; a composite
   is skipped likewise when, for every focus, some component reads an absent element. An indexer
   serves one registry (a tenant with its own parameters has its own indexer), so the plans never
   go stale.
"""

from __future__ import annotations

import html
import itertools
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
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
_PATH_START = re.compile(r"\(*\s*([A-Z][A-Za-z]+)\.([a-z][A-Za-z0-9]*)")
_RELATIVE_START = re.compile(r"\(*\s*(%resource\.)?([a-z][A-Za-z0-9]*)(?:\.|\s|\)|\Z)")


@dataclass(frozen=True, slots=True)
class _Entry:
    """One parameter of one resource type, compiled for indexing."""

    param: SearchParam
    key: str
    type: str
    expression: Expression
    components: list[Expression]
    reads: frozenset[str] | None  # the top-level elements it reads; None: cannot be told
    needs: tuple[frozenset[str], ...] | None  # composites: a row needs all of one of these present
    accessor: PathAccessor | None  # a direct accessor when the expression is a simple path
    extract: Callable[..., None] | None
    kinds: tuple[str, ...]  # composites: each component's parameter type


Plan = list[_Entry]


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


def _composite_needs(
    model: ElementModel, type_: str, expression: str, components: Sequence[str]
) -> tuple[frozenset[str], ...] | None:
    """Per part of a composite's expression, the top-level elements that must all be present for
    that focus to give a row (a component without values makes none); None when that cannot be
    told. ``Observation | Observation.component`` with components ``code`` and
    ``value.as(Quantity)`` -> ({code, value}, {component})."""
    top = model.children(type_)
    own: list[str] = []  # the element each component reads on a bare-type focus
    from_root: list[str] = []  # the elements %resource components read, whatever the focus
    for component in components:
        names: set[tuple[bool, str]] = set()
        for part in split_expression(component):
            m = _RELATIVE_START.match(part)
            if m is None:
                return None
            names.add((m.group(1) is not None, m.group(2)))
        if len(names) != 1:
            return None  # a component of several paths: any one of them would do
        rooted, name = names.pop()
        if rooted:
            if name not in top:
                return None
            from_root.append(name)
        own.append(name)
    out = []
    for part in split_expression(expression):
        part = part.strip()
        if part == type_:
            if any(name not in top for name in own):
                return None
            out.append(frozenset(own))
            continue
        elements = _top_elements(type_, part)
        if elements is None or len(elements) != 1 or compile_path(model, type_, part) is None:
            return None  # only a simple path surely finds nothing when its element is absent
        out.append(elements | frozenset(from_root))
    return tuple(out)


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
        # False: every expression through the FHIRPath engine, and no composite skipped for an
        # absent element: the general path the fast one is tested against
        self._fast = fast
        self._engine = engine
        self._ctx = Context(code_systems)
        self._plans: dict[str, Plan] = {}
        self._relatives: dict[tuple[str, str], tuple[PathAccessor, bool] | None] = {}
        self._names: dict[str, dict[str, str]] = {}  # type -> JSON key -> its element's name
        self.failures: dict[str, str] = {}

    def plan(self, type_: str) -> Plan:
        found = self._plans.get(type_)
        if found is None:
            entries = (self._entry(type_, param) for param in self._registry.for_type(type_))
            found = self._plans[type_] = [entry for entry in entries if entry is not None]
        return found

    def _entry(self, type_: str, param: SearchParam) -> _Entry | None:
        if param.code in _NOT_INDEXED or not param.expression:
            return None
        expression = param.expression
        if param.base in ("Resource", "DomainResource"):
            expression = expression.replace(f"{param.base}.", f"{type_}.", 1)
        try:
            compiled = self._engine.compile(expression)
            components = [self._engine.compile(c.expression) for c in param.components]
        except FhirPathError as exc:
            self.failures[f"{type_}.{param.code}"] = str(exc)
            return None
        model = self._engine.model
        composite = param.type == "composite"
        fast = self._fast
        return _Entry(
            param=param,
            key=param.key,
            type=param.type,
            expression=compiled,
            components=components,
            reads=_top_elements(type_, expression),
            needs=(
                _composite_needs(model, type_, expression, [c.expression for c in param.components])
                if composite and fast
                else None
            ),
            accessor=compile_path(model, type_, expression) if fast else None,
            extract=EXTRACTORS.get(param.type),
            kinds=self._component_kinds(param) if composite else (),
        )

    def _present(self, type_: str, resource: dict[str, Any]) -> set[str]:
        """The element names present at the top of a resource (``valueQuantity`` and
        ``_valueString`` count as ``value``)."""
        names = self._names.get(type_)
        if names is None:
            names = self._names[type_] = {}
        present = set()
        model = self._engine.model
        for key in resource:
            name = names.get(key)
            if name is None:
                found = model.resolve_key(type_, key[1:] if key.startswith("_") else key)
                if found is None:
                    continue  # not an element: not remembered, so unknown keys cannot grow the map
                name = names[key] = found[0].name
            present.add(name)
        return present

    def index(self, resource: dict[str, Any]) -> IndexRows:
        rows = IndexRows()
        type_ = resource.get("resourceType", "")
        root: Node | None = None
        present = self._present(type_, resource)
        seen: dict[Any, list[Node]] = {}
        ctx = self._ctx
        for entry in self.plan(type_):
            reads = entry.reads
            if reads is not None and reads.isdisjoint(present):
                continue
            needs = entry.needs
            if needs is not None and not any(need <= present for need in needs):
                continue
            accessor = entry.accessor
            kind = entry.type
            try:
                if kind == "composite":
                    if accessor is not None and self._composite_fast(rows, entry, accessor, resource, type_):
                        continue
                elif accessor is not None:
                    extract = entry.extract
                    if extract is None:
                        continue
                    if kind == "token":
                        for value, value_type, _, path in accessor.cursors(resource, type_):
                            token_rows(rows, entry.key, value, value_type, ctx, path)
                    else:
                        for value, value_type, _, _ in accessor.cursors(resource, type_):
                            extract(rows, entry.key, value, value_type, ctx)
                    continue
                if root is None:
                    root = self._engine.node(resource)
                expression = entry.expression
                nodes = seen.get(expression.text)
                if nodes is None:
                    nodes = seen[expression.text] = expression.evaluate_nodes(root)
                if kind == "composite":
                    self._composite(rows, entry, nodes, root, seen)
                    continue
                self._extract_nodes(rows, entry, nodes)
            except (FhirPathError, TypeError, ValueError, AttributeError) as exc:
                self.failures[f"{type_}.{entry.param.code}"] = f"{type(exc).__name__}: {exc}"
        rows.narrative = _narrative(resource)
        rows.content = _content(resource)
        return rows.finish()

    def _extract_nodes(self, rows: IndexRows, entry: _Entry, nodes: list[Node]) -> None:
        extract = entry.extract
        if extract is None:
            return
        for node in nodes:
            if entry.type == "token":
                token_rows(rows, entry.key, node.value, node.type, self._ctx, _element_path(node))
            else:
                extract(rows, entry.key, node.value, node.type, self._ctx)

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
        entry: _Entry,
        focus: PathAccessor,
        resource: dict[str, Any],
        type_: str,
    ) -> bool:
        """Composite rows through accessors; False (nothing written) when a component needs the
        engine."""
        kinds = entry.kinds
        components = entry.param.components
        # the value components first: they are the ones most often absent (an Observation has one
        # value[x]), and a component without items means no rows for this focus at all
        order = [*range(1, len(kinds)), 0]
        combos: list[tuple[Any, ...]] = []
        for value, value_type, context, _ in focus.cursors(resource, type_):
            values: list[list[Component]] = [[] for _ in kinds]
            for i in order:
                found = self._relative(context, components[i].expression, type_)
                if found is None:
                    return False
                accessor, from_root = found
                items = (
                    accessor.values(resource, type_)
                    if from_root
                    else accessor.values(value, value_type, context)
                )
                values[i] = _component_items(kinds[i], items, self._ctx)
                if not values[i]:
                    break
            else:
                combos.extend(itertools.product(*values))
        rows.composites.extend(_composite_row(entry.key, combo) for combo in combos)
        return True

    def _component_kinds(self, param: SearchParam) -> tuple[str, ...]:
        kinds = []
        for component in param.components:
            definition = self._registry.by_url(component.definition)
            kinds.append(definition.type if definition is not None else "")
        return tuple(kinds)

    def _composite(
        self,
        rows: IndexRows,
        entry: _Entry,
        focuses: list[Node],
        root: Node,
        seen: dict[Any, list[Node]],
    ) -> None:
        for focus in focuses:
            values = []
            for kind, expr in zip(entry.kinds, entry.components, strict=True):
                key = (id(focus.value), expr.text)
                nodes = seen.get(key)
                if nodes is None:
                    nodes = seen[key] = expr.evaluate_nodes(root, context=focus)
                values.append(
                    _component_items(kind, [(n.value, n.type, _element_path(n)) for n in nodes], self._ctx)
                )
            for combo in itertools.product(*values):
                rows.composites.append(_composite_row(entry.key, combo))


def _element_path(node: Node) -> str | None:
    parent = node.parent
    if parent is None:
        return None
    return f"{parent.ctx}.{node.name}" if parent.ctx else None


Component = tuple[str | None, str | None, float | None, float | None]  # s, v, lo, hi


def _component_items(
    kind: str, items: Sequence[tuple[Any, str, str | None]], ctx: Context
) -> list[Component]:
    """The (system, value, low, high) of each item of a composite's component of type ``kind``."""
    if not items:
        return []
    if kind == "uri":
        return [(None, value, None, None) for value, _, _ in items if isinstance(value, str)]
    rows = IndexRows()  # one for all items: each appends its rows after the previous item's
    if kind == "token":
        for value, value_type, path in items:
            token_rows(rows, "", value, value_type, ctx, path)
        return [(s, c, None, None) for _, s, c, _ in rows.tokens]
    if kind not in _COMPONENT_ROWS:
        return []
    extract = EXTRACTORS[kind]
    for value, value_type, _ in items:
        extract(rows, "", value, value_type, ctx)
    return _COMPONENT_ROWS[kind](rows)


_COMPONENT_ROWS: dict[str, Callable[[IndexRows], list[Component]]] = {
    "quantity": lambda rows: [(s, c, lo, hi) for _, s, c, lo, hi, _ in rows.quantities],
    "number": lambda rows: [(None, None, lo, hi) for _, lo, hi, _ in rows.numbers],
    "date": lambda rows: [(None, None, float(lo), float(hi)) for _, lo, hi, _ in rows.dates],
    "string": lambda rows: [(None, norm, None, None) for _, norm, _, _ in rows.strings],
    "reference": lambda rows: [(t, i or u, None, None) for _, t, i, u, _ in rows.references],
}


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
    pop, push, keep = stack.pop, stack.append, out.append
    while stack and len(out) < 2000:
        value = pop()
        if value.__class__ is dict:
            for k, v in value.items():
                if k not in _NOT_CONTENT:
                    push(v)
        elif value.__class__ is list:
            stack.extend(value)
        elif value.__class__ is str:
            keep(value)
    out.reverse()
    return normalise(" ".join(out))[:_MAX_CONTENT]
