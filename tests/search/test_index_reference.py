"""The indexer gives exactly the rows of the indexer as it was before its speed-up (frozen in
tests/search/frozen_indexer.py): every row, in the same order, with the same flags, narrative and
content, for a generated population, the examples the search tests use (a sample per search
parameter, the demo population, the UK Core examples), the same resources with values damaged at
random, and dates at the calendar's edges.

https://hl7.org/fhir/R4/search.html
"""

from __future__ import annotations

import copy
import random
from dataclasses import fields
from typing import Any

import pytest

from careweave.search.index import IndexRows
from careweave.search.indexer import Indexer
from careweave.search.values import date_range
from careweave.system import load_definitions
from tests.search import frozen_indexer
from tests.search.test_paths import CORPUS
from tests.support import generated_resources

_DEFS = load_definitions()


POPULATION = generated_resources(patients=25, organisations=3, seed=11)
EXAMPLES = [r for _, resources in sorted(CORPUS.items()) for r in resources]


def _rows(rows: IndexRows) -> dict[str, Any]:
    return {f.name: getattr(rows, f.name) for f in fields(rows)}


def _indexers() -> tuple[Indexer, frozen_indexer.Indexer]:
    new = Indexer(_DEFS.search_params, _DEFS.engine, _DEFS.code_systems)
    old = frozen_indexer.Indexer(_DEFS.search_params, _DEFS.engine, _DEFS.code_systems)
    return new, old


def _same_rows(resources: list[dict[str, Any]]) -> tuple[Indexer, frozen_indexer.Indexer]:
    new, old = _indexers()
    for resource in resources:
        expected = _rows(old.index(resource))
        got = _rows(new.index(resource))
        if got != expected:
            differing = {k: (got[k], expected[k]) for k in got if got[k] != expected[k]}
            pytest.fail(f"{resource.get('resourceType')}/{resource.get('id')}: {differing}")
    return new, old


@pytest.mark.parametrize("corpus", ["population", "examples"])
def test_rows_are_exactly_the_frozen_indexers(corpus: str) -> None:
    resources = POPULATION if corpus == "population" else EXAMPLES
    assert len(resources) > 1000
    new, old = _same_rows(resources)
    assert new.failures == old.failures == {}
    # and again, from the plans and key sets the first round remembered
    _same_rows(resources[:300])


_ODD_VALUES: list[Any] = [
    "2020-02-30", "2019-03-04T10:11:12.5+05:30", "2019-03-04T10:11:12.1234-10:75", "0001-01-01",
    "9999-12", "9999-12-31T23:59:59.999Z", "2020-01-01T24:00:00Z", "2020", "Ñandú  Ärger\tß",
    "  ", "", "Patient/123", "http://x.org/fhir/Observation/9/_history/2", "#c1",
    "urn:uuid:6f1c3e7e-1f1a-4b7a-9a8a-0c4b5d6e7f80", "http://x.org/vs|1.2", "a\\,b\\|c\\$d",
    3, 2.5, 0, -1e308, True, False, None, [], {}, [None, "x", 1], [[{"code": "nested"}]],
    {"reference": "Patient/1", "identifier": {"system": "s", "value": "v"}},
    {"reference": "Practitioner/p1/_history/3", "display": "Dr Ölund"},
    {"resourceType": "Patient", "id": "embedded"},
    {"coding": [{"system": "s", "code": "c", "display": "Déjà Vu"}, "not a coding"], "text": "T ext"},
    {"coding": {"system": "s", "code": "c"}},
    {"system": "http://unitsofmeasure.org", "code": "mg", "unit": "milligram", "value": 1.5},
    {"value": "12", "unit": "mg"}, {"low": {"value": 1}, "high": {"value": 2, "unit": "kg"}},
    {"start": "2020", "end": "2019-12-31T23:59:59+14:00"}, {"start": "nonsense"},
    {"event": ["2020-01-01", 5], "repeat": {"boundsPeriod": {"end": "2021"}}},
    {"system": "email", "value": "A@B.C"}, {"family": "Núñez", "given": ["Zoë", 7], "text": None},
    {"line": ["1 High St"], "city": "Llan-fair", "postalCode": "LL1 1AA"},
    {"latitude": 51.5, "longitude": -0.12}, {"value": True},
    {"type": {"coding": [{"system": "t", "code": "MR"}], "text": "Record"}, "value": "123"},
]


def _paths(value: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every place in a JSON value: the keys and indexes leading there."""
    out = [path]
    if isinstance(value, dict):
        for k, v in value.items():
            out.extend(_paths(v, (*path, k)))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            out.extend(_paths(v, (*path, i)))
    return out


def _damaged(resource: dict[str, Any], rnd: random.Random) -> dict[str, Any]:
    damaged = copy.deepcopy(resource)
    for _ in range(rnd.randint(1, 4)):
        places = [p for p in _paths(damaged) if p and p[0] != "resourceType"]
        if not places:
            break
        place = rnd.choice(places)
        parent = damaged
        for step in place[:-1]:
            parent = parent[step]
        action = rnd.random()
        if action < 0.15 and isinstance(parent, dict):
            del parent[place[-1]]
        elif action < 0.3 and isinstance(parent, dict):
            parent[rnd.choice(["valueString", "_status", "extra", "valueBoolean", "valueQuantity",
                               "component", "effectiveDateTime"])] = rnd.choice(_ODD_VALUES)
        else:
            parent[place[-1]] = copy.deepcopy(rnd.choice(_ODD_VALUES))
    return damaged


@pytest.mark.parametrize("seed", [1, 2])
def test_damaged_resources_give_the_frozen_indexers_rows(seed: int) -> None:
    # values of the wrong type, odd dates, accents, references of every form, missing and added
    # elements: the new key sets, the emitters' fallbacks and the composites' skips all agree
    rnd = random.Random(seed)
    sample = rnd.sample(POPULATION, 400) + rnd.sample(EXAMPLES, 400)
    resources = [_damaged(r, rnd) for r in sample]
    new, old = _same_rows(resources)
    assert new.failures.keys() == old.failures.keys()


def test_content_keeps_the_last_strings_of_a_long_or_deep_resource() -> None:
    many = [{"resourceType": "Basic", "id": f"many{n}",
             "extension": [{"url": "u", "valueString": f"word{i}"} for i in range(n)]}
            for n in (1998, 1999, 2000, 2001, 2500)]
    deep: dict[str, Any] = {"valueString": "bottom"}
    for i in range(3000):
        deep = {"extension": [deep], "valueString": f"level {i}"}
    deep_resource = {"resourceType": "Basic", "id": "deep", "extension": [deep]}
    _same_rows([*many, deep_resource])


def test_nulls_in_lists_give_the_frozen_indexers_rows() -> None:
    coding = {"system": "http://loinc.org", "code": "8867-4", "display": "Heart rate"}
    observation = {"resourceType": "Observation", "id": "o", "status": "final",
                   "category": [None, {"coding": [None, coding]}], "code": {"coding": [coding, None]},
                   "performer": [None, {"reference": "Practitioner/p"}],
                   "component": [None, {"code": {"coding": [coding]}, "valueQuantity": {"value": 1}}]}
    patient = {"resourceType": "Patient", "id": "p", "name": [None, {"family": "Nul", "given": [None, "A"]}],
               "identifier": [None], "telecom": [None, {"system": "email", "value": "a@b.c"}]}
    _same_rows([observation, patient])


def test_dates_are_the_frozen_date_ranges() -> None:
    rnd = random.Random(3)
    two = ["00", "01", "09", "10", "12", "13", "23", "24", "28", "29", "30", "31", "59", "60", "99"]
    values = ["2020", "0000", "0001", "9998-12", "9999-12", "2020-02-29", "2019-02-29", " 2020-01-01 ",
              "0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59.999Z", "2020-01-01T10:00:00+23:59"]
    for _ in range(20_000):
        text = rnd.choice(["0001", "0002", "1969", "1970", "2000", "2020", "2100", "9998", "9999"])
        precision = rnd.randint(0, 6)
        if precision >= 1:
            text += "-" + rnd.choice(two)
        if precision >= 2:
            text += "-" + rnd.choice(two)
        if precision >= 3:
            text += "T" + rnd.choice(two) + ":" + rnd.choice(two)
        if precision >= 4:
            text += ":" + rnd.choice(two)
        if precision >= 5:
            text += "." + rnd.choice(["1", "12", "123", "1234"])
        if precision >= 3 and rnd.random() < 0.7:
            text += rnd.choice(["Z", "+01:00", "-05:30", "+14:00", "-23:59", "+24:00", "+00:60", "-10:75"])
        values.append(text)
    assert sum(date_range(v) is not None for v in values) > 2000
    assert [date_range(v) for v in values] == [frozen_indexer.date_range(v) for v in values]
