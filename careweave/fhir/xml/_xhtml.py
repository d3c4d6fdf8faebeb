"""The narrative ``div``: XHTML as FHIR JSON carries it (one string) and as FHIR XML embeds it.

Rules:
1. One canonical form serves both: the JSON string and the XML output are the same text. It is
   the form most of the spec's own JSON uses: the root ``div`` declares
   ``xmlns="http://www.w3.org/1999/xhtml"``, attributes in document order within double quotes,
   empty elements self-closed (``<br/>``), and ``& < > "`` escaped in text and attributes.
2. What XML parsing would otherwise lose is written as character references: a carriage return
   anywhere (``&#13;``), and tab or line feed inside an attribute (``&#9;``, ``&#10;``). So parsing
   the canonical form gives back the same XML information, and serialising it again gives the same
   string (the form is idempotent).
3. Only XHTML elements are allowed, and attributes with no namespace or in the ``xml:`` namespace
   (FHIR XML holds no namespace but FHIR's and XHTML's). Anything else is CW-1015.
"""

from __future__ import annotations

from careweave.fhir.xml._tree import Node, fail, parse_tree

__all__ = ["XHTML_NS", "canonical_div", "escape_attribute", "serialise_div"]

XHTML_NS = "http://www.w3.org/1999/xhtml"
_XML_NS = "http://www.w3.org/XML/1998/namespace"

_TEXT_ESCAPES = str.maketrans({"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "\r": "&#13;"})
_ATTR_ESCAPES = str.maketrans(
    {
        "&": "&amp;",
        "<": "&lt;",
        ">": "&gt;",
        '"': "&quot;",
        "\r": "&#13;",
        "\n": "&#10;",
        "\t": "&#9;",
    }
)


def serialise_div(node: Node) -> str:
    """The canonical string of a parsed narrative ``div`` element (see the module rules)."""
    if node.ns != XHTML_NS or node.name != "div":
        raise fail(node.line, f"the narrative must be an XHTML <div>, found <{node.name}>")
    out: list[str] = []
    _write(node, out, root=True)
    return "".join(out)


def canonical_div(div: str) -> str:
    """Parse a narrative string (as FHIR JSON holds it) safely and return its canonical form.

    Raises CW-1015 when the string is not well-formed XHTML with a ``div`` root.
    """
    return serialise_div(parse_tree(div))


def escape_attribute(value: str) -> str:
    """``value`` escaped for a double-quoted XML attribute that keeps tabs and line breaks."""
    return value.translate(_ATTR_ESCAPES)


def _write(node: Node, out: list[str], *, root: bool) -> None:
    if node.ns != XHTML_NS:
        where = f"{{{node.ns}}}" if node.ns else "no namespace"
        raise fail(node.line, f"<{node.name}> in {where}: the narrative may hold only XHTML")
    out.append("<" + node.name)
    if root:
        out.append(f' xmlns="{XHTML_NS}"')
    for ns, local, value in node.attrs:
        if ns == _XML_NS:
            local = "xml:" + local
        elif ns:
            raise fail(node.line, f"attribute {local} in {{{ns}}} is not allowed in the narrative")
        out.append(f' {local}="{escape_attribute(value)}"')
    if not node.children:
        out.append("/>")
        return
    out.append(">")
    for child in node.children:
        if isinstance(child, str):
            out.append(child.translate(_TEXT_ESCAPES))
        else:
            _write(child, out, root=False)
    out.append(f"</{node.name}>")
