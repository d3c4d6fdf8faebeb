"""Property tests: compiling and evaluating arbitrary token soup raises only FhirPathError."""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from careweave.fhir.fhirpath import FhirPathEngine, FhirPathError

TOKENS = [
    "Patient", "name", "given", "family", "birthDate", "active", "telecom", "value", "contained",
    ".", "(", ")", "[", "]", "0", "1", "2.5", "'a'", "@2020", "@2020-01-02T10:00Z", "@T10",
    "5 'mg'", "3 days", "{}", "true", "$this", "$index", "%resource", "%ucum",
    "+", "-", "*", "/", "div", "mod", "&", "|", "=", "!=", "~", "!~", "<", ">=",
    "and", "or", "xor", "implies", "in", "contains", "is", "as", "Integer", "HumanName", ",",
    "where(", "select(", "exists(", "first()", "count()", "substring(", "matches(", "iif(",
    "toString()", "toInteger()", "ofType(", "resolve()", "children()", "descendants()",
    "aggregate(", "round(", "sum()", "extension(", "not()", "empty()", "distinct()",
]  # fmt: skip


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.sampled_from(TOKENS), min_size=1, max_size=12))
def test_only_fhirpath_errors_escape(engine: FhirPathEngine, patient: dict[str, Any], tokens):
    text = " ".join(tokens)
    try:
        result = engine.compile(text).evaluate(patient)
    except FhirPathError as exc:
        assert exc.expression == text
    else:
        assert isinstance(result, list)


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=40))
def test_arbitrary_text_compiles_or_raises_fhirpath_error(engine: FhirPathEngine, text: str):
    try:
        compiled = engine.compile(text)
    except FhirPathError as exc:
        assert exc.expression == text
    else:
        assert compiled.text == text
