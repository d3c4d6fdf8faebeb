"""Narrative XHTML: https://hl7.org/fhir/R4/narrative.html#rules (txt-1, txt-2)."""

from __future__ import annotations

import pytest

from careweave.fhir.validation import Validator
from careweave.fhir.validation.xhtml import check_xhtml

from .samples import located, patient

NS = 'xmlns="http://www.w3.org/1999/xhtml"'

VALID = [
    f"<div {NS}>text</div>",
    f'<div {NS}><p>a <b>b</b> <a href="http://x.org">c</a></p><table><tr><td>1</td></tr></table></div>',
    f'<div {NS} xml:lang="en"><img src="#a" alt="x"/></div>',
    f'<div {NS}><span style="color:red" class="c">x</span>&#160;&lt;</div>',
]

INVALID = [
    (f"<div {NS}>x", None, "not well-formed"),
    ("<div>x</div>", "txt-1", "XHTML namespace"),
    (f"<p {NS}>x</p>", "txt-1", "must be a <div>"),
    (f"<div {NS}><script>alert(1)</script>x</div>", "txt-1", "<script>"),
    (f"<div {NS}><form>x</form></div>", "txt-1", "<form>"),
    (f'<div {NS}><p onclick="x()">x</p></div>', "txt-1", "event handler"),
    (f'<div {NS}><a href="javascript:x()">x</a></div>', "txt-1", "javascript:"),
    (f"<div {NS}><iframe>x</iframe></div>", "txt-1", "<iframe>"),
    (f"<div {NS}>   </div>", "txt-2", "no non-whitespace content"),
    (f"<!DOCTYPE div><div {NS}>x</div>", None, "DOCTYPE"),
    (f'<!DOCTYPE d [<!ENTITY e "boom">]><div {NS}>&e;</div>', None, "DOCTYPE"),
    (f"<div {NS}>&nbsp;</div>", None, "undefined entity"),
]


@pytest.mark.parametrize("text", VALID)
def test_valid_narrative(text: str) -> None:
    assert check_xhtml(text) == []


@pytest.mark.parametrize(("text", "key", "clause"), INVALID, ids=[c[2] for c in INVALID])
def test_invalid_narrative(text: str, key: str | None, clause: str) -> None:
    problems = check_xhtml(text)
    assert problems, text
    assert problems[0][0] == key
    assert clause in problems[0][1]


def test_narrative_issue_in_a_resource(validator: Validator) -> None:
    text = {"status": "generated", "div": f"<div {NS}><script>x</script>y</div>"}
    issues = [i for i in validator.validate(patient(text=text)) if i.severity == "error"]
    assert located(issues) == {("error", "invariant", "Patient.text.div")}
    assert issues[0].details == "txt-1"


def test_missing_narrative_is_a_dom_6_warning(validator: Validator) -> None:
    issues = validator.validate(patient(text=None))
    assert located(issues) == {("warning", "invariant", "Patient")}
    assert issues[0].details == "dom-6"
