"""FHIRPath functions, table-driven: each case is (expression, expected result) on the patient
fixture (conftest.py), whose clock is fixed at 2024-05-17T09:30:15.250+02:00.

Spec: http://hl7.org/fhirpath/N1/#functions (FHIRPath 2.0.0).
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from careweave.fhir.fhirpath import FhirPathEngine, FhirPathError

D = Decimal

EXISTENCE = [
    ("Patient.name.empty()", [False]),
    ("Patient.link.empty()", [True]),
    ("Patient.name.exists()", [True]),
    ("Patient.name.exists(use = 'maiden')", [True]),
    ("Patient.name.exists(use = 'anonymous')", [False]),
    ("Patient.name.all(given.exists())", [True]),
    ("Patient.name.all(family.exists())", [False]),
    ("Patient.link.all(false)", [True]),
    ("(true | false).allTrue()", [False]),
    ("{}.allTrue()", [True]),
    ("(true | false).anyTrue()", [True]),
    ("(false).allFalse()", [True]),
    ("(true | false).anyFalse()", [True]),
    ("{}.anyFalse()", [False]),
    ("(1 | 2).subsetOf(1 | 2 | 3)", [True]),
    ("(1 | 4).subsetOf(1 | 2 | 3)", [False]),
    ("{}.subsetOf(1)", [True]),
    ("(1 | 2 | 3).supersetOf(3 | 1)", [True]),
    ("Patient.name.first().subsetOf($this.name)", [True]),
    ("Patient.name.count()", [3]),
    ("{}.count()", [0]),
    ("Patient.name.given.distinct()", ["Ada", "Nneka", "Addy"]),
    ("Patient.name.given.isDistinct()", [False]),
    ("(1 | 2).isDistinct()", [True]),
    ("Patient.name.first().given.combine(Patient.name.last().given).distinct().count()", [2]),
    ("true.not()", [False]),
    ("{}.not()", []),
    ("(0).not()", [False]),
]

FILTERING = [
    ("Patient.name.where(use = 'official').family", ["Okafor"]),
    ("Patient.name.where(family.exists()).count()", [2]),
    ("Patient.name.where($this.use = 'nickname').given", ["Addy"]),
    ("Patient.name.where($index = 1).given", ["Addy"]),
    ("Patient.name.select(given.first())", ["Ada", "Addy", "Ada"]),
    ("Patient.name.select($index)", [0, 1, 2]),
    ("Patient.name.select(given | family).count()", [7]),
    ("(1 | 2 | 3).where($this > 1)", [2, 3]),
    ("Patient.contained.ofType(Practitioner).name.family", ["Nwosu"]),
    ("Patient.contained.ofType(Patient)", []),
    ("Patient.children().ofType(HumanName).count()", [3]),
    ("Patient.telecom.ofType(ContactPoint).system", ["phone", "email"]),
    ("(1 | 'a' | 2.5).ofType(Integer)", [1]),
    ("(1 | 'a' | 2.5).ofType(String)", ["a"]),
]

SUBSETTING = [
    ("Patient.name[0].family", ["Okafor"]),
    ("Patient.name[5]", []),
    ("Patient.name.given[2]", ["Addy"]),
    ("(1 | 2 | 3).first()", [1]),
    ("(1 | 2 | 3).last()", [3]),
    ("(1 | 2 | 3).tail()", [2, 3]),
    ("(1 | 2 | 3).skip(2)", [3]),
    ("(1 | 2 | 3).skip(-1)", [1, 2, 3]),
    ("(1 | 2 | 3).take(2)", [1, 2]),
    ("(1 | 2 | 3).take(0)", []),
    ("{}.first()", []),
    ("Patient.name.first().single().family", ["Okafor"]),
    ("(1 | 2 | 3).intersect(2 | 3 | 4)", [2, 3]),
    ("(1 | 2 | 3).exclude(2)", [1, 3]),
    ("1.combine(1).exclude(2).count()", [2]),
    ("1.combine(1).intersect(1).count()", [1]),
    ("1.union(2).union(1)", [1, 2]),
    ("(1 | 2).combine(2)", [1, 2, 2]),
]

CONVERSION = [
    ("iif(true, 'y', 'n')", ["y"]),
    ("iif({}, 'y', 'n')", ["n"]),
    ("iif(false, 'y')", []),
    ("iif(true, 'y', 1 / 0)", ["y"]),
    ("iif(Patient.name.exists(), 'named', 'anonymous')", ["named"]),
    ("Patient.name.first().iif(use = 'official', family, 'other')", ["Okafor"]),
    ("'true'.toBoolean()", [True]),
    ("'No'.toBoolean()", [False]),
    ("2.toBoolean()", []),
    ("1.0.toBoolean()", [True]),
    ("'maybe'.convertsToBoolean()", [False]),
    ("'42'.toInteger()", [42]),
    ("'-7'.toInteger()", [-7]),
    ("'4.2'.toInteger()", []),
    ("true.toInteger()", [1]),
    ("'4.2'.convertsToInteger()", [False]),
    ("'4.20'.toDecimal()", [D("4.20")]),
    ("3.toDecimal() = 3.0", [True]),
    ("'abc'.convertsToDecimal()", [False]),
    ("1.5.toString()", ["1.5"]),
    ("true.toString()", ["true"]),
    ("@2014-12-14.toString()", ["2014-12-14"]),
    ("@2014-12-14T10:00:00.5+01:00.toString()", ["2014-12-14T10:00:00.500+01:00"]),
    ("5 'mg'.toString()", ["5 'mg'"]),
    ("'2014-05'.toDate()", ["2014-05"]),
    ("'2014-05-06T10:00:00Z'.toDate()", ["2014-05-06"]),
    ("'2014-13'.convertsToDate()", [False]),
    ("'2014-05-06T10:00:00Z'.toDateTime() = @2014-05-06T10:00:00Z", [True]),
    ("@2014-05-06.toDateTime()", ["2014-05-06"]),
    ("'10:15:30'.toTime()", ["10:15:30"]),
    ("'25:00'.convertsToTime()", [False]),
    ("'5 mg'.convertsToQuantity()", [False]),
    ("'5 \\'mg\\''.toQuantity() = 5 'mg'", [True]),
    ("'3 days'.toQuantity() = 3 days", [True]),
    ("2.toQuantity() = 2 '1'", [True]),
    ("1 'kg'.toQuantity('g') = 1000 'g'", [True]),
    ("1 'kg'.toQuantity('m')", []),
    ("Patient.birthDate.toString()", ["1980-06-02"]),
]

STRINGS = [
    ("'abcdef'.indexOf('cd')", [2]),
    ("'abcdef'.indexOf('x')", [-1]),
    ("'abcdef'.indexOf('')", [0]),
    ("'abcdef'.substring(2)", ["cdef"]),
    ("'abcdef'.substring(2, 3)", ["cde"]),
    ("'abcdef'.substring(4, 10)", ["ef"]),
    ("'abcdef'.substring(6)", []),
    ("'abcdef'.substring(-1)", []),
    ("{}.substring(1)", []),
    ("'abc'.startsWith('ab')", [True]),
    ("'abc'.startsWith('')", [True]),
    ("'abc'.endsWith('bc')", [True]),
    ("'abc'.contains('b')", [True]),
    ("'abc'.contains('d')", [False]),
    ("'AbC'.upper()", ["ABC"]),
    ("'AbC'.lower()", ["abc"]),
    ("'a-b-c'.replace('-', '+')", ["a+b+c"]),
    ("'abc'.replace('', '.')", [".a.b.c."]),
    ("'abc'.matches('^a.c$')", [True]),
    ("'xabcx'.matches('abc')", [True]),
    ("'line1\nline2'.matches('1.line')", [True]),
    ("'abc'.matches('^b')", [False]),
    ("'2024-01-02'.replaceMatches('(\\\\d+)-(\\\\d+)-(\\\\d+)', '$3/$2/$1')", ["02/01/2024"]),
    ("'hello'.length()", [5]),
    ("''.length()", [0]),
    ("'ab'.toChars()", ["a", "b"]),
    ("'  x y  '.trim()", ["x y"]),
    ("'a,b,,c'.split(',')", ["a", "b", "", "c"]),
    ("('a' | 'b' | 'c').join('-')", ["a-b-c"]),
    ("Patient.gender.upper()", ["FEMALE"]),
    ("Patient.name.family.where(startsWith('O'))", ["Okafor"]),
    ("'\\u0041\\t\\''", ["A\t'"]),
]

MATH = [
    ("(-5).abs()", [5]),
    ("(-5.5).abs()", [D("5.5")]),
    ("(-5 'mg').abs() = 5 'mg'", [True]),
    ("1.1.ceiling()", [2]),
    ("(-1.1).ceiling()", [-1]),
    ("1.9.floor()", [1]),
    ("(-1.9).truncate()", [-1]),
    ("0.exp()", [D(1)]),
    ("1.exp().round(5)", [D("2.71828")]),
    ("1.ln()", [D(0)]),
    ("0.ln()", []),
    ("100.log(10)", [D(2)]),
    ("2.power(10)", [1024]),
    ("4.power(0.5)", [D(2)]),
    ("(-8).power(0.5)", []),
    ("3.14159.round(2)", [D("3.14")]),
    ("2.5.round()", [D(3)]),
    ("16.sqrt()", [D(4)]),
    ("(-1).sqrt()", []),
    ("{}.sqrt()", []),
]

UTILITY = [
    ("now()", ["2024-05-17T09:30:15.250+02:00"]),
    ("today()", ["2024-05-17"]),
    ("timeOfDay()", ["09:30:15.250"]),
    ("now() = now()", [True]),
    ("today() + 1 day > today()", [True]),
    ("Patient.birthDate < today()", [True]),
    ("Patient.name.given.trace('given').count()", [5]),
    ("(1 | 2 | 3).aggregate($this + $total, 0)", [6]),
    ("(1 | 2 | 3).aggregate($total + $this, 10)", [16]),
    ("(4 | 9 | 2).aggregate(iif($total.empty(), $this, iif($this < $total, $this, $total)))", [2]),
    ("{}.aggregate($this + $total, 0)", [0]),
]

TREE = [
    ("Patient.name.first().children().count()", [4]),
    ("Patient.telecom.first().children()", ["phone", "+44 20 7946 0000", "home"]),
    ("Patient.descendants().where($this is HumanName).count()", [4]),  # contained too
    ("Patient.descendants().ofType(Practitioner).id", ["gp1"]),
    ("Patient.contained.descendants().family", ["Nwosu"]),
    ("'x'.children()", []),
    ("Patient.descendants().where(url.exists()).url",
     ["http://hl7.org/fhir/StructureDefinition/patient-birthTime",
      "http://example.org/ext/line-note"]),
]  # fmt: skip

CASES = EXISTENCE + FILTERING + SUBSETTING + CONVERSION + STRINGS + MATH + UTILITY + TREE


@pytest.mark.parametrize(("expression", "expected"), CASES)
def test_function(engine: FhirPathEngine, patient: dict[str, Any], expression: str, expected):
    assert engine.compile(expression).evaluate(patient) == expected


@pytest.mark.parametrize(
    "expression",
    [
        "Patient.name.single()",
        "Patient.name.given.substring(1)",
        "1.length()",
        "'abc'.substring('a')",
        "(1 | 'a').allTrue()",
        "Patient.name.where(given)",
        "iif(Patient.name, 1, 2)",
        "(1 | 2).toInteger()",
        "(1 | 2 | 3).skip('1')",
        "'a'.matches(%pattern)",
    ],
)
def test_function_errors(engine: FhirPathEngine, patient: dict[str, Any], expression: str):
    with pytest.raises(FhirPathError):
        engine.compile(expression).evaluate(patient)


def test_trace_hands_the_collection_to_the_tracer(model, patient: dict[str, Any]):
    seen: list[tuple[str, list[Any]]] = []
    traced = FhirPathEngine(model, tracer=lambda name, items: seen.append((name, items)))
    result = traced.compile("Patient.name.trace('names', family).given.first()").evaluate(patient)
    assert result == ["Ada"]
    assert [(name, [n.value for n in items]) for name, items in seen] == [("names", ["Okafor", "Eze"])]


def test_regex_literal_errors_are_compile_errors(engine: FhirPathEngine):
    with pytest.raises(FhirPathError, match="regular expression"):
        engine.compile("'a'.matches('(')")


def test_dynamic_pattern_and_variables(engine: FhirPathEngine, patient: dict[str, Any]):
    expression = engine.compile("Patient.name.family.where(matches(%pattern))")
    assert expression.evaluate(patient, variables={"pattern": "^E"}) == ["Eze"]
    assert expression.evaluate(patient, variables={"pattern": "^O"}) == ["Okafor"]
