"""Value set expansion: https://hl7.org/fhir/R4/valueset.html#compositions, and the R4 terminology."""

from __future__ import annotations

from typing import Any

import pytest

from careweave.fhir.validation import Terminology
from careweave.fhir.validation.external import BCP13, BCP47, ISO4217, SYNTAX, UCUM

SYS = "http://example.org/cs"
CODE_SYSTEM: dict[str, Any] = {
    "resourceType": "CodeSystem",
    "url": SYS,
    "content": "complete",
    "concept": [
        {
            "code": "animal",
            "concept": [
                {"code": "dog", "concept": [{"code": "puppy"}]},
                {"code": "cat", "property": [{"code": "colour", "valueCode": "black"}]},
            ],
        },
        {"code": "plant"},
        {"code": "fern", "property": [{"code": "subsumedBy", "valueCode": "plant"}]},
    ],
}


def _vs(url: str, compose: dict[str, Any]) -> dict[str, Any]:
    return {"resourceType": "ValueSet", "url": url, "compose": compose}


def _codes(terminology: Terminology, url: str) -> set[str]:
    expansion = terminology.expansion(url)
    assert expansion is not None
    return {code for _, code in expansion.codes}


def _filter(prop: str, op: str, value: str) -> dict[str, Any]:
    return {"include": [{"system": SYS, "filter": [{"property": prop, "op": op, "value": value}]}]}


CASES = [
    ({"include": [{"system": SYS}]}, {"animal", "dog", "puppy", "cat", "plant", "fern"}),
    ({"include": [{"system": SYS, "concept": [{"code": "dog"}, {"code": "zzz"}]}]}, {"dog", "zzz"}),
    (_filter("concept", "is-a", "animal"), {"animal", "dog", "puppy", "cat"}),
    (_filter("concept", "descendent-of", "animal"), {"dog", "puppy", "cat"}),
    (_filter("concept", "is-not-a", "animal"), {"plant", "fern"}),
    (_filter("concept", "is-a", "plant"), {"plant", "fern"}),
    (_filter("concept", "generalizes", "puppy"), {"puppy", "dog", "animal"}),
    (_filter("concept", "in", "dog,cat,nope"), {"dog", "cat"}),
    (_filter("concept", "regex", "p.*"), {"puppy", "plant"}),
    (_filter("colour", "=", "black"), {"cat"}),
    (_filter("colour", "exists", "true"), {"cat"}),
    (
        {"include": [{"system": SYS}], "exclude": [{"system": SYS, "concept": [{"code": "dog"}]}]},
        {"animal", "puppy", "cat", "plant", "fern"},
    ),
    ({"include": [{"valueSet": ["http://example.org/vs/animals"]}]}, {"animal", "dog", "puppy", "cat"}),
    (
        {
            "include": [
                {
                    "system": SYS,
                    "valueSet": ["http://example.org/vs/animals"],
                    "filter": [{"property": "concept", "op": "regex", "value": "[a-d].*"}],
                }
            ]
        },
        {"animal", "dog", "cat"},
    ),
]


@pytest.mark.parametrize(("compose", "expected"), CASES)
def test_expansion(compose: dict[str, Any], expected: set[str]) -> None:
    terminology = Terminology.from_resources(
        [
            CODE_SYSTEM,
            _vs("http://example.org/vs/animals", _filter("concept", "is-a", "animal")),
            _vs("http://example.org/vs/test", compose),
        ]
    )
    assert _codes(terminology, "http://example.org/vs/test") == expected


def test_unknown_value_set_is_none() -> None:
    assert Terminology.from_resources([]).expansion("http://example.org/none") is None


def test_cycles_are_cut() -> None:
    a = _vs("http://x/a", {"include": [{"valueSet": ["http://x/b"]}]})
    b = _vs(
        "http://x/b", {"include": [{"valueSet": ["http://x/a"]}, {"system": SYS, "concept": [{"code": "q"}]}]}
    )
    expansion = Terminology.from_resources([a, b]).expansion("http://x/a")
    assert expansion is not None and expansion.has_coding(SYS, "q") is True


def test_external_systems_are_judged_by_syntax() -> None:
    vs = _vs("http://x/mime", {"include": [{"system": BCP13}]})
    expansion = Terminology.from_resources([vs]).expansion("http://x/mime")
    assert expansion is not None and not expansion.complete
    assert expansion.has_code("application/fhir+json") is True
    assert expansion.has_code("fhir json") is False
    snomed = _vs("http://x/sct", {"include": [{"system": "http://snomed.info/sct"}]})
    unknown = Terminology.from_resources([snomed]).expansion("http://x/sct")
    assert unknown is not None and unknown.has_code("123") is None


def test_extended_adds_without_changing_the_original() -> None:
    base = Terminology.from_resources([CODE_SYSTEM])
    bigger = base.extended([_vs("http://x/v", {"include": [{"system": SYS}]})], ["http://x/v"])
    assert base.expansion("http://x/v") is None
    assert "http://x/v" in bigger.expansions


def test_r4_required_value_sets_are_expanded(terminology: Terminology) -> None:
    gender = terminology.expansions["http://hl7.org/fhir/ValueSet/administrative-gender"]
    assert gender.code_values == {"male", "female", "other", "unknown"}
    status = terminology.expansions["http://hl7.org/fhir/ValueSet/observation-status"]
    assert {"final", "amended", "corrected", "entered-in-error"} <= status.code_values
    assert len(terminology.expansions) > 200


SYNTAX_CASES = [
    (BCP47, "en", True),
    (BCP47, "en-GB", True),
    (BCP47, "zh-Hant-TW", True),
    (BCP47, "x-private", True),
    (BCP47, "e1", False),
    (BCP47, "en--GB", False),
    (BCP47, "en_GB", False),
    (BCP47, "", False),
    (BCP13, "text/plain", True),
    (BCP13, "text/plain; charset=utf-8", True),
    (BCP13, "application/fhir+json", True),
    (BCP13, "textplain", False),
    (BCP13, "a/b c", False),
    (ISO4217, "GBP", True),
    (ISO4217, "gbp", False),
    (ISO4217, "GBPX", False),
    (UCUM, "mm[Hg]", True),
    (UCUM, "/min", True),
    (UCUM, "kg/m2", True),
    (UCUM, "mm[Hg", False),
    (UCUM, "a b", False),
]


@pytest.mark.parametrize(("system", "code", "ok"), SYNTAX_CASES)
def test_external_syntax(system: str, code: str, ok: bool) -> None:
    assert SYNTAX[system](code) is ok
