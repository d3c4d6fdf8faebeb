"""merge_patient (adt_a39 rule 5): what an A40 merge says outlives later snapshots.
FHIR R4 Patient.link (patient.html#links): ``replaces`` / ``replaced-by``."""

from __future__ import annotations

from careweave.hl7v2.mapping import merge_patient

SURVIVOR = {"reference": "Patient/s"}
RETIRED = {"reference": "Patient/r"}


def test_nothing_stored_or_nothing_to_keep_returns_the_mapping_itself() -> None:
    mapped = {"resourceType": "Patient", "id": "s", "gender": "female"}
    assert merge_patient(mapped, None) is mapped
    assert merge_patient(mapped, {"resourceType": "Patient", "id": "s", "gender": "male"}) is mapped


def test_a_later_snapshot_keeps_the_stored_links() -> None:
    stored = {"resourceType": "Patient", "id": "s", "link": [{"other": RETIRED, "type": "replaces"}]}
    mapped = {"resourceType": "Patient", "id": "s", "gender": "female"}
    assert merge_patient(mapped, stored) == {**mapped, "link": [{"other": RETIRED, "type": "replaces"}]}
    again = {**mapped, "link": [{"other": RETIRED, "type": "replaces"}]}
    assert merge_patient(again, stored) is again  # the link is there once


def test_a_retired_record_keeps_its_demographics() -> None:
    stored = {
        "resourceType": "Patient",
        "id": "r",
        "meta": {"versionId": "3", "lastUpdated": "2024-03-12T09:30:00Z"},
        "identifier": [{"system": "https://fhir.rj1.nhs.uk/Id/mrn", "value": "R1", "use": "usual"}],
        "active": True,
        "name": [{"family": "Hughes", "given": ["Eleanor"]}],
        "birthDate": "1961-04-18",
        "address": [{"postalCode": "SE11 4QT"}],
    }
    mapped = {
        "resourceType": "Patient",
        "id": "r",
        "identifier": [
            {"system": "https://fhir.rj1.nhs.uk/Id/mrn", "value": "R1"},
            {"system": "https://fhir.rj1.nhs.uk/Id/mrn", "value": "R0"},
        ],
        "active": False,
        "name": [{"family": "Hughes", "given": ["Ellie"]}],
        "link": [{"other": SURVIVOR, "type": "replaced-by"}],
    }
    merged = merge_patient(mapped, stored)
    assert merged["active"] is False and "meta" not in merged
    assert merged["name"] == stored["name"] and merged["birthDate"] == "1961-04-18"
    assert merged["address"] == stored["address"]
    assert [i["value"] for i in merged["identifier"]] == ["R1", "R0"]
    assert merged["link"] == [{"other": SURVIVOR, "type": "replaced-by"}]


def test_a_later_message_about_a_retired_record_does_not_revive_it() -> None:
    stored = {
        "resourceType": "Patient",
        "id": "r",
        "active": False,
        "link": [{"other": SURVIVOR, "type": "replaced-by"}],
    }
    mapped = {"resourceType": "Patient", "id": "r", "gender": "female"}
    merged = merge_patient(mapped, stored)
    assert merged["active"] is False and merged["link"] == stored["link"]
    assert merged["gender"] == "female"
