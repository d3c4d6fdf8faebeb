"""Narrative XHTML checks: well-formed XML, the FHIR subset of XHTML (txt-1), some content (txt-2).

Rules:
1. ``Narrative.div`` is one XML element ``<div xmlns="http://www.w3.org/1999/xhtml">``, parsed by
   expat with no DOCTYPE, entity declarations or processing instructions (so nothing is fetched
   and no entity expands).
2. txt-1: only the basic HTML formatting elements the FHIR narrative page allows (no head, body,
   script, style, form, input, iframe, object, embed, base, link, meta...), only their plain
   attributes (no ``on*`` event handlers), and no ``javascript:`` URLs.
3. txt-2: the div has some non-whitespace text, or an image.
4. :func:`check_xhtml` never raises; it returns ``(key, clause)`` pairs, ``key`` being ``txt-1``,
   ``txt-2`` or ``None`` for a document that is not well-formed.
"""

from __future__ import annotations

from collections.abc import Callable
from xml.parsers import expat

__all__ = ["check_xhtml"]

_XHTML = "http://www.w3.org/1999/xhtml"
_XML_NS = "http://www.w3.org/XML/1998/namespace"

ALLOWED_ELEMENTS = frozenset(
    [
        "p",
        "br",
        "div",
        "h1",
        "h2",
        "h3",
        "h4",
        "h5",
        "h6",
        "a",
        "span",
        "b",
        "em",
        "i",
        "strong",
        "small",
        "big",
        "tt",
        "dfn",
        "q",
        "var",
        "abbr",
        "acronym",
        "cite",
        "blockquote",
        "hr",
        "address",
        "bdo",
        "kbd",
        "sub",
        "sup",
        "ul",
        "ol",
        "li",
        "dl",
        "dt",
        "dd",
        "pre",
        "table",
        "caption",
        "colgroup",
        "col",
        "thead",
        "tr",
        "tfoot",
        "tbody",
        "th",
        "td",
        "code",
        "samp",
        "img",
        "map",
        "area",
        "ins",
        "del",
        "s",
        "u",
        "strike",
        "font",
        "center",
    ]
)
ALLOWED_ATTRIBUTES = frozenset(
    [
        "title",
        "style",
        "class",
        "id",
        "lang",
        "dir",
        "accesskey",
        "tabindex",
        "span",
        "width",
        "height",
        "align",
        "valign",
        "char",
        "charoff",
        "abbr",
        "axis",
        "headers",
        "scope",
        "rowspan",
        "colspan",
        "border",
        "cellpadding",
        "cellspacing",
        "frame",
        "rules",
        "summary",
        "href",
        "name",
        "rel",
        "rev",
        "shape",
        "coords",
        "target",
        "hreflang",
        "type",
        "src",
        "alt",
        "longdesc",
        "usemap",
        "ismap",
        "start",
        "value",
        "compact",
        "cite",
        "datetime",
        "color",
        "face",
        "size",
        "bgcolor",
        "nowrap",
        "clear",
        "noshade",
    ]
)
_URL_ATTRIBUTES = frozenset({"href", "src", "longdesc", "usemap", "cite"})


def check_xhtml(text: str) -> list[tuple[str | None, str]]:
    """The problems with one ``Narrative.div`` value (empty when it is valid)."""
    state = _State()
    parser = expat.ParserCreate(namespace_separator=" ")
    parser.StartElementHandler = state.start
    parser.CharacterDataHandler = state.text
    parser.StartDoctypeDeclHandler = state.forbidden("a DOCTYPE")
    parser.EntityDeclHandler = state.forbidden("an entity declaration")
    parser.ProcessingInstructionHandler = state.forbidden("a processing instruction")
    try:
        parser.Parse(text, True)
    except expat.ExpatError as exc:
        return [
            (
                None,
                f"is not well-formed XHTML: {expat.ErrorString(exc.code)} at line "
                f"{exc.lineno}, column {exc.offset}",
            )
        ]
    if state.fatal:
        return [(None, state.fatal)]
    problems: list[tuple[str | None, str]] = [("txt-1", p) for p in state.problems]
    if not state.has_content:
        problems.append(("txt-2", "has no non-whitespace content"))
    return problems


class _State:
    """What the parse has found so far (one per call)."""

    def __init__(self) -> None:
        self.depth = 0
        self.problems: list[str] = []
        self.fatal = ""
        self.has_content = False

    def forbidden(self, what: str) -> Callable[..., None]:
        def handler(*_args: object) -> None:
            self.fatal = self.fatal or f"must not contain {what}"

        return handler

    def start(self, name: str, attributes: dict[str, str]) -> None:
        namespace, _, local = name.rpartition(" ")
        if self.depth == 0 and (local != "div" or namespace != _XHTML):
            self.problems.append(f"must be a <div> in the XHTML namespace, not <{local}>")
        self.depth += 1
        if namespace != _XHTML:
            self.problems.append(f"has an element <{local}> outside the XHTML namespace")
        elif local not in ALLOWED_ELEMENTS:
            self.problems.append(f"has an element <{local}> that narrative does not allow")
        if local == "img":
            self.has_content = True
        for attr, value in attributes.items():
            self._attribute(local, attr, value)

    def _attribute(self, element: str, attr: str, value: str) -> None:
        namespace, _, local = attr.rpartition(" ")
        if namespace == _XML_NS:
            return  # xml:lang, xml:space
        if local.lower().startswith("on"):
            self.problems.append(f"has an event handler attribute {local!r} on <{element}>")
        elif namespace or local not in ALLOWED_ATTRIBUTES:
            self.problems.append(f"has an attribute {local!r} on <{element}> that narrative does not allow")
        elif local in _URL_ATTRIBUTES and value.strip().lower().startswith("javascript:"):
            self.problems.append(f"has a javascript: URL in {local!r} on <{element}>")

    def text(self, data: str) -> None:
        if not self.has_content and not data.isspace():
            self.has_content = True
