"""Every FHIRPath expression in the packaged R4 definitions compiles, and the definitions
themselves (valid FHIR) satisfy every error-severity invariant that applies to them.

Spec: https://hl7.org/fhir/R4/fhirpath.html, https://hl7.org/fhir/R4/conformance-rules.html
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from careweave.fhir import definitions
from careweave.fhir.elements import Constraint, ElementModel
from careweave.fhir.fhirpath import FhirPathEngine, Node


def _search_expressions() -> list[tuple[str, str]]:
    return [
        (sp["id"], sp["expression"])
        for sp in definitions.resources_of("search-parameters")
        if sp.get("resourceType") == "SearchParameter" and sp.get("expression")
    ]


def _invariant_expressions() -> list[tuple[str, str]]:
    found: dict[str, str] = {}
    for name in ("profiles-types", "profiles-resources"):
        for sd in definitions.resources_of(name):
            for el in sd.get("snapshot", {}).get("element", ()):
                for c in el.get("constraint", ()):
                    if c.get("expression"):
                        found.setdefault(c["expression"], f"{c['key']}@{el['path']}")
    return [(where, expression) for expression, where in found.items()]


SEARCH = _search_expressions()
INVARIANTS = _invariant_expressions()


def test_the_tables_are_not_empty() -> None:
    assert len(SEARCH) > 1300
    assert len(INVARIANTS) > 150


@pytest.mark.parametrize(("name", "expression"), SEARCH, ids=[s[0] for s in SEARCH])
def test_search_parameter_expression_compiles(engine: FhirPathEngine, name: str, expression: str):
    assert engine.compile(expression).text == expression


@pytest.mark.parametrize(("where", "expression"), INVARIANTS, ids=[i[0] for i in INVARIANTS])
def test_invariant_compiles(engine: FhirPathEngine, where: str, expression: str):
    assert engine.compile(expression).text == expression


def _constraints_for(model: ElementModel, node: Node) -> Iterator[Constraint]:
    """The constraints of the element that holds ``node`` and of its type and base types."""
    if node.parent is not None:
        element = model.children(node.parent.ctx).get(node.name.split(".ofType(")[0])
        if element is not None:
            yield from element.constraints
    typedef = model.types.get(node.type)
    while typedef is not None:
        yield from typedef.constraints
        typedef = model.types.get(typedef.base) if typedef.base else None


def _walk(engine: FhirPathEngine, node: Node) -> Iterator[Node]:
    yield node
    for child in engine.navigator.children(node):
        yield from _walk(engine, child)


def _failures(engine: FhirPathEngine, model: ElementModel, resource: dict[str, Any]) -> list[str]:
    failures = []
    for node in _walk(engine, engine.node(resource)):
        seen: set[str] = set()
        for c in _constraints_for(model, node):
            if c.severity != "error" or not c.expression or c.key in seen:
                continue
            seen.add(c.key)
            result = engine.compile(c.expression).evaluate(resource, context=node)
            if result != [True]:
                failures.append(f"{c.key} at {node.path}: {result}")
    return failures


@pytest.mark.parametrize("bundle", ["search-parameters", "valuesets", "profiles-types", "profiles-resources"])
def test_definitions_satisfy_their_error_invariants(engine: FhirPathEngine, model: ElementModel, bundle: str):
    checked = 0
    failures: list[str] = []
    for resource in definitions.resources_of(bundle):
        failures.extend(_failures(engine, model, resource))
        checked += 1
    assert checked > 10
    assert failures == []


def test_a_broken_definition_fails_its_invariants(engine: FhirPathEngine, model: ElementModel):
    value_set = {
        "resourceType": "ValueSet",
        "status": "draft",
        "contained": [{"resourceType": "CodeSystem", "id": "cs", "status": "draft",
                       "content": "complete", "meta": {"versionId": "2"}}],
        "compose": {
            "include": [
                {"concept": [{"code": "a"}], "filter": [{"property": "p", "op": "=", "value": "v"}]},
                {"version": "1"},
            ]
        },
    }  # fmt: skip
    failures = _failures(engine, model, value_set)
    keys = sorted({f.split(" ")[0] for f in failures})
    assert keys == ["dom-3", "dom-4", "vsd-1", "vsd-2", "vsd-3"]
    assert "vsd-1 at ValueSet.compose.include[1]: [False]" in failures
