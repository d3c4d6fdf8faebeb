"""normalise(): a FHIR R4 / UK Core Patient reduced to the comparable record.

UK Core Patient (identity notes 4.1): the NHS number identifier carries the
NHSNumberVerificationStatus extension; names, addresses and identifiers have use and period.
"""

from __future__ import annotations

from datetime import date

import pytest

from careweave.mpi import normalise
from careweave.mpi.postcode import Postcode
from tests.mpi.builders import NHS_A, NHS_B, NICKNAMES, ODS, nhs_identifier, patient, record


def test_uk_core_patient():
    r = record(
        nhs=NHS_A,
        given=("Anne-Marie", "Louise"),
        family="O'Brien",
        gender="female",
        birth="1975-03-09",
        postcode="ls64qt",
        line="Flat 3",
        phones=("07700 900123", "+44 113 496 0001"),
        emails=("Anne@Example.org",),
        maiden="Kociński",
    )
    assert (r.nhs_number, r.nhs_status, r.nhs_valid, r.nhs_verified) == (NHS_A, "01", True, True)
    assert r.given == ("annemarie", "louise")
    assert r.given_tokens == {"anne", "marie", "louise"}
    assert r.family == "obrien"
    assert r.family_history == {"obrien", "kocinski"}
    assert r.birth_date == date(1975, 3, 9)
    assert r.sex == "female"
    assert r.postcode == Postcode("LS6 4QT", "LS6 4", "LS6")
    assert r.mobiles == {"07700900123"} and r.landlines == {"01134960001"}
    assert r.emails == {"anne@example.org"}
    assert not r.placeholder


@pytest.mark.parametrize(
    ("status", "valid_number", "verified"),
    [("01", True, True), ("02", True, False), (None, True, False), ("01", False, False)],
)
def test_only_a_valid_verified_number_is_verified(status, valid_number, verified):
    number = NHS_A if valid_number else NHS_A[:-1] + "9"
    r = record(nhs=number, status=status)
    assert r.nhs_verified is verified
    assert r.nhs_status == status


def test_superseded_numbers_are_history():
    resource = patient(nhs=NHS_A)
    resource["identifier"].append(nhs_identifier("999 000 0026", status=None, use="old"))
    r = normalise(resource, NICKNAMES)
    assert r.nhs_number == NHS_A
    assert r.nhs_history == {NHS_B}


def test_malformed_numbers_are_dropped():
    assert record(nhs="12345").nhs_number is None
    assert record(nhs="999-000-0018").nhs_number == NHS_A


@pytest.mark.parametrize(
    ("value", "born"),
    [
        ("1980-05-17", date(1980, 5, 17)),
        ("1980", date(1980, 1, 1)),
        ("1980-05", None),
        ("1980-02-30", None),
        (None, None),
    ],
)
def test_birth_dates(value, born):
    assert record(birth=value).birth_date == born


@pytest.mark.parametrize(
    ("gender", "sex"), [("male", "male"), ("female", "female"), ("other", None), ("unknown", None)]
)
def test_sex(gender, sex):
    assert record(gender=gender).sex == sex


def test_pseudo_postcode_is_no_address_but_history_still_counts():
    r = record(postcode="ZZ99 3VZ", line="No fixed abode", old_postcode="M1 1AE")
    assert r.postcode is None
    assert r.postcodes == {"M1 1AE"}


def test_current_name_is_official_and_old_names_are_history():
    resource = patient(given=("Mary",), family="Jones")
    resource["name"].insert(0, {"use": "old", "family": "Brown", "given": ["Mary"]})
    resource["name"].append({"use": "nickname", "given": ["Molly"], "family": "Jones"})
    r = normalise(resource, NICKNAMES)
    assert (r.first_given, r.family) == ("mary", "jones")
    assert r.family_history == {"jones", "brown"}


def test_text_only_name_is_split():
    resource = patient()
    resource["name"] = [{"text": "Amelia Rose Hughes"}]
    r = normalise(resource, NICKNAMES)
    assert (r.given, r.family) == (("amelia", "rose"), "hughes")


@pytest.mark.parametrize(
    ("kwargs", "placeholder"),
    [
        ({"given": ("Baby",), "family": "Smith", "text": "Baby of Jane Smith", "name_use": "temp"}, True),
        ({"given": ("Unknown",), "family": "Unknown"}, True),
        ({"given": ("Jo",), "family": "Smith", "name_use": "anonymous"}, True),
        ({"given": ("Jo",), "family": "Smith"}, False),
    ],
)
def test_placeholder_names(kwargs, placeholder):
    assert record(**kwargs).placeholder is placeholder


def test_multiple_birth():
    assert record(multiple_birth=2).multiple_birth == 2
    resource = patient()
    resource["multipleBirthBoolean"] = True
    assert normalise(resource, NICKNAMES).multiple_birth == 0
    assert record().multiple_birth is None


def test_not_a_patient():
    with pytest.raises(ValueError):
        normalise({"resourceType": "Observation", "id": "x"}, NICKNAMES)
    with pytest.raises(ValueError):
        normalise({"resourceType": "Patient"}, NICKNAMES)


def test_normalising_twice_gives_the_same_record():
    resource = patient(nhs=NHS_A, maiden="Brown", old_postcode="M1 1AE", phones=("07700 900001",))
    assert normalise(resource, NICKNAMES) == normalise(resource, NICKNAMES)


def test_empty_patient():
    r = normalise({"resourceType": "Patient", "id": "x"}, NICKNAMES)
    assert r.nhs_number is None and r.birth_date is None and r.postcode is None
    assert r.placeholder  # no name at all identifies nobody


def test_gp_practices_by_ods_code_or_reference():
    resource = patient("p1")
    resource["generalPractitioner"] = [
        {"identifier": {"system": ODS, "value": " b82005 "}, "reference": "Organization/1"},
        {"reference": "Organization/2"},
        {"display": "Dr Who"},
        "nonsense",
    ]
    assert normalise(resource, NICKNAMES).practices == frozenset({"ods:B82005", "Organization/2"})
    assert record("p2").practices == frozenset()
