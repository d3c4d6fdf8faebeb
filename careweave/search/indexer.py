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
5. The fast path, per resource: which parameters apply depends only on the resource's type and its
   top-level keys, so the list is worked out once per key set (:meth:`Indexer.selected`; a few
   key sets per type in practice). A simple path runs as a walker (``PathAccessor.walker``) that
   hands each value to the emitter for its type and element path (``extract.emitter``); a
   composite's components are compiled once per focus context and read once per focus value,
   however many composites share them. The rows are those of the general path, in the same order.
"""

from __future__ import annotations

import html
import itertools
import re
from collections.abc import Callable, Iterable, Mapping, Sequence, Set
from dataclasses import dataclass
from typing import Any

from careweave.fhir.elements import ElementModel
from careweave.fhir.fhirpath import Expression, FhirPathEngine, FhirPathError, Node
from careweave.search.extract import EXTRACTORS, Context, emitter, token_rows
from careweave.search.index import IndexRows
from careweave.search.paths import PathAccessor, Sink, compile_path, compile_relative
from careweave.search.registry import SearchParam, SearchParamRegistry, split_expression
from careweave.search.values import normalise

__all__ = ["Indexer", "code_systems_of"]

_NOT_INDEXED = frozenset({"_id", "_lastUpdated", "_text", "_content", "_query", "_list", "_has"})
_TAG = re.compile(r"<[^>]+>")
_MAX_CONTENT = 20_000
_PATH_START = re.compile(r"\(*\s*([A-Z][A-Za-z]+)\.([a-z][A-Za-z0-9]*)")
_RELATIVE_START = re.compile(r"\(*\s*(%resource\.)?([a-z][A-Za-z0-9]*)(?:\.|\s|\)|\Z)")
_MAX_KEY_SETS = 512  # per resource type: beyond this many key sets, start again (rule 5)


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
    walk: Sink | None  # the accessor's walker with the parameter's emitters (rule 5)
    # composites, per (context, type) of a focus: each component's reader, or None for the engine
    focus_readers: dict[tuple[str, str], list[_Reader] | None]


Plan = list[_Entry]
# a composite's component compiled for one focus context (rule 5): its position, the walker that
# collects its (value, type, element path) items, whether it reads the resource (%resource.), and
# its parameter type
_Reader = tuple[int, Sink, bool, str]


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
        self._selected: dict[str, dict[tuple[str, ...], list[_Entry]]] = {}  # type -> keys -> entries
        # (focus context, focus type, component expression, resource type) -> walker, from root
        self._readers: dict[tuple[str, str, str, str], tuple[Sink, bool] | None] = {}
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
        accessor = compile_path(model, type_, expression) if fast else None
        walk = None
        if accessor is not None and not composite:
            ctx, kind, key = self._ctx, param.type, param.key
            walk = accessor.walker(type_, lambda code, path, _: emitter(kind, key, code, path, ctx))
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
            accessor=accessor,
            extract=EXTRACTORS.get(param.type),
            kinds=self._component_kinds(param) if composite else (),
            walk=walk,
            focus_readers={},
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

    def selected(self, type_: str, resource: dict[str, Any]) -> list[_Entry]:
        """The entries of the type's plan that can give rows for a resource with these top-level
        keys (rules 4 and 5): those reading no present element, and fast entries whose walker
        can reach no emitter, are left out."""
        by_keys = self._selected.get(type_)
        if by_keys is None:
            by_keys = self._selected[type_] = {}
        keys = tuple(resource)
        found = by_keys.get(keys)
        if found is None:
            present = self._present(type_, resource)
            found = []
            for entry in self.plan(type_):
                reads = entry.reads
                if reads is not None and reads.isdisjoint(present):
                    continue
                needs = entry.needs
                if needs is not None and not any(need <= present for need in needs):
                    continue
                if entry.accessor is not None:
                    if entry.type != "composite":
                        if entry.walk is None:
                            continue  # its values have no rows (a parameter type without an extractor)
                    elif not self._may_compose(entry, type_, resource.keys()):
                        continue
                found.append(entry)
            if len(by_keys) >= _MAX_KEY_SETS:
                by_keys.clear()
            by_keys[keys] = found
        return found

    def index(self, resource: dict[str, Any]) -> IndexRows:
        rows = IndexRows()
        type_ = resource.get("resourceType", "")
        root: Node | None = None
        seen: dict[Any, list[Node]] = {}
        memo: dict[tuple[int, Sink, str], list[Component]] = {}
        for entry in self.selected(type_, resource):
            try:
                walk = entry.walk
                if walk is not None:
                    walk(rows, resource)
                    continue
                kind = entry.type
                if (
                    kind == "composite"
                    and entry.accessor is not None
                    and self._composite_fast(rows, entry, resource, type_, memo)
                ):
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
        resource: dict[str, Any],
        type_: str,
        memo: dict[tuple[int, Sink, str], list[Component]],
    ) -> bool:
        """Composite rows through accessors; False (nothing written) when a component needs the
        engine. ``memo`` holds each component's items per focus value for this resource: several
        composites read the same components of the same focus."""
        assert entry.accessor is not None
        kinds = entry.kinds
        n = len(kinds)
        ctx = self._ctx
        combos: list[tuple[Component, ...]] = []
        for value, value_type, context, _ in entry.accessor.cursors(resource, type_):
            readers = entry.focus_readers.get((context, value_type), _UNSET)
            if readers is _UNSET:
                readers = entry.focus_readers[(context, value_type)] = self._focus_readers(
                    entry, context, value_type, type_
                )
            if readers is None:
                return False
            values: list[Any] = [None] * n
            for i, walk, from_root, kind in readers:
                target = resource if from_root else value
                key = (id(target), walk, kind)
                found = memo.get(key)
                if found is None:
                    items: list[tuple[Any, str, str]] = []
                    walk(items, target)
                    found = memo[key] = _component_items(kind, items, ctx) if items else []
                if not found:
                    break
                values[i] = found
            else:
                combos.extend(itertools.product(*values))
        if combos:
            key_ = entry.key
            rows.composites.extend([_composite_row(key_, combo) for combo in combos])
        return True

    def _may_compose(self, entry: _Entry, type_: str, keys: Set[str]) -> bool:
        """False when a composite surely has no rows for a resource with these top-level JSON keys:
        for each part of its focus, the part or one of the components it needs finds nothing
        (rule 5; ``_composite_needs`` tells the same by element names, not JSON keys)."""
        assert entry.accessor is not None
        bare = None
        for part in entry.accessor.part_keys():
            if part is not None and part.isdisjoint(keys):
                continue  # this part has no focus
            if bare is None:
                # the components on the resource itself: where a bare-type focus reads them all,
                # and where %resource components read, whatever the focus
                bare = self._component_keys(entry, type_)
            if any(
                needed is not None and needed.isdisjoint(keys)
                for needed, from_root in bare
                if part is None or from_root
            ):
                continue
            return True
        return False

    def _component_keys(self, entry: _Entry, type_: str) -> list[tuple[frozenset[str] | None, bool]]:
        """Per component read from the resource (a bare-type focus or %resource), the JSON keys one
        of which must be there for it to find anything; None where that cannot be told."""
        out: list[tuple[frozenset[str] | None, bool]] = []
        for component in entry.param.components:
            found = self._relative(type_, component.expression, type_)
            if found is None:
                out.append((None, False))
                continue
            accessor, from_root = found
            parts = accessor.part_keys()
            keys = None if None in parts else frozenset().union(*parts)  # type: ignore[arg-type]
            out.append((keys, from_root))
        return out

    def _focus_readers(
        self, entry: _Entry, context: str, value_type: str, type_: str
    ) -> list[_Reader] | None:
        """The readers of a composite's components for a focus in ``context``, the value
        components first (they are the ones most often absent: an Observation has one value[x],
        and a component without items means no rows for this focus at all); None when one of
        them needs the engine."""
        components = entry.param.components
        out = []
        for i in [*range(1, len(entry.kinds)), 0]:
            expression = components[i].expression
            key = (context, value_type, expression, type_)
            if key not in self._readers:
                found = self._relative(context, expression, type_)
                if found is None:
                    self._readers[key] = None
                else:
                    accessor, from_root = found
                    walk = (
                        accessor.walker(type_, _collect)
                        if from_root
                        else accessor.walker(value_type, _collect, context)
                    )
                    self._readers[key] = (walk or _nothing, from_root)
            reader = self._readers[key]
            if reader is None:
                return None
            out.append((i, *reader, entry.kinds[i]))
        return out

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


_UNSET: Any = object()


def _collect(type_code: str, path: str, context: str) -> Sink:
    """A component's leaf: its (value, type, element path) items, as ``PathAccessor.values``."""

    def collect(items: list[tuple[Any, str, str]], value: Any) -> None:
        items.append((value, type_code, path))

    return collect


def _nothing(items: Any, value: Any) -> None:
    return None


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
    """Every string value of the resource (not ids, urls, systems or references), for _content:
    the last 2,000 of them in document order."""
    out: list[str] = []
    if resource.__class__ is dict:
        try:
            _dict_strings(resource, out)
        except RecursionError:  # absurdly deep: the same strings, without recursion
            out = _content_strings(resource)
    if len(out) > _MAX_STRINGS:
        out = out[-_MAX_STRINGS:]
    return normalise(" ".join(out))[:_MAX_CONTENT]


_MAX_STRINGS = 2000


def _dict_strings(value: dict[str, Any], out: list[str]) -> None:
    for k, v in value.items():
        if k in _NOT_CONTENT:
            continue
        kind = v.__class__
        if kind is str:
            out.append(v)
        elif kind is dict:
            _dict_strings(v, out)
        elif kind is list:
            _list_strings(v, out)


def _list_strings(values: list[Any], out: list[str]) -> None:
    for v in values:
        kind = v.__class__
        if kind is str:
            out.append(v)
        elif kind is dict:
            _dict_strings(v, out)
        elif kind is list:
            _list_strings(v, out)


def _content_strings(resource: dict[str, Any]) -> list[str]:
    """:func:`_content`'s strings with a stack of its own: the last ones first, stopping at the
    2,000th."""
    out: list[str] = []
    stack: list[Any] = [resource]
    pop, push, keep = stack.pop, stack.append, out.append
    while stack and len(out) < _MAX_STRINGS:
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
    return out
