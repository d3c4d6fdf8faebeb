"""The FHIRPath grammar: literals, precedence, identifiers and the errors compile() reports.

Spec: http://hl7.org/fhirpath/N1/#grammar and http://hl7.org/fhirpath/N1/#operator-precedence
"""

from __future__ import annotations

from decimal import Decimal

import pytest

from careweave.fhir.fhirpath import FhirPathEngine, FhirPathError, ast
from careweave.fhir.fhirpath.parser import parse
from careweave.fhir.fhirpath.quantity import Quantity
from careweave.fhir.fhirpath.temporal import Date, DateTime, Time


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("42", 42),
        ("3.50", Decimal("3.50")),
        ("-3", -3),
        ("true", True),
        ("'it\\'s'", "it's"),
        ("'\\u00e9\\n'", "é\n"),
        ("@2024", Date((2024,))),
        ("@2024-02-29", Date((2024, 2, 29))),
        ("@2024T", DateTime((2024,))),
        ("@2024-01-02T03:04:05.006Z", DateTime((2024, 1, 2, 3, 4, 5, 6), 0)),
        ("@2024-01-02T03:04-05:30", DateTime((2024, 1, 2, 3, 4), -330)),
        ("@T10:30", Time((10, 30))),
        ("10 'mg'", Quantity(Decimal(10), "mg")),
        ("2.5 weeks", Quantity(Decimal("2.5"), "week")),
        ("1 year", Quantity(Decimal(1), "year")),
    ],
)
def test_literals(text: str, value: object) -> None:
    tree = parse(text)
    assert isinstance(tree, ast.Literal)
    assert tree.value == value


@pytest.mark.parametrize(
    ("text", "shape"),
    [
        ("a or b and c", ("or", "a", ("and", "b", "c"))),
        ("a implies b or c", ("implies", "a", ("or", "b", "c"))),
        ("a = b | c", ("=", "a", ("|", "b", "c"))),
        ("a + b * c", ("+", "a", ("*", "b", "c"))),
        ("a - b - c", ("-", ("-", "a", "b"), "c")),
        ("a < b = c", ("=", ("<", "a", "b"), "c")),
        ("a in b and c", ("and", ("in", "a", "b"), "c")),
        ("a xor b or c", ("or", ("xor", "a", "b"), "c")),
        ("a & b + c", ("+", ("&", "a", "b"), "c")),
        ("a | b is T", ("|", "a", ("is", "b", "T"))),
    ],
)
def test_precedence(text: str, shape: tuple) -> None:
    def render(node: ast.Expr) -> object:
        if isinstance(node, ast.Identifier):
            return node.name
        if isinstance(node, ast.Binary):
            return (node.op, render(node.left), render(node.right))
        if isinstance(node, ast.TypeOp):
            return (node.op, render(node.operand), node.type.name)
        raise AssertionError(node)

    assert render(parse(text)) == shape


def test_paths_calls_and_indexers() -> None:
    tree = parse("Patient.name[0].`given`.where(use = 'x').exists()")
    assert isinstance(tree, ast.Call) and tree.name == "exists"
    where = tree.base
    assert isinstance(where, ast.Call) and where.name == "where" and len(where.args) == 1
    assert isinstance(where.base, ast.Member) and where.base.name == "given"
    assert isinstance(where.base.base, ast.Indexer)


def test_keywords_as_names_and_comments() -> None:
    tree = parse("a.contains('x') // trailing\n and /* inline */ b.as(Quantity)")
    assert isinstance(tree, ast.Binary) and tree.op == "and"
    assert isinstance(tree.left, ast.Call) and tree.left.name == "contains"
    assert isinstance(tree.right, ast.Call) and tree.right.name == "as"


def test_qualified_type_names() -> None:
    tree = parse("x is FHIR.`Patient`")
    assert isinstance(tree, ast.TypeOp)
    assert (tree.type.namespace, tree.type.name) == ("FHIR", "Patient")


@pytest.mark.parametrize(
    "text",
    ["", "Patient.", "(1 + 2", "1 +", "name.where(", "a..b", "@2024-13-01", "'unterminated",
     '"double"', "a # b", "x is", "x is A.B.C", "a.$this", "f(1,)", "}"],
)  # fmt: skip
def test_syntax_errors(engine: FhirPathEngine, text: str) -> None:
    with pytest.raises(FhirPathError) as info:
        engine.compile(text)
    assert info.value.expression == text


@pytest.mark.parametrize(
    "text", ["Patient.name.nosuchfn()", "exists(1, 2)", "substring()", "where()", "first(1)"]
)
def test_unknown_functions_and_arity(engine: FhirPathEngine, text: str) -> None:
    with pytest.raises(FhirPathError):
        engine.compile(text)


def test_error_carries_the_position(engine: FhirPathEngine) -> None:
    with pytest.raises(FhirPathError) as info:
        engine.compile("name.given.bogus()")
    assert info.value.position == 11


def test_compile_is_cached_per_text(engine: FhirPathEngine) -> None:
    assert engine.compile("Patient.id") is engine.compile("Patient.id")
