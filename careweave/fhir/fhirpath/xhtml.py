"""``htmlChecks()``: the basic checks FHIR makes of a narrative's XHTML (invariant txt-1).

Rules:
1. The root element is ``div`` in the XHTML namespace.
2. Only the HTML 4.0 formatting elements FHIR allows appear (no script, form, iframe, object...).
3. No attribute is an event handler (``on...``), and no ``href``/``src`` uses ``javascript:``.
4. The markup is well formed: every element that opens closes, in order.
"""

from __future__ import annotations

from html.parser import HTMLParser

__all__ = ["check_narrative"]

XHTML_NS = "http://www.w3.org/1999/xhtml"
_ALLOWED_TEXT = (  # the HTML 4.0 elements FHIR narrative allows
    "a abbr acronym b big blockquote br caption cite code col colgroup dd dfn div dl dt em "
    "h1 h2 h3 h4 h5 h6 hr i img li ol p pre q samp small span strong sub sup table tbody td "
    "tfoot th thead tr tt ul var"
)
ALLOWED = frozenset(_ALLOWED_TEXT.split(" "))
_VOID = frozenset({"br", "hr", "img", "col"})


class _Checker(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.ok = True
        self.stack: list[str] = []
        self.roots = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self._open(tag, attrs)
        if tag in _VOID:
            self.stack.pop()

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self._open(tag, attrs)
        self.stack.pop()

    def _open(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if not self.stack:
            self.roots += 1
            if tag != "div" or dict(attrs).get("xmlns") != XHTML_NS:
                self.ok = False
        if tag not in ALLOWED:
            self.ok = False
        for name, value in attrs:
            lowered = (value or "").strip().lower()
            if name.startswith("on") or lowered.startswith("javascript:"):
                self.ok = False
        self.stack.append(tag)

    def handle_endtag(self, tag: str) -> None:
        if tag in _VOID:
            return
        if not self.stack or self.stack[-1] != tag:
            self.ok = False
            return
        self.stack.pop()

    def handle_data(self, data: str) -> None:
        if not self.stack and data.strip():
            self.ok = False


def check_narrative(text: str) -> bool:
    """True when ``text`` passes the checks above."""
    checker = _Checker()
    try:
        checker.feed(text)
        checker.close()
    except (AssertionError, ValueError):
        return False
    return checker.ok and not checker.stack and checker.roots == 1
