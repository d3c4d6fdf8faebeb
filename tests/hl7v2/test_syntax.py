"""ER7 escaping (HL7 v2.5.1 chapter 2.7, "Use of escape sequences in text fields")."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from careweave.hl7v2.syntax import STANDARD, Syntax, escape, unescape

CUSTOM = Syntax("#", "!", "~", "$", "*")


@pytest.mark.parametrize(
    ("written", "plain"),
    [
        ("plain", "plain"),
        ("a\\F\\b", "a|b"),
        ("a\\S\\b\\T\\c\\R\\d\\E\\e", "a^b&c~d\\e"),
        ("line\\.br\\next", "line\nnext"),
        ("two\\.sp2\\lines", "two\n\nlines"),
        ("skip\\.sk3\\x", "skip   x"),
        ("\\H\\bold\\N\\", "bold"),
        ("\\X0D0A\\", "\r\n"),
        ("caf\\XC3A9\\", "café"),
        ("\\Zlocal\\kept", "kept"),
        ("\\Cxxyy\\text", "text"),
        ("\\.fi\\\\.in+4\\x", "x"),
        ("unclosed \\F", "unclosed \\F"),
        ("unknown \\Q\\ sequence", "unknown \\Q\\ sequence"),
        ("bad hex \\XZZ\\", "bad hex \\XZZ\\"),
        ("empty \\\\ pair", "empty \\\\ pair"),
        ("trunc \\P\\", "trunc \\P\\"),  # no truncation character declared: kept as written
    ],
)
def test_unescape(written, plain):
    assert unescape(written, STANDARD) == plain


def test_unescape_with_custom_delimiters():
    assert unescape("a$F$b$S$c$E$d", CUSTOM) == "a#b!c$d"


@pytest.mark.parametrize("syntax", [STANDARD, CUSTOM, Syntax(truncation="%")])
@given(text=st.text())
def test_escape_round_trips(syntax, text):
    escaped = escape(text, syntax)
    for ch in (syntax.field, syntax.component, syntax.repetition, syntax.subcomponent, "\r", "\n"):
        assert ch not in escaped
    assert unescape(escaped, syntax) == text


def test_encoding_characters_stop_at_the_first_unused_one():
    assert STANDARD.encoding_characters == "^~\\&"
    assert Syntax(truncation="#").encoding_characters == "^~\\&#"
    assert Syntax(escape="\r", subcomponent="\r").encoding_characters == "^~"
