"""The indexer's fast path (direct accessors, parameters skipped for absent elements) gives exactly
the rows of its general path (every expression through the FHIRPath engine, no composite skipped),
in the same order, for every resource of a generated population, the demo population, the UK Core
examples and a sample per search parameter definition.

https://hl7.org/fhir/R4/search.html, https://hl7.org/fhir/R4/searchparameter-registry.html
"""

from __future__ import annotations

from dataclasses import fields

import pytest

from careweave.search.index import IndexRows
from careweave.search.indexer import Indexer, _composite_needs
from careweave.system import load_definitions
from tests.search.test_paths import CORPUS
from tests.support import generated_resources

_DEFS = load_definitions()


def _population() -> dict[str, list[dict]]:
    by_type: dict[str, list[dict]] = {}
    for resource in generated_resources(patients=60, organisations=4, seed=7):
        by_type.setdefault(resource["resourceType"], []).append(resource)
    return by_type


POPULATION = _population()


def _rows(rows: IndexRows) -> dict[str, object]:
    return {f.name: getattr(rows, f.name) for f in fields(rows)}


@pytest.mark.parametrize("corpus", ["population", "examples"])
def test_fast_rows_are_exactly_the_general_rows(corpus: str) -> None:
    by_type = POPULATION if corpus == "population" else CORPUS
    fast = Indexer(_DEFS.search_params, _DEFS.engine, _DEFS.code_systems)
    general = Indexer(_DEFS.search_params, _DEFS.engine, _DEFS.code_systems, fast=False)
    checked = 0
    for type_, resources in sorted(by_type.items()):
        for resource in resources:
            assert _rows(fast.index(resource)) == _rows(general.index(resource)), (type_, resource.get("id"))
            checked += 1
    assert checked > 1000
    assert fast.failures == {} and general.failures == {}


def test_fast_rows_do_not_depend_on_what_was_indexed_before() -> None:
    # the accessors remember element paths per context: a warm indexer, a cold one and the same
    # resource indexed twice give the same rows
    resources = [r for rs in POPULATION.values() for r in rs][:500]
    warm = Indexer(_DEFS.search_params, _DEFS.engine, _DEFS.code_systems)
    first = [_rows(warm.index(r)) for r in resources]
    assert [_rows(warm.index(r)) for r in resources] == first
    for resource, rows in zip(reversed(resources), reversed(first), strict=True):
        cold = Indexer(_DEFS.search_params, _DEFS.engine, _DEFS.code_systems)
        assert _rows(cold.index(resource)) == rows


def test_composite_needs() -> None:
    model = _DEFS.model
    needs = _composite_needs(model, "Observation", "Observation | Observation.component",
                             ["code", "value.as(Quantity)"])
    assert needs == (frozenset({"code", "value"}), frozenset({"component"}))
    assert _composite_needs(model, "Observation", "Observation.component",
                            ["code", "value.as(CodeableConcept)"]) == (frozenset({"component"}),)
    # a component reading the resource: needed whatever the focus
    assert _composite_needs(model, "MolecularSequence", "MolecularSequence.variant",
                            ["%resource.referenceSeq.chromosome", "start", "end"]) == (
        frozenset({"variant", "referenceSeq"}),)
    # a component of several paths, a function first, or a non-element: cannot be told
    assert _composite_needs(model, "Observation", "Observation", ["code", "value | component"]) is None
    assert _composite_needs(model, "Observation", "Observation", ["code", "ofType(Quantity)"]) is None
    assert _composite_needs(model, "Observation", "Observation", ["code", "nothing"]) is None
    assert _composite_needs(model, "Observation", "Observation.code.where(true)", ["code"]) is None


def test_a_composite_with_an_absent_component_gives_no_rows_either_way() -> None:
    observation = {"resourceType": "Observation", "id": "o", "status": "final",
                   "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4"}]}}
    fast = Indexer(_DEFS.search_params, _DEFS.engine, _DEFS.code_systems)
    general = Indexer(_DEFS.search_params, _DEFS.engine, _DEFS.code_systems, fast=False)
    assert fast.index(observation).composites == general.index(observation).composites == []
    observation["valueQuantity"] = {"value": 72, "unit": "/min", "system": "http://unitsofmeasure.org",
                                    "code": "/min"}
    rows = fast.index(observation).composites
    assert rows == general.index(observation).composites
    assert {r[0] for r in rows} == {"Observation.code-value-quantity",
                                    "Observation.combo-code-value-quantity"}
