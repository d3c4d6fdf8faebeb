"""Safe XML parsing into a small immutable tree, with the standard library's expat.

Rules:
1. A document type declaration is refused outright (FHIR XML never carries one), so no entity can
   ever be declared: no external entities (XXE), no entity expansion (billion laughs). External
   entity references and parameter-entity parsing are refused as well, belt and braces.
2. Comments and processing instructions are dropped; character data is kept, because the XHTML
   narrative needs it (FHIR elements reject non-whitespace text later).
3. Names are resolved against their namespaces: a :class:`Node` carries the namespace URI and the
   local name, never a prefix.
4. Nesting deeper than :data:`MAX_DEPTH` is refused, which bounds every recursion downstream.
5. Every failure is a :class:`CareweaveError` ``CW-1015`` naming the line.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from xml.parsers import expat

from careweave.errors import CareweaveError, error

__all__ = ["MAX_DEPTH", "Node", "fail", "parse_tree"]

MAX_DEPTH = 128
_SEP = " "  # expat joins namespace URI and local name with this (a URI never holds a space)


@dataclass(frozen=True, slots=True)
class Node:
    """One element: namespace URI ("" for none), local name, attributes and content in order."""

    ns: str
    name: str
    attrs: tuple[tuple[str, str, str], ...]  # (namespace URI, local name, value), document order
    children: tuple[Node | str, ...]
    line: int

    def attr(self, name: str) -> str | None:
        """The value of the un-namespaced attribute ``name``, or None."""
        for ns, local, value in self.attrs:
            if not ns and local == name:
                return value
        return None

    def elements(self) -> Iterator[Node]:
        """The child elements (text left out)."""
        return (c for c in self.children if isinstance(c, Node))


def fail(line: int, message: str) -> CareweaveError:
    """The error for a document that is not a FHIR resource, located at ``line``."""
    return error("CW-1015", f"line {line}: {message}")


def parse_tree(data: bytes | str) -> Node:
    """Parse a whole XML document into its root :class:`Node`; raises only CW-1015."""
    parser = expat.ParserCreate(namespace_separator=_SEP)
    builder = _Builder(parser)
    parser.ordered_attributes = True
    parser.buffer_text = True
    parser.SetParamEntityParsing(expat.XML_PARAM_ENTITY_PARSING_NEVER)
    parser.StartDoctypeDeclHandler = builder.refuse_doctype
    parser.EntityDeclHandler = builder.refuse_entity
    parser.ExternalEntityRefHandler = builder.refuse_external
    parser.StartElementHandler = builder.start
    parser.EndElementHandler = builder.end
    parser.CharacterDataHandler = builder.text
    try:
        parser.Parse(data, True)
    except expat.ExpatError as e:
        raise fail(e.lineno, f"malformed XML: {expat.ErrorString(e.code)}") from None
    except (LookupError, UnicodeError, ValueError) as e:  # e.g. encoding="no-such-encoding"
        raise fail(1, f"malformed XML: {e}") from None
    if builder.root is None:  # pragma: no cover - expat refuses a document with no element
        raise fail(1, "no root element")
    return builder.root


@dataclass
class _Open:
    ns: str
    name: str
    attrs: tuple[tuple[str, str, str], ...]
    line: int
    children: list[Node | str] = field(default_factory=list)


@dataclass
class _Builder:
    """Collects expat events for one parse (local to :func:`parse_tree`, never shared)."""

    parser: expat.XMLParserType
    stack: list[_Open] = field(default_factory=list)
    root: Node | None = None
    names: dict[str, tuple[str, str]] = field(default_factory=dict)  # expat name -> (ns, local)

    def start(self, name: str, attributes: list[str]) -> None:
        line = self.parser.CurrentLineNumber
        if len(self.stack) >= MAX_DEPTH:
            raise fail(line, f"elements nest deeper than {MAX_DEPTH} levels")
        attrs = tuple((*self.split(attributes[i]), attributes[i + 1]) for i in range(0, len(attributes), 2))
        self.stack.append(_Open(*self.split(name), attrs, line))

    def split(self, name: str) -> tuple[str, str]:
        known = self.names.get(name)
        if known is None:
            ns, _, local = name.rpartition(_SEP)
            known = self.names[name] = (ns, local)
        return known

    def end(self, name: str) -> None:
        top = self.stack.pop()
        node = Node(top.ns, top.name, top.attrs, tuple(top.children), top.line)
        if self.stack:
            self.stack[-1].children.append(node)
        else:
            self.root = node

    def text(self, data: str) -> None:
        if not self.stack:  # pragma: no cover - expat reports no text outside the root
            return
        children = self.stack[-1].children
        if children and isinstance(children[-1], str):
            children[-1] += data
        else:
            children.append(data)

    def refuse_doctype(self, *_: object) -> None:
        raise fail(self.parser.CurrentLineNumber, "a DOCTYPE is not allowed in FHIR XML")

    def refuse_entity(self, *_: object) -> None:  # pragma: no cover - needs a DOCTYPE first
        raise fail(self.parser.CurrentLineNumber, "entity declarations are not allowed")

    def refuse_external(self, *_: object) -> int:  # pragma: no cover - needs a DOCTYPE first
        raise fail(self.parser.CurrentLineNumber, "external entities are not allowed")
