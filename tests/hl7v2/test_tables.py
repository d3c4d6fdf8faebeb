"""The v2 tables of careweave.hl7v2.tables agree with the packaged FHIR definitions
(http://hl7.org/fhir/R4/conceptmaps.html: the v2 maps; terminology.hl7.org v2 tables)."""

from __future__ import annotations

import pytest

from careweave.fhir import definitions
from careweave.hl7v2 import tables


def _concept_map(url: str) -> dict[str, set[str]]:
    found = next(c for c in definitions.resources_of("conceptmaps") if c["url"] == url)
    inverse: dict[str, set[str]] = {}
    for group in found["group"]:
        for element in group["element"]:
            for target in element.get("target", ()):
                inverse.setdefault(target["code"], set()).add(element["code"])
    return inverse


@pytest.mark.parametrize(
    ("url", "table"),
    [
        ("http://hl7.org/fhir/ConceptMap/cm-administrative-gender-v2", tables.ADMINISTRATIVE_SEX),
        ("http://hl7.org/fhir/ConceptMap/cm-name-use-v2", tables.NAME_USE),
        ("http://hl7.org/fhir/ConceptMap/cm-address-use-v2", tables.ADDRESS_USE),
        ("http://hl7.org/fhir/ConceptMap/cm-contact-point-use-v2", tables.TELECOM_USE),
        ("http://hl7.org/fhir/ConceptMap/cm-contact-point-system-v2", tables.TELECOM_EQUIPMENT),
    ],
)
def test_tables_agree_with_the_packaged_concept_maps(url, table):
    inverse = _concept_map(url)
    for v2_code, fhir_codes in inverse.items():
        if v2_code in table:
            assert table[v2_code] in fhir_codes, v2_code
    covered = [code for code in inverse if code in table]
    assert len(covered) >= len(inverse) - 1  # at most one v2 code mapped two ways (Internet)


def _code_system(number: str) -> set[str]:
    for resource in definitions.resources_of("v2-tables"):
        if resource.get("resourceType") == "CodeSystem" and resource["url"].endswith(f"/v2-{number}"):
            return {c["code"] for c in resource.get("concept", ())}
    raise KeyError(number)


@pytest.mark.parametrize(
    ("number", "table"),
    [
        ("0001", tables.ADMINISTRATIVE_SEX),
        ("0004", tables.PATIENT_CLASS),
        ("0085", tables.OBSERVATION_STATUS),
        ("0123", tables.RESULT_STATUS),
        ("0119", tables.ORDER_CONTROL_STATUS),
        ("0038", tables.ORDER_STATUS),
        ("0322", tables.IMMUNIZATION_COMPLETION),
        ("0271", tables.DOCUMENT_COMPLETION),
        ("0273", tables.DOCUMENT_AVAILABILITY),
        ("0078", tables.ABNORMAL_FLAG),
        ("0278", tables.FILLER_STATUS),
        ("0003", tables.ENCOUNTER_EVENT_STATUS),
        ("0002", tables.MARITAL_STATUS),
    ],
)
def test_table_keys_are_codes_of_their_v2_table(number, table):
    assert set(table) <= _code_system(number)


@pytest.mark.parametrize(
    ("table", "value_set"),
    [
        (tables.OBSERVATION_STATUS, "observation-status"),
        (tables.RESULT_STATUS, "diagnostic-report-status"),
        (tables.ENCOUNTER_EVENT_STATUS, "encounter-status"),
        (tables.ORDER_STATUS, "request-status"),
        (tables.ORDER_CONTROL_STATUS, "request-status"),
        (tables.PRIORITY, "request-priority"),
        (tables.APPOINTMENT_EVENT_STATUS, "appointmentstatus"),
        (tables.FILLER_STATUS, "appointmentstatus"),
        (tables.DOCUMENT_COMPLETION, "composition-status"),
        (tables.DOCUMENT_AVAILABILITY, "document-reference-status"),
        (tables.IMMUNIZATION_COMPLETION, "event-status"),
        (tables.ADMINISTRATIVE_SEX, "administrative-gender"),
    ],
)
def test_targets_are_codes_of_the_required_fhir_code_systems(table, value_set):
    bundle = definitions.resources_of("valuesets") + definitions.resources_of("v3-codesystems")
    system = next(
        r
        for r in bundle
        if r.get("resourceType") == "CodeSystem" and r["url"] == f"http://hl7.org/fhir/{value_set}"
    )

    def codes(concepts):
        for c in concepts:
            yield c["code"]
            yield from codes(c.get("concept", ()))

    assert set(table.values()) <= set(codes(system["concept"]))


def test_event_structures_cover_every_mapped_structure():
    from careweave.hl7v2.mapping import MAPPERS

    assert set(tables.EVENT_STRUCTURE.values()) <= set(MAPPERS)
