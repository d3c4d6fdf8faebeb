"""Property tests: whatever JSON a client sends, the validator returns issues and never raises."""

from __future__ import annotations

import copy
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from careweave.errors import Issue
from careweave.fhir.validation import Validator

from .samples import OBSERVATION, PATIENT

JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False)
    | st.text(max_size=8)
    | st.sampled_from(["", " ", "#", "Patient/1", "urn:uuid:x", "<div>", "2023-02-30", "_x"]),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=10,
)
KEYS = st.sampled_from(
    [
        "id",
        "text",
        "div",
        "name",
        "given",
        "_given",
        "contained",
        "resourceType",
        "extension",
        "valueString",
        "reference",
        "coding",
        "status",
        "_status",
        "value",
        "entry",
        "resource",
        "meta",
        "security",
    ]
)


def _paths(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [prefix]
    if isinstance(node, dict):
        for key, value in node.items():
            found += _paths(value, (*prefix, key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            found += _paths(value, (*prefix, index))
    return found


@st.composite
def mutated(draw: st.DrawFn) -> Any:
    resource = copy.deepcopy(draw(st.sampled_from([PATIENT, OBSERVATION])))
    for _ in range(draw(st.integers(1, 4))):
        paths = _paths(resource)
        path = draw(st.sampled_from(paths))
        if not path:
            continue
        parent = resource
        for step in path[:-1]:
            parent = parent[step]
        action = draw(st.sampled_from(["replace", "delete", "insert"]))
        if action == "replace":
            parent[path[-1]] = draw(JSON)
        elif action == "delete" and isinstance(parent, dict):
            del parent[path[-1]]
        elif isinstance(parent, dict):
            parent[draw(KEYS)] = draw(JSON)
    return resource


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(resource=mutated())
def test_mutated_resources_never_raise(validator: Validator, resource: Any) -> None:
    issues = validator.validate(resource)
    assert all(isinstance(i, Issue) and i.expression for i in issues)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(value=JSON)
def test_arbitrary_json_never_raises(validator: Validator, value: Any) -> None:
    issues = validator.validate(value)
    assert issues and issues[0].severity == "error"


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=st.dictionaries(KEYS, JSON, max_size=5))
def test_arbitrary_patient_bodies_never_raise(validator: Validator, body: dict[str, Any]) -> None:
    validator.validate({**body, "resourceType": "Patient"})


def test_deep_nesting_is_reported_not_a_crash(validator: Validator) -> None:
    extension: dict[str, Any] = {"url": "http://x.org/e", "valueString": "leaf"}
    for _ in range(1500):
        extension = {"url": "http://x.org/e", "extension": [extension]}
    issues = validator.validate({"resourceType": "Basic", "code": {"text": "x"}, "extension": [extension]})
    assert [i.code for i in issues if i.severity == "error"] == ["too-costly"]
