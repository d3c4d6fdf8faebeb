"""v2 data types -> FHIR data types (the IG's datatype maps: TS/DTM, XPN, XAD, XTN, CWE, NM)."""

from __future__ import annotations

from zoneinfo import ZoneInfo

import pytest

from careweave.hl7v2 import Hl7v2Error, Location
from careweave.hl7v2.mapping import datatypes
from careweave.hl7v2.message import Repetition

LONDON = ZoneInfo("Europe/London")
HERE = Location("OBX", 1, 14)


def rep(*components: str) -> Repetition:
    return Repetition(tuple(tuple(c.split("&")) for c in components))


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2024", "2024"),
        ("202403", "2024-03"),
        ("20240312", "2024-03-12"),
        ("2024031209", "2024-03-12T09:00:00+00:00"),
        ("202403120930", "2024-03-12T09:30:00+00:00"),
        ("20240712093015", "2024-07-12T09:30:15+01:00"),
        ("20240712093015.25", "2024-07-12T09:30:15.25+01:00"),
        ("20240312093015-0500", "2024-03-12T09:30:15-05:00"),
        ("20240312093015+0530", "2024-03-12T09:30:15+05:30"),
        ("", None),
    ],
)
def test_date_time(text, expected):
    assert datatypes.date_time(text, LONDON, HERE) == expected


@pytest.mark.parametrize("text", ["2024-03-12", "20240230", "2024031225", "yesterday", "20240312093060"])
def test_bad_timestamps_raise_102_with_the_location(text):
    with pytest.raises(Hl7v2Error) as info:
        datatypes.date_time(text, LONDON, HERE)
    assert info.value.code == "102" and info.value.location == HERE


def test_instant_needs_a_day_and_gives_seconds():
    assert datatypes.instant("20240312", LONDON, HERE) == "2024-03-12T00:00:00+00:00"
    with pytest.raises(Hl7v2Error):
        datatypes.instant("202403", LONDON, HERE)


@pytest.mark.parametrize(
    ("components", "expected"),
    [
        (
            ("Smith", "John", "Paul Andrew", "Jr", "Dr", "", "L"),
            {
                "use": "official",
                "family": "Smith",
                "given": ["John", "Paul", "Andrew"],
                "prefix": ["Dr"],
                "suffix": ["Jr"],
            },
        ),
        (("Smith", "", "", "", "", "", "M"), {"use": "maiden", "family": "Smith"}),
        (("", "Cher"), {"given": ["Cher"]}),
        (("", "", "", "", "Mr"), None),
    ],
)
def test_human_name(components, expected):
    assert datatypes.human_name(rep(*components)) == expected


def test_address_with_postcode():
    got = datatypes.address(rep("1 High St", "", "York", "North Yorkshire", "YO1 7HH", "GBR", "M"))
    assert got == {
        "type": "postal",
        "city": "York",
        "district": "North Yorkshire",
        "postalCode": "YO1 7HH",
        "country": "GBR",
        "line": ["1 High St"],
    }


@pytest.mark.parametrize(
    ("components", "default", "expected"),
    [
        (("01632 960000", "PRN", "PH"), "home", {"system": "phone", "value": "01632 960000", "use": "home"}),
        (
            ("07700 900000", "ORN", "CP"),
            "home",
            {"system": "phone", "value": "07700 900000", "use": "mobile"},
        ),
        (("", "NET", "Internet", "a@b.uk"), "home", {"system": "email", "value": "a@b.uk", "use": "home"}),
        (
            ("", "WPN", "FX", "", "44", "20", "79460000", "12"),
            None,
            {"system": "fax", "value": "+44 20 79460000 ext. 12", "use": "work"},
        ),
        (("", "PRN", "PH"), "home", None),
    ],
)
def test_contact_point(components, default, expected):
    assert datatypes.contact_point(rep(*components), default) == expected


@pytest.mark.parametrize(
    ("components", "default", "expected"),
    [
        (
            ("718-7", "Hb", "LN"),
            None,
            {"coding": [{"system": "http://loinc.org", "code": "718-7", "display": "Hb"}]},
        ),
        (
            ("F", "Female", "HL70001"),
            None,
            {
                "coding": [
                    {
                        "system": "http://terminology.hl7.org/CodeSystem/v2-0001",
                        "code": "F",
                        "display": "Female",
                    }
                ]
            },
        ),
        (("X1", "Local", "99ZZZ"), None, {"coding": [{"code": "X1", "display": "Local"}]}),
        (("C", "", ""), "http://x", {"coding": [{"system": "http://x", "code": "C"}]}),
        (("", "Only text"), None, {"text": "Only text"}),
        (
            ("A", "a", "SCT", "B", "b", "LN"),
            None,
            {
                "coding": [
                    {"system": "http://snomed.info/sct", "code": "A", "display": "a"},
                    {"system": "http://loinc.org", "code": "B", "display": "b"},
                ]
            },
        ),
        ((), None, None),
    ],
)
def test_codeable(components, default, expected):
    assert datatypes.codeable(rep(*components), default) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [("5", 5), ("-5.25", -5.25), (".5", 0.5), ("5.", 5.0), ("1e3", None), ("", None), ("<5", None)],
)
def test_number(text, expected):
    assert datatypes.number(text) == expected


@pytest.mark.parametrize(
    ("text", "as_date", "as_instant"),
    [
        ("2024", "2024", None),
        ("202403", "2024-03", None),
        ("20240312", "2024-03-12", "2024-03-12T00:00:00+00:00"),
        ("2024031209", "2024-03-12", "2024-03-12T09:00:00+00:00"),
        ("20240712093015.1250", "2024-07-12", "2024-07-12T09:30:15+01:00"),
    ],
)
def test_dates_and_instants_keep_the_precision_given(text, as_date, as_instant):
    assert datatypes.date(text) == as_date
    if as_instant is None:
        with pytest.raises(Hl7v2Error) as info:
            datatypes.instant(text, LONDON, HERE)
        assert info.value.location == HERE
    else:
        assert datatypes.instant(text, LONDON) == as_instant


def test_a_date_time_with_a_fraction_and_an_offset():
    assert datatypes.date_time("20240312093015.0100Z", LONDON) == "2024-03-12T09:30:15.01+00:00"
    assert datatypes.date_time("19990101000000", LONDON) == "1999-01-01T00:00:00+00:00"
