"""Typed views over FHIR JSON: :class:`Node`, and the :class:`Navigator` that walks children.

Rules:
1. A Node wraps one JSON value found at a place in a resource: ``value`` (dict, str, bool, int,
   float, or None for a primitive that has only an ``_name`` sibling), ``type`` (the FHIR type
   code, the resourceType for resources, ``""`` when the model does not know it), and the
   parent/segment/index that spell its ``path`` on demand (``Patient.name[0].given[1]``).
2. A choice element navigates by its short name (``value``) to whichever ``valueX`` key is
   present, and the Node carries the concrete type; its path segment is ``value.ofType(X)``.
3. A primitive's ``_name`` sibling (``id``, ``extension``) rides along in ``ext``, aligned by index
   for arrays; navigating a primitive reaches those children.
4. An element typed ``Resource`` (``contained``, ``Bundle.entry.resource``) takes its type from the
   value's ``resourceType``. A context the model does not know is walked by JSON keys, with types
   guessed from JSON (``""`` for objects without a resourceType).
5. The Navigator memoises per-context lookups; it is built once per engine and never shared
   globally.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from careweave.fhir.elements import Element, ElementModel, choice_key

__all__ = ["Entry", "Navigator", "Node"]

# (json key, type code, children context, kind, path segment, "_key" sibling or ""); kind:
# 0 complex, 1 primitive, 2 resource (type from resourceType), 3 unknown (guess from JSON)
Entry = tuple[str, str, str, int, str, str]
_COMPLEX, _PRIMITIVE, _RESOURCE, _GUESS = 0, 1, 2, 3


class Node:
    """One value in a resource, with its FHIR type and its location."""

    __slots__ = ("ctx", "ext", "index", "name", "parent", "type", "value")

    def __init__(
        self,
        value: Any,
        type_: str,
        ctx: str,
        parent: Node | None,
        name: str,
        index: int | None,
        ext: Any,
    ) -> None:
        self.value = value
        self.type = type_
        self.ctx = ctx
        self.parent = parent
        self.name = name
        self.index = index
        self.ext = ext

    @property
    def path(self) -> str:
        """The location as a FHIRPath expression with indexes; ``""`` for computed values."""
        segments: list[str] = []
        node: Node | None = self
        while node is not None:
            segments.append(node.name if node.index is None else f"{node.name}[{node.index}]")
            node = node.parent
        return ".".join(reversed(segments))

    @property
    def key(self) -> str:
        """The JSON key this value sits under in its parent (``valueQuantity`` for a choice);
        with ``index`` and ``parent.value`` it locates the value for editing (FHIRPath Patch)."""
        base, _, type_part = self.name.partition(".ofType(")
        return choice_key(base, type_part[:-1]) if type_part else base

    @property
    def resource(self) -> Node | None:
        """The nearest node (this one or an ancestor) that is a resource."""
        node: Node | None = self
        while node is not None:
            if node.value.__class__ is dict and "resourceType" in node.value:
                return node
            node = node.parent
        return None

    def __repr__(self) -> str:
        return f"Node({self.path or '<computed>'}: {self.type} = {self.value!r})"


def _guess_type(value: Any) -> tuple[str, str, int]:
    if value.__class__ is dict:
        rtype = value.get("resourceType", "")
        return rtype, rtype, _COMPLEX
    if value.__class__ is bool:
        return "boolean", "", _PRIMITIVE
    if value.__class__ is int:
        return "integer", "", _PRIMITIVE
    if value.__class__ is float:
        return "decimal", "", _PRIMITIVE
    return "string", "", _PRIMITIVE


class Navigator:
    """Children of Nodes, typed through the element model; memoises lookups per context."""

    def __init__(self, model: ElementModel) -> None:
        self.model = model
        self._specs: dict[tuple[str, str], tuple[Entry, ...] | None] = {}
        self._keys: dict[tuple[str, str], Entry | None] = {}
        self._subtypes: dict[tuple[str, str], bool] = {}
        self._root_ctx: dict[str, str] = {}

    # -- model lookups ------------------------------------------------------------------------
    def is_subtype(self, type_code: str, ancestor: str) -> bool:
        key = (type_code, ancestor)
        hit = self._subtypes.get(key)
        if hit is None:
            hit = self._subtypes[key] = bool(type_code) and self.model.is_subtype(type_code, ancestor)
        return hit

    def _known(self, ctx: str) -> bool:
        return bool(ctx) and (bool(self.model.children(ctx)) or ctx in self.model.types)

    def _entry(self, element: Element, code: str, key: str, segment: str) -> Entry:
        model = self.model
        if not code and element.content is not None:
            target = model.element(element.content)
            code = target.types[0].code if target is not None and target.types else ""
        if code == "Resource" or model.is_resource(code):
            return (key, code, "", _RESOURCE, segment, "")
        if model.is_primitive(code):
            return (key, code, "", _PRIMITIVE, segment, "_" + key)
        return (key, code, model.child_context(element, code), _COMPLEX, segment, "")

    def _typed_entry(self, code: str, key: str, segment: str) -> Entry:
        model = self.model
        if code == "Resource" or model.is_resource(code):
            return (key, code, "", _RESOURCE, segment, "")
        if model.is_primitive(code):
            return (key, code, "", _PRIMITIVE, segment, "_" + key)
        return (key, code, model.base_of_constraint(code), _COMPLEX, segment, "")

    def guess(self, data: dict[str, Any], name: str) -> Entry:
        """An entry for ``name`` in JSON of unknown type: the key itself, or a choice key
        (``valueQuantity``) whose suffix names a type of the model."""
        if name in data or "_" + name in data:
            return (name, "", "", _GUESS, name, "_" + name)
        size = len(name)
        for key in data:
            if len(key) > size and key.startswith(name) and key[size].isupper():
                suffix = key[size:]
                code = suffix if suffix in self.model.types else suffix[0].lower() + suffix[1:]
                if code in self.model.types:
                    return self._typed_entry(code, key, f"{name}.ofType({code})")
        return (name, "", "", _GUESS, name, "_" + name)

    def spec(self, ctx: str, name: str) -> tuple[Entry, ...] | None:
        """How to find the children called ``name`` of a value in ``ctx``; None when the model
        does not know ``ctx`` (walk the JSON instead)."""
        key = (ctx, name)
        if key in self._specs:
            return self._specs[key]
        result: tuple[Entry, ...] | None
        if not self._known(ctx):
            result = None
        else:
            element = self.model.children(ctx).get(name)
            if element is None:
                hit = self.model.resolve_key(ctx, name)  # lenient: valueQuantity
                result = (self._entry(hit[0], hit[1], name, name),) if hit else ()
            elif element.choice:
                result = tuple(
                    self._entry(element, t.code, choice_key(name, t.code), f"{name}.ofType({t.code})")
                    for t in element.types
                )
            else:
                code = element.types[0].code if element.types else ""
                result = (self._entry(element, code, name, name),)
        self._specs[key] = result
        return result

    def key_entry(self, ctx: str, key: str) -> Entry:
        """The entry for one JSON key of a value in ``ctx`` (for ``children()``)."""
        memo_key = (ctx, key)
        hit = self._keys.get(memo_key)
        if hit is None:
            found = self.model.resolve_key(ctx, key) if self._known(ctx) else None
            if found is None:
                hit = (key, "", "", _GUESS, key, "_" + key)
            else:
                element, code = found
                segment = f"{element.name}.ofType({code})" if element.choice else key
                hit = self._entry(element, code, key, segment)
            self._keys[memo_key] = hit
        return hit

    # -- building nodes -----------------------------------------------------------------------
    def root(self, value: Any, type_: str | None = None, name: str | None = None) -> Node:
        """A Node for a whole resource (type from resourceType) or a value of a given type."""
        if type_ is None:
            type_ = value.get("resourceType", "") if value.__class__ is dict else _guess_type(value)[0]
        ctx = ""
        if value.__class__ is dict:
            ctx = self._root_ctx.get(type_, "")
            if not ctx:
                ctx = self._root_ctx[type_] = self.model.base_of_constraint(type_)
        return Node(value, type_, ctx, None, name if name is not None else type_, None, None)

    def expand(self, parent: Node, data: dict[str, Any], entry: Entry, out: list[Node]) -> None:
        """Append the Nodes that ``entry`` finds in ``data`` (the JSON of ``parent``)."""
        key, type_, ctx, kind, segment, ext_key = entry
        value = data.get(key)
        if kind == _GUESS:
            _expand_guessed(parent, value, data.get(ext_key), segment, out)
            return
        if kind == _PRIMITIVE:
            ext = data.get(ext_key) if ext_key else None
            if value is None and ext is None:
                return
            if value.__class__ is list or ext.__class__ is list:
                _expand_primitive_list(parent, value, ext, type_, segment, out)
            else:
                out.append(Node(value, type_, "", parent, segment, None, ext))
            return
        if value is None:
            return
        if value.__class__ is list:
            for i, item in enumerate(value):
                if item is not None:
                    out.append(_complex(parent, item, type_, ctx, kind, segment, i))
        else:
            out.append(_complex(parent, value, type_, ctx, kind, segment, None))

    def member(self, name: str) -> Callable[[list[Any]], list[Any]]:
        """A step: the children called ``name`` of every Node in a collection."""
        memo: dict[str, tuple[Entry, ...] | None] = {}
        spec_of = self.spec
        expand = self.expand
        missing: tuple[Entry, ...] = ((name, "", "", _GUESS, name, ""),)  # "not yet looked up"
        guess_entry = self.guess

        def step(items: list[Any]) -> list[Any]:
            out: list[Any] = []
            for item in items:
                if item.__class__ is not Node:
                    attr = getattr(item, "fhirpath_member", None)
                    if attr is not None:
                        out.extend(attr(name))
                    continue
                data = item.value
                if data.__class__ is dict:
                    ctx = item.ctx
                elif item.ext.__class__ is dict:
                    data, ctx = item.ext, "Element"
                else:
                    continue
                spec = memo.get(ctx, missing)
                if spec is missing:
                    spec = memo[ctx] = spec_of(ctx, name)
                if spec is None:
                    expand(item, data, guess_entry(data, name), out)
                else:
                    for entry in spec:
                        if entry[0] in data or (entry[5] and entry[5] in data):
                            expand(item, data, entry, out)
            return out

        return step

    def children(self, node: Node) -> list[Node]:
        """Every child of a Node, in JSON key order (``_name`` siblings merged)."""
        data = node.value
        ctx = node.ctx
        if data.__class__ is not dict:
            if node.ext.__class__ is not dict:
                return []
            data, ctx = node.ext, "Element"
        out: list[Node] = []
        for key in data:
            if key == "resourceType":
                continue
            if key[0] == "_":
                if key[1:] in data:
                    continue
                key = key[1:]
            self.expand(node, data, self.key_entry(ctx, key), out)
        return out


def _complex(
    parent: Node, value: Any, type_: str, ctx: str, kind: int, segment: str, index: int | None
) -> Node:
    if kind == _COMPLEX:
        return Node(value, type_, ctx, parent, segment, index, None)
    if kind == _RESOURCE and value.__class__ is dict:
        rtype = value.get("resourceType", type_)
        return Node(value, rtype, rtype, parent, segment, index, None)
    guessed, gctx, _ = _guess_type(value)
    return Node(value, guessed, gctx, parent, segment, index, None)


def _expand_primitive_list(
    parent: Node, value: Any, ext: Any, type_: str, segment: str, out: list[Node]
) -> None:
    values = value if value.__class__ is list else ([] if value is None else [value])
    exts = ext if ext.__class__ is list else ([] if ext is None else [ext])
    for i in range(max(len(values), len(exts))):
        v = values[i] if i < len(values) else None
        e = exts[i] if i < len(exts) else None
        if v is not None or e is not None:
            out.append(Node(v, type_, "", parent, segment, i, e))


def _expand_guessed(parent: Node, value: Any, ext: Any, segment: str, out: list[Node]) -> None:
    if value is None and ext is None:
        return
    is_list = value.__class__ is list or ext.__class__ is list
    values = value if value.__class__ is list else [value]
    exts = ext if ext.__class__ is list else [ext]
    for i in range(max(len(values), len(exts))):
        v = values[i] if i < len(values) else None
        e = exts[i] if i < len(exts) else None
        if v is None and e is None:
            continue
        index = i if is_list else None
        if v.__class__ is dict:
            out.append(_complex(parent, v, "", "", _GUESS, segment, index))
        else:
            type_ = _guess_type(v)[0] if v is not None else ""
            out.append(Node(v, type_, "", parent, segment, index, e))
