"""The direct path accessors give exactly what the FHIRPath engine gives, for every parameter of
every resource type, on generated resources, the demo population and the UK Core examples."""

from __future__ import annotations

import tempfile
from pathlib import Path

import orjson
import pytest

from careweave.fhir import ukcore
from careweave.generate import DEMO, generate
from careweave.search.paths import compile_path
from careweave.system import load_definitions
from tests.search.paramgen import Generator

_DEFS = load_definitions()


def _corpus() -> dict[str, list[dict]]:
    by_type: dict[str, list[dict]] = {}
    generator = Generator(_DEFS.model, _DEFS.search_params)
    for type_ in sorted(_DEFS.model.resource_types):
        for n, param in enumerate(_DEFS.search_params.own(type_)):
            resource, _ = generator.sample(type_, param, n)
            by_type.setdefault(type_, []).append(resource)
    with tempfile.TemporaryDirectory() as tmp:
        generate(DEMO, Path(tmp))
        for path in Path(tmp, "ndjson").glob("*.ndjson"):
            for line in path.read_bytes().splitlines()[:200]:
                resource = orjson.loads(line)
                by_type.setdefault(resource["resourceType"], []).append(resource)
    for resource in ukcore.load_examples():
        by_type.setdefault(resource["resourceType"], []).append(resource)
    return by_type


CORPUS = _corpus()


@pytest.mark.parametrize("type_", sorted(CORPUS))
def test_accessors_agree_with_the_engine(type_: str) -> None:
    checked = 0
    for param in _DEFS.search_params.for_type(type_):
        if param.type == "composite" or not param.expression:
            continue
        expression = param.expression
        if param.base in ("Resource", "DomainResource"):
            expression = expression.replace(f"{param.base}.", f"{type_}.", 1)
        accessor = compile_path(_DEFS.model, type_, expression)
        if accessor is None:
            continue
        compiled = _DEFS.engine.compile(expression)
        for resource in CORPUS[type_]:
            fast = [(v, t) for v, t, _ in accessor.values(resource, type_)]
            slow = [(n.value, n.type) for n in compiled.evaluate_nodes(resource)
                    if n.value is not None]
            assert fast == slow, (param.key, expression, resource.get("id"))
            checked += 1
    assert checked > 0


def test_unsupported_forms_fall_back() -> None:
    model = _DEFS.model
    assert compile_path(model, "Patient", "Patient.name.given.first()") is None
    assert compile_path(model, "Patient", "Patient.deceased.exists() and Patient.deceased != false") is None
    assert compile_path(model, "Observation", "Observation | Observation.component.(code)") is None
    assert compile_path(model, "Patient", "Patient.telecom.where(system='email')") is not None


@pytest.mark.parametrize("type_", sorted(t for t in CORPUS if any(
    p.type == "composite" for p in _DEFS.search_params.own(t))))
def test_fast_index_rows_equal_engine_index_rows(type_: str) -> None:
    from careweave.search.indexer import Indexer

    fast = Indexer(_DEFS.search_params, _DEFS.engine, _DEFS.code_systems)
    slow = Indexer(_DEFS.search_params, _DEFS.engine, _DEFS.code_systems, fast=False)
    for resource in CORPUS[type_]:
        a, b = fast.index(resource), slow.index(resource)
        for attr in ("tokens", "strings", "references", "dates", "numbers", "quantities", "uris",
                     "composites", "token_texts", "geo"):
            assert sorted(getattr(a, attr), key=repr) == sorted(getattr(b, attr), key=repr), attr
    assert fast.failures == {} and slow.failures == {}
