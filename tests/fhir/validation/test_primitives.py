"""Primitive types: https://hl7.org/fhir/R4/datatypes.html#primitive (regexes from the definitions)."""

from __future__ import annotations

from collections.abc import Mapping

import pytest

from careweave.fhir.elements import ElementModel
from careweave.fhir.validation.primitives import PrimitiveCheck, build_primitive_checks


@pytest.fixture(scope="module")
def checks(model: ElementModel) -> Mapping[str, PrimitiveCheck]:
    return build_primitive_checks(model)


VALID = [
    ("boolean", True),
    ("boolean", False),
    ("integer", 0),
    ("integer", -(2**31)),
    ("integer", 2**31 - 1),
    ("positiveInt", 1),
    ("unsignedInt", 0),
    ("decimal", 1),
    ("decimal", 1.5),
    ("decimal", -0.0001),
    ("string", "a"),
    ("string", "multi\nline\ttext"),
    ("markdown", "# hi"),
    ("code", "a b"),
    ("code", "final"),
    ("id", "a-B.9"),
    ("id", "a" * 64),
    ("uri", "http://example.org/x"),
    ("uri", "urn:x"),
    ("url", "https://a.b/c?d=e"),
    ("canonical", "http://hl7.org/fhir/ValueSet/x|4.0.1"),
    ("oid", "urn:oid:1.2.840.10008"),
    ("uuid", "urn:uuid:a76d9bbf-f293-4fb7-ad4c-2851cac77162"),
    ("base64Binary", "aGVsbG8="),
    ("base64Binary", "aGVs\nbG8="),
    ("date", "2024"),
    ("date", "2024-02"),
    ("date", "2024-02-29"),
    ("dateTime", "2024"),
    ("dateTime", "2024-02-29"),
    ("dateTime", "2024-02-29T10:11:12Z"),
    ("dateTime", "2024-02-29T10:11:12.345+05:30"),
    ("dateTime", "2016-12-31T23:59:60Z"),
    ("instant", "2024-02-29T10:11:12.345-03:00"),
    ("instant", "2024-02-29T10:11:12Z"),
    ("time", "23:59:59"),
    ("time", "00:00:00.5"),
]

INVALID = [
    ("boolean", "true", "structure", "must be a JSON boolean"),
    ("boolean", 1, "structure", "must be a JSON boolean"),
    ("integer", 1.0, "structure", "must be a JSON integer"),
    ("integer", True, "structure", "must be a JSON integer"),
    ("integer", "1", "structure", "must be a JSON integer"),
    ("integer", 2**31, "value", "out of range"),
    ("integer", -(2**31) - 1, "value", "out of range"),
    ("positiveInt", 0, "value", "out of range"),
    ("unsignedInt", -1, "value", "out of range"),
    ("decimal", "1.5", "structure", "must be a JSON number"),
    ("decimal", True, "structure", "must be a JSON number"),
    ("string", 5, "structure", "must be a JSON string"),
    ("string", "", "value", "must not be an empty string"),
    ("string", "x" * (1024 * 1024 + 1), "value", "1 MB"),
    ("code", " x", "value", "leading or trailing whitespace"),
    ("code", "a  b", "value", "not a valid code"),
    ("id", "a_b", "value", "not a valid id"),
    ("id", "a" * 65, "value", "longer than 64"),
    ("uri", "has space", "value", "not a valid uri"),
    ("oid", "urn:oid:3.1", "value", "not a valid oid"),
    ("uuid", "urn:uuid:A76D9BBF-F293-4FB7-AD4C-2851CAC77162", "value", "not a valid uuid"),
    ("base64Binary", "abc", "value", "not valid base64"),
    ("base64Binary", "ab!d", "value", "not valid base64"),
    ("date", "2023-02-29", "value", "not a real calendar date"),
    ("date", "2024-13", "value", "not a valid date"),
    ("date", "2024-04-31", "value", "not a real calendar date"),
    ("date", "24-01-01", "value", "not a valid date"),
    ("dateTime", "2023-02-30", "value", "not a real calendar date"),
    ("dateTime", "2024-01-01T10:11:12", "value", "no time zone"),
    ("dateTime", "2024-01-01T10:11Z", "value", "without seconds"),
    ("dateTime", "2024-01-01T10:11:60Z", "value", "leap second"),
    ("instant", "2024-01-01", "value", "needs a time"),
    ("instant", "2024-01-01T10:11Z", "value", "without seconds"),
    ("instant", "2024-01-01T10:11:12", "value", "no time zone"),
    ("instant", "2023-02-29T10:11:12Z", "value", "not a real calendar date"),
    ("time", "24:00:00", "value", "not a valid time"),
    ("time", "10:00", "value", "not a valid time"),
]


@pytest.mark.parametrize(("type_code", "value"), VALID, ids=[f"{t}:{v!r}"[:40] for t, v in VALID])
def test_valid_values(checks: Mapping[str, PrimitiveCheck], type_code: str, value: object) -> None:
    assert checks[type_code](value) is None


@pytest.mark.parametrize(
    ("type_code", "value", "code", "clause"), INVALID, ids=[f"{c[0]}:{c[1]!r}"[:40] for c in INVALID]
)
def test_invalid_values(
    checks: Mapping[str, PrimitiveCheck], type_code: str, value: object, code: str, clause: str
) -> None:
    problem = checks[type_code](value)
    assert problem is not None
    assert (problem.severity, problem.code) == ("error", code)
    assert clause in problem.clause


def test_every_primitive_type_has_a_check(model: ElementModel, checks: Mapping[str, PrimitiveCheck]) -> None:
    primitives = {name for name, t in model.types.items() if t.kind == "primitive-type"}
    assert primitives == set(checks)
    assert all(checks[name](None) is not None for name in primitives)


@pytest.mark.parametrize("value", ["   ", "\n"])
def test_whitespace_only_string_warns(checks: Mapping[str, PrimitiveCheck], value: str) -> None:
    problem = checks["string"](value)
    assert problem is not None and problem.severity == "warning"


def test_control_characters_warn(checks: Mapping[str, PrimitiveCheck]) -> None:
    problem = checks["string"]("bell\x07")
    assert problem is not None and problem.severity == "warning"


def test_remembered_valid_values_give_the_answers_of_a_fresh_check(
    model: ElementModel, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A check remembers short values it found valid; asked again (or after its memory started
    over) it answers exactly as a check that has seen nothing."""
    from careweave.fhir.validation import primitives

    values = [value for _, value in VALID] + [case[1] for case in INVALID] + [
        "", " ", "2024-02-30", "2024-02-29", "2023-02-29", "2024-01-01T10:00:00Z", "2024-01-01T10:00",
        "x" * 300, "a" * 65, "a b", " final", "urn:oid:1.2", "http://loinc.org", "12:60:00", "aGk=",
        "aGk", 3, None, ["a"], {"a": 1},
    ]
    remembering = build_primitive_checks(model)
    for _ in range(2):
        for name, check in sorted(remembering.items()):
            for value in values:
                assert check(value) == build_primitive_checks(model)[name](value), (name, value)
    monkeypatch.setattr(primitives, "_MEMO_SIZE", 2)
    small = build_primitive_checks(model)
    for _ in range(2):
        for value in values:
            assert small["dateTime"](value) == build_primitive_checks(model)["dateTime"](value), value
