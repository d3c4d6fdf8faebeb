"""Every search parameter of every resource type, from the spec's own definitions, is indexed and
searchable: for each one a resource holding a value at the parameter's expression is stored, then
found by that value and not found by another (search.html; search-parameters.json).

The resources are written through the store (with the real indexer), not the validating API: this
test is about indexing and search, and the generated values are minimal rather than valid."""

from __future__ import annotations

import re

import pytest

from careweave.store import writes
from careweave.system import load_definitions
from tests.search.paramgen import Generator

pytestmark = pytest.mark.anyio

_DEFS = load_definitions()
TYPES = sorted(t for t in _DEFS.model.resource_types if _DEFS.search_params.own(t))


def _other(query: str) -> str:
    """A value of the same shape that must not match (every number in it shifted far away)."""
    return re.sub(r"\d+", lambda m: str(int(m.group()) + 500), query)


@pytest.mark.parametrize("type_", TYPES)
async def test_every_parameter_of(type_: str, system, client) -> None:
    generator = Generator(system.definitions.model, system.definitions.search_params)
    tenant = await system.store.tenant("default")
    cases = []
    for n, param in enumerate(system.definitions.search_params.own(type_)):
        resource, query = generator.sample(type_, param, n)
        resource["id"] = f"p{n}"
        prepared = writes.Prepared(type_, resource, system.services.search.base.indexer.index(resource))
        await system.store.write(tenant, lambda tx, p=prepared, i=resource["id"]:
                                 writes.update(tx, p, i))
        cases.append((param.code, query, resource["id"]))
    failures = []
    for code, query, rid in cases:
        r = await client.get(f"/fhir/{type_}", params={code: query, "_count": "1000"})
        found = {e["resource"]["id"] for e in r.json().get("entry", ())
                 if e["search"]["mode"] == "match"} if r.status_code == 200 else set()
        if rid not in found:
            failures.append(f"{code}={query}: {r.status_code} {r.text[:200]}")
            continue
        other = _other(query)
        if other != query and code != "phonetic":  # Soundex ignores the digits that differ
            r = await client.get(f"/fhir/{type_}", params={code: other, "_count": "1000"})
            if rid in {e["resource"]["id"] for e in r.json().get("entry", ())}:
                failures.append(f"{code}={other} also found {rid}")
    assert failures == []
    assert system.services.search.base.indexer.failures == {}
