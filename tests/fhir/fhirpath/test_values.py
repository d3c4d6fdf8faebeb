"""System types with precision: Date/DateTime/Time comparison and arithmetic, Quantity and UCUM
unit conversion.

Spec: http://hl7.org/fhirpath/N1/#datetime, http://hl7.org/fhirpath/N1/#quantity,
https://ucum.org/ucum (the common units only).
"""

from __future__ import annotations

from decimal import Decimal

import pytest

from careweave.fhir.fhirpath.quantity import Quantity, compare_quantities, equivalent_quantities
from careweave.fhir.fhirpath.temporal import (
    Date,
    DateTime,
    Time,
    add_duration,
    compare_temporal,
    parse_date,
    parse_datetime,
    parse_time,
)
from careweave.fhir.fhirpath.ucum import canonical, convert

D = Decimal


@pytest.mark.parametrize(
    ("text", "parsed"),
    [
        ("2024", DateTime((2024,))),
        ("2024-02", DateTime((2024, 2))),
        ("2024-02-03T04:05:06.7+01:00", DateTime((2024, 2, 3, 4, 5, 6, 700), 60)),
        ("2024-02-03T04:05:06Z", DateTime((2024, 2, 3, 4, 5, 6), 0)),
        ("2024-02-30", None),
        ("2024-02-03T25:00:00Z", None),
        ("2024-02-03T04:05:06+01:00x", None),
        ("24", None),
    ],
)
def test_parse_datetime(text: str, parsed: DateTime | None) -> None:
    assert parse_datetime(text) == parsed


def test_parse_date_and_time() -> None:
    assert parse_date("1999-12-31") == Date((1999, 12, 31))
    assert parse_date("1999-12-31T00:00") is None
    assert parse_time("23:59:59.999") == Time((23, 59, 59, 999))
    assert parse_time("24:00") is None


@pytest.mark.parametrize(
    ("a", "b", "order"),
    [
        (Date((2020, 1, 1)), Date((2020, 1, 2)), -1),
        (Date((2020, 1)), Date((2020, 1, 2)), None),
        (Date((2020, 1)), Date((2020, 2, 2)), -1),
        (DateTime((2020, 1, 1, 10, 0), 60), DateTime((2020, 1, 1, 9, 0), 0), 0),
        (DateTime((2020, 1, 1, 10, 0, 0)), DateTime((2020, 1, 1, 10, 0, 0, 0)), 0),
        (DateTime((2020, 1, 1, 10, 0, 1)), DateTime((2020, 1, 1, 10, 0, 0, 999)), 1),
        (Date((2020, 1, 1)), DateTime((2020, 1, 1, 10)), None),
        (Time((10, 0)), Time((9, 59, 59)), 1),
    ],
)
def test_compare_temporal(a: object, b: object, order: int | None) -> None:
    assert compare_temporal(a, b) == order


def test_compare_temporal_refuses_mixed_kinds() -> None:
    with pytest.raises(TypeError):
        compare_temporal(Date((2020,)), Time((10,)))


@pytest.mark.parametrize(
    ("value", "amount", "unit", "result"),
    [
        (Date((2020, 1, 31)), 1, "month", Date((2020, 2, 29))),
        (Date((2020, 12, 31)), 1, "day", Date((2021, 1, 1))),
        (Date((2020, 5)), 14, "months", Date((2021, 7))),
        (Date((2020,)), 11, "months", Date((2020,))),
        (Date((2020, 5, 1)), 23, "hours", Date((2020, 5, 1))),
        (DateTime((2020, 5, 1, 23, 0), -300), 2, "hours", DateTime((2020, 5, 2, 1, 0), -300)),
        (DateTime((2020, 5, 1, 23, 0, 0, 500)), 600, "ms", DateTime((2020, 5, 1, 23, 0, 1, 100))),
        (Time((23, 59)), 2, "minutes", Time((0, 1))),
        (Date((2020, 3, 1)), -1, "wk", Date((2020, 2, 23))),
    ],
)
def test_add_duration(value: object, amount: int, unit: str, result: object) -> None:
    assert add_duration(value, D(amount), unit) == result  # type: ignore[arg-type]


def test_add_duration_rejects_non_time_units() -> None:
    assert add_duration(Date((2020,)), D(1), "kg") is None
    assert add_duration(Time((10,)), D(1), "day") is None


def test_rendering() -> None:
    assert str(DateTime((2020, 1, 2, 3, 4, 5, 6), 0)) == "2020-01-02T03:04:05.006Z"
    assert str(DateTime((2020, 1, 2, 3, 4), -90)) == "2020-01-02T03:04-01:30"
    assert str(Time((7, 8))) == "07:08"
    assert str(Quantity(D("1.5"), "mg")) == "1.5 'mg'"
    assert str(Quantity(D(2), "week")) == "2 weeks"


@pytest.mark.parametrize(
    ("value", "unit", "target", "expected"),
    [
        ("1", "kg", "g", "1000"),
        ("1", "[lb_av]", "kg", "0.45359237"),
        ("120", "mm[Hg]", "kPa", "15.99868648980"),
        ("1", "L", "mL", "1000"),
        ("1", "wk", "d", "7"),
        ("1", "h", "min", "60"),
        ("5", "mg/dL", "g/L", "0.05"),
        ("1", "10*3/uL", "10*9/L", "1"),
        ("2", "m2", "cm2", "20000"),
        ("100", "Cel", "K", "373.15"),
        ("1", "{beats}/min", "/s", "0.01666666666666666666666666667"),
        ("30", "%", "1", "0.30"),
    ],
)
def test_convert(value: str, unit: str, target: str, expected: str) -> None:
    result = convert(D(value), unit, target)
    assert result is not None
    assert result.quantize(D("1e-11")) == D(expected).quantize(D("1e-11"))


@pytest.mark.parametrize(("unit", "target"), [("kg", "m"), ("mg", "mL"), ("year", "a"), ("zz", "g")])
def test_incommensurable_units(unit: str, target: str) -> None:
    assert convert(D(1), unit, target) is None


def test_canonical_understands_prefixes_and_exponents() -> None:
    assert canonical("ug") == (D("0.000001"), (("g", 1),))
    assert canonical("cm3") == (D("0.000001"), (("m", 3),))
    assert canonical("mmol/L") == (D(1), (("m", -3), ("mol", 1)))
    assert canonical("not a unit") is None


def test_quantity_comparison_and_equivalence() -> None:
    assert compare_quantities(Quantity(D(1), "kg"), Quantity(D(999), "g")) == 1
    assert compare_quantities(Quantity(D(1), "kg"), Quantity(D(1), "m")) is None
    assert equivalent_quantities(Quantity(D("1.0"), "kg"), Quantity(D(1040), "g"))
    assert not equivalent_quantities(Quantity(D("1.00"), "kg"), Quantity(D(1040), "g"))


@pytest.mark.parametrize("parse", [parse_date, parse_datetime, parse_time], ids=lambda f: f.__name__)
def test_remembered_parses_are_fresh_parses(parse) -> None:
    """The parse functions remember what they parsed (the values are immutable): asked again, they
    answer as the undecorated function does, valid and invalid texts alike."""
    texts = ["2014", "2014-05", "2014-05-06", "2014-02-30", "2024-02-29", "2014-05-06T10:00:00+02:00",
             "2014-05-06T10:00:00.123Z", "2014-05-06T10:00", "2014T", "2014-05-06T25:00:00Z", "10:00",
             "10:00:00.5", "24:00", "", "x", "2014-05-06T10:00:00+02:00Z"]
    for _ in range(2):
        for text in texts:
            assert parse(text) == parse.__wrapped__(text), text
