"""Direct accessors for the simple search-parameter expressions: the fast path of indexing.

Most SearchParameter expressions are plain paths (``Patient.address.city``), sometimes with a type
(``(Observation.value as Quantity)``, ``.as(T)``, ``.ofType(T)``), a reference-type filter
(``.where(resolve() is Patient)``) or a field filter (``.where(system='email')``), joined by
``|``. Those compile here into walks over the JSON that yield (value, FHIR type) without building
FHIRPath nodes; anything else goes to the FHIRPath engine.

Rules:
1. :func:`compile_path` returns None for any expression outside that subset: the caller then
   uses the engine. There is no partial support.
2. Results are those the engine gives (``evaluate_nodes``: value and type), in the same order; a
   differential test over every parameter of every resource type holds the two together.
3. ``resolve() is X`` keeps references whose literal points at type X (``X/id``, an absolute URL
   ending in ``X/id``), as the engine's resolver-less ``resolve()`` does.
4. :meth:`PathAccessor.walker` compiles an accessor once more, into nested closures that hand each
   value to a sink chosen for its type and element path when the walker is built (indexing's
   hot path): the same values in the same order as :meth:`PathAccessor.cursors`, without
   building a cursor per value and step. A cast is decided when the walker is built, since every
   step knows the types it yields.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from careweave.fhir.elements import ElementModel, choice_key
from careweave.search.registry import split_expression
from careweave.search.values import reference_of

__all__ = ["Leaf", "PathAccessor", "Sink", "compile_path", "compile_relative"]

_IDENT = r"[A-Za-z][A-Za-z0-9]*"
_PART = re.compile(
    rf"\(?\s*(?P<path>{_IDENT}(?:\.{_IDENT})+)"
    rf"(?P<filters>(?:\.(?:where\((?:resolve\(\) is {_IDENT}|{_IDENT}\s*=\s*'[^']*')\)"
    rf"|as\({_IDENT}\)|ofType\({_IDENT}\)))*)"
    rf"(?:\s+as\s+(?P<infix>{_IDENT}))?\s*\)?\Z"
)
_FILTER = re.compile(
    rf"\.(?:where\((?:resolve\(\) is (?P<resolve>{_IDENT})|(?P<field>{_IDENT})\s*=\s*'(?P<literal>[^']*)')\)"
    rf"|(?:as|ofType)\((?P<cast>{_IDENT})\))"
)

_CAST_THEN_PATH = re.compile(
    rf"\(\s*(?P<inner>{_IDENT}(?:\.{_IDENT})+\s+as\s+(?P<cast>{_IDENT}))\s*\)(?P<names>(?:\.{_IDENT})+)\Z"
)

Item = tuple[Any, str, str]  # a JSON value, its FHIR type code, its element path (Patient.gender)
Cursor = tuple[Any, str, str, str]  # value, type, context of its children, element path
Step = Callable[[list[Cursor]], list[Cursor]]
Sink = Callable[[Any, Any], Any]  # (target, value): what a walker does with each value it finds
Leaf = Callable[[str, str, str], Sink | None]  # (type, element path, child context) -> its sink


class PathAccessor:
    """A compiled simple expression: :meth:`values` gives (value, type) pairs for a resource."""

    def __init__(self, parts: list[list[Step]]) -> None:
        # every part but a bare type name starts with a child step, which takes the start value
        # directly rather than as a one-cursor list
        self._parts = [
            (steps[0], steps[1:]) if steps and isinstance(steps[0], _Child) else (None, steps)
            for steps in parts
        ]

    def values(self, resource: dict[str, Any], resource_type: str, context: str = "") -> list[Item]:
        """(value, type, element path) of ``resource`` (or of a value whose children are those of
        ``context``, for a relative accessor)."""
        return [(v, t, path) for v, t, _, path in self.cursors(resource, resource_type, context)]

    def cursors(self, resource: Any, resource_type: str, context: str = "") -> list[Cursor]:
        """Like :meth:`values`, with the context of each value's own children."""
        start = context or resource_type
        out: list[Cursor] | None = None
        for first, steps in self._parts:
            current = (
                first.first(resource, start)
                if first is not None
                else [(resource, resource_type, start, start)]
            )
            for step in steps:
                if not current:
                    break
                current = step(current)
            if out is None:
                out = current
            else:
                out.extend(current)
        return out if out is not None else []

    def part_keys(self) -> list[frozenset[str] | None]:
        """Per part, the JSON keys one of which a value must have for the part to find anything in
        it; None for a part that starts otherwise than with a child (the value itself, a filter)."""
        return [
            None if first is None else frozenset(key for key, _, _ in first._fixed)
            for first, _ in self._parts
        ]

    def walker(self, resource_type: str, leaf: Leaf, context: str = "") -> Sink | None:
        """A function ``(target, value)`` that calls ``leaf(type, path, context)``'s sink with
        ``target`` and each value :meth:`cursors` would give for ``value`` (rule 4); None when
        no value can reach a sink."""
        start = context or resource_type
        sinks = []
        for first, steps in self._parts:
            chain: list[Step] = [first, *steps] if first is not None else steps
            sink = _walk(chain, 0, resource_type, start, start, leaf)
            if sink is not None:
                sinks.append(sink)
        if not sinks:
            return None
        if len(sinks) == 1:
            return sinks[0]
        parts = tuple(sinks)

        def union(target: Any, value: Any) -> None:
            for sink in parts:
                sink(target, value)

        return union


def _walk(steps: list[Step], i: int, type_code: str, context: str, path: str, leaf: Leaf) -> Sink | None:
    """The sink for a value of ``type_code`` (its children in ``context``, found at ``path``)
    that applies ``steps[i:]`` and hands what remains to the leaf's sink."""
    if i == len(steps):
        return leaf(type_code, path, context)
    step = steps[i]
    if isinstance(step, _Child):
        branches = []
        for key, code, child_context in step._fixed:
            sink = _walk(steps, i + 1, code, child_context, context + step._name, leaf)
            if sink is not None:
                branches.append((key, sink))
        return _child_sink(tuple(branches)) if branches else None
    if isinstance(step, _Cast):
        return _walk(steps, i + 1, type_code, context, path, leaf) if step.keeps(type_code) else None
    rest = _walk(steps, i + 1, type_code, context, path, leaf)
    if rest is None:
        return None
    keep = step.keep  # type: ignore[attr-defined]  # a _Resolves or a _FieldEquals

    def filtered(target: Any, value: Any) -> None:
        if keep(value):
            rest(target, value)

    return filtered


def _child_sink(branches: tuple[tuple[str, Sink], ...]) -> Sink:
    """The sink handing each child of a value (a list's items one by one) to its branch's sink."""
    if len(branches) == 1:
        ((key, sink),) = branches

        def child(target: Any, value: Any) -> None:
            if value.__class__ is dict:
                found = value.get(key)
                if found is None:
                    return
                if found.__class__ is list:
                    for item in found:
                        if item is not None:
                            sink(target, item)
                else:
                    sink(target, found)

        return child

    def children(target: Any, value: Any) -> None:
        if value.__class__ is not dict:
            return
        for key, sink in branches:
            found = value.get(key)
            if found is None:
                continue
            if found.__class__ is list:
                for item in found:
                    if item is not None:
                        sink(target, item)
            else:
                sink(target, found)

    return children


def compile_path(model: ElementModel, type_: str, expression: str) -> PathAccessor | None:
    """The accessor for ``expression`` on ``type_``, or None when it is outside the simple subset.
    A part that is the bare type name (``Observation`` in ``Observation | Observation.component``)
    yields the resource itself."""
    parts: list[list[Step]] = []
    for text in split_expression(expression):
        text = text.strip()
        if text == type_:
            parts.append([])
            continue
        steps = _compile_part(model, type_, text, relative=False)
        if steps is None:
            return None
        parts.append(steps)
    return PathAccessor(parts)


def compile_relative(model: ElementModel, context: str, expression: str) -> PathAccessor | None:
    """An accessor for ``expression`` evaluated on a value whose children are those of
    ``context`` (a composite's component, e.g. ``value.as(Quantity)`` on Observation.component)."""
    parts: list[list[Step]] = []
    for text in split_expression(expression):
        steps = _compile_part(model, context, f"{context.split('.')[0]}.{text.strip()}", relative=True)
        if steps is None:
            return None
        parts.append(steps)
    return PathAccessor(parts)


def _compile_part(model: ElementModel, type_: str, text: str, relative: bool) -> list[Step] | None:
    tail = _CAST_THEN_PATH.match(text)
    if tail is not None:  # (Observation.value as CodeableConcept).text
        steps = _compile_part(model, type_, tail["inner"], relative)
        if steps is None:
            return None
        return _children(model, model.base_of_constraint(tail["cast"]), tail["names"].split(".")[1:], steps)
    m = _PART.match(text)
    if m is None or text.count("(") != text.count(")"):
        return None
    names = m["path"].split(".")
    if names[0] != type_.split(".")[0]:
        return None
    found = _children(model, type_, names[1:], [])
    if found is None:
        return None
    steps = found
    for f in _FILTER.finditer(m["filters"] or ""):
        if f["resolve"]:
            steps.append(_resolves_to(f["resolve"]))
        elif f["field"]:
            steps.append(_field_equals(f["field"], f["literal"]))
        else:
            _add_cast(model, steps, f["cast"])
    if m["infix"]:
        _add_cast(model, steps, m["infix"])
    return steps


def _add_cast(model: ElementModel, steps: list[Step], wanted: str) -> None:
    """A cast right after a child step keeps only the keys of the types it lets through
    (``Observation.value as Quantity`` reads ``valueQuantity`` alone); else it filters values."""
    last = steps[-1] if steps else None
    if isinstance(last, _Child):
        steps[-1] = last.only(lambda code: model.is_subtype(code, wanted))
    else:
        steps.append(_cast(model, wanted))


def _children(model: ElementModel, context: str, names: list[str], steps: list[Step]) -> list[Step] | None:
    """``steps`` followed by the child steps along ``names`` from ``context``; None when one of
    them is not an element there."""
    for name in names:
        element = model.children(context).get(name)
        if element is None:
            return None
        keys = (
            tuple((choice_key(name, t.code), t.code) for t in element.types)
            if element.choice
            else ((name, element.types[0].code if element.types else "BackboneElement"),)
        )
        if element.choice:
            next_context = "" if len(keys) > 1 else model.child_context(element, keys[0][1])
        else:
            next_context = model.child_context(element, keys[0][1])
        steps.append(_child(model, element.content, keys, next_context, element.path))
        context = next_context
    return steps


def _child(
    model: ElementModel,
    content: str | None,
    keys: tuple[tuple[str, str], ...],
    context: str,
    element_path: str,
) -> Step:
    fixed = tuple((key, code, content or (context or model.base_of_constraint(code))) for key, code in keys)
    return _Child(fixed, "." + element_path.rsplit(".", 1)[-1].removesuffix("[x]"))


class _Child:
    """The step to a child element. Everything but a value's element path (its parent's context
    plus the name) is fixed when it is compiled; the paths are remembered per parent context."""

    __slots__ = ("_fixed", "_name", "_paths")

    def __init__(self, fixed: tuple[tuple[str, str, str], ...], name: str) -> None:
        self._fixed = fixed  # (JSON key, its type code, the context of its children)
        self._name = name  # ".given"
        self._paths: dict[str, str] = {}

    def only(self, keep: Callable[[str], bool]) -> _Child:
        """This step for the types ``keep`` accepts alone."""
        return _Child(tuple(f for f in self._fixed if keep(f[1])), self._name)

    def __call__(self, items: list[Cursor]) -> list[Cursor]:
        out: list[Cursor] = []
        for value, _, parent_context, _ in items:
            out.extend(self.first(value, parent_context))
        return out

    def first(self, value: Any, parent_context: str) -> list[Cursor]:
        """The cursors of one value's children."""
        if value.__class__ is not dict:
            return []
        out: list[Cursor] = []
        for key, type_code, child_context in self._fixed:
            found = value.get(key)
            if found is None:
                continue
            path = self._paths.get(parent_context)
            if path is None:
                path = self._paths[parent_context] = parent_context + self._name
            if found.__class__ is list:
                out.extend([(v, type_code, child_context, path) for v in found if v is not None])
            else:
                out.append((found, type_code, child_context, path))
        return out


class _Resolves:
    """``.where(resolve() is X)``: references whose literal points at type X."""

    __slots__ = ("_target",)

    def __init__(self, target: str) -> None:
        self._target = target

    def keep(self, value: Any) -> bool:
        ref = value.get("reference") if value.__class__ is dict else None
        if isinstance(ref, str):
            parsed = reference_of(ref)
            return parsed is not None and parsed.type == self._target
        return False

    def __call__(self, items: list[Cursor]) -> list[Cursor]:
        keep = self.keep
        return [item for item in items if keep(item[0])]


class _FieldEquals:
    """``.where(field='literal')``."""

    __slots__ = ("_field", "_literal")

    def __init__(self, field: str, literal: str) -> None:
        self._field = field
        self._literal = literal

    def keep(self, value: Any) -> bool:
        return value.__class__ is dict and value.get(self._field) == self._literal

    def __call__(self, items: list[Cursor]) -> list[Cursor]:
        keep = self.keep
        return [item for item in items if keep(item[0])]


class _Cast:
    """``.as(T)``, ``.ofType(T)``, ``as T`` after a step that is not a child step: values of T or
    of a type derived from it."""

    __slots__ = ("_model", "_subtype", "_wanted")

    def __init__(self, model: ElementModel, wanted: str) -> None:
        self._model = model
        self._wanted = wanted
        self._subtype: dict[str, bool] = {}  # type code -> is it ``wanted`` or derived from it

    def keeps(self, type_code: str) -> bool:
        found = self._subtype.get(type_code)
        if found is None:
            found = self._subtype[type_code] = self._model.is_subtype(type_code, self._wanted)
        return found

    def __call__(self, items: list[Cursor]) -> list[Cursor]:
        keeps = self.keeps
        return [item for item in items if keeps(item[1])]


def _resolves_to(target: str) -> Step:
    return _Resolves(target)


def _field_equals(field: str, literal: str) -> Step:
    return _FieldEquals(field, literal)


def _cast(model: ElementModel, wanted: str) -> Step:
    return _Cast(model, wanted)
