"""FHIRPath tokens: one precompiled regular expression, scanned once per expression.

Token kinds: ``id`` (identifier or keyword), ``qid`` (a `backtick` identifier, never a keyword),
``str`` (a 'string', escapes resolved), ``num`` (digits with an optional fraction), ``date``,
``datetime``, ``time`` (``@`` literals, text without the ``@``), ``ext`` (``%name``, name
resolved), ``special`` (``$this``, ``$index``, ``$total``), ``op`` and ``eof``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from careweave.fhir.fhirpath.errors import FhirPathError

__all__ = ["Token", "tokenize"]


@dataclass(frozen=True, slots=True)
class Token:
    kind: str
    text: str
    pos: int


_DATE = r"\d{4}(?:-\d{2}(?:-\d{2})?)?"
_TIME = r"\d{2}(?::\d{2}(?::\d{2}(?:\.\d+)?)?)?"
_TZ = r"(?:Z|[+-]\d{2}:\d{2})"
_TOKEN_RE = re.compile(
    rf"""
    (?P<ws>\s+|//[^\n]*|/\*.*?\*/)
  | (?P<datetime>@{_DATE}T(?:{_TIME}{_TZ}?)?)
  | (?P<date>@{_DATE})
  | (?P<time>@T{_TIME}{_TZ}?)
  | (?P<num>\d+(?:\.\d+)?)
  | (?P<str>'(?:[^'\\]|\\.)*')
  | (?P<dstr>"(?:[^"\\]|\\.)*")
  | (?P<qid>`(?:[^`\\]|\\.)*`)
  | (?P<id>[A-Za-z_][A-Za-z0-9_]*)
  | (?P<special>\$(?:this|index|total)\b)
  | (?P<ext>%(?:[A-Za-z_][A-Za-z0-9_]*|`(?:[^`\\]|\\.)*`|'(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*"))
  | (?P<op><=|>=|!=|!~|[-+*/&|=~<>()\[\]{{}},.])
    """,
    re.VERBOSE | re.DOTALL,
)
_ESCAPES = {"'": "'", '"': '"', "`": "`", "\\": "\\", "/": "/", "f": "\f", "n": "\n",
            "r": "\r", "t": "\t"}  # fmt: skip
_ESCAPE_RE = re.compile(r"\\(u[0-9a-fA-F]{4}|.)", re.DOTALL)


def unescape(body: str) -> str:
    """Resolve FHIRPath string escapes (``\\'``, ``\\n``, ``\\u0065``...)."""

    def one(m: re.Match[str]) -> str:
        code = m.group(1)
        if code.startswith("u") and len(code) == 5:
            return chr(int(code[1:], 16))
        return _ESCAPES.get(code, code)

    return _ESCAPE_RE.sub(one, body) if "\\" in body else body


def tokenize(text: str) -> list[Token]:
    """All tokens of ``text``, ending with an ``eof`` token. Raises FhirPathError."""
    tokens: list[Token] = []
    pos = 0
    length = len(text)
    while pos < length:
        m = _TOKEN_RE.match(text, pos)
        if m is None:
            raise FhirPathError(f"unexpected character {text[pos]!r}", text, pos)
        kind = m.lastgroup or ""
        raw = m.group(0)
        if kind == "str":
            tokens.append(Token("str", unescape(raw[1:-1]), pos))
        elif kind == "dstr":
            raise FhirPathError("strings use single quotes", text, pos)
        elif kind == "qid":
            tokens.append(Token("qid", unescape(raw[1:-1]), pos))
        elif kind == "ext":
            name = raw[1:]
            if name[0] in "`'\"":
                name = unescape(name[1:-1])
            tokens.append(Token("ext", name, pos))
        elif kind in ("date", "datetime", "time"):
            tokens.append(Token(kind, raw[1:], pos))
        elif kind != "ws":
            tokens.append(Token(kind, raw, pos))
        pos = m.end()
    tokens.append(Token("eof", "", length))
    return tokens
