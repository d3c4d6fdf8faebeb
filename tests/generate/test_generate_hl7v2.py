"""The HL7 v2 files: well-formed ER7 messages about the same registrations as the FHIR output.

Spec: HL7 v2.4 chapter 2 (MSH, message delimiters), chapter 3 (ADT events, PID, PV1, MRG),
chapter 7 (ORU^R01, OBR, OBX).
"""

from __future__ import annotations

import re
from collections import Counter

import pytest

from careweave.generate import Discrepancy
from careweave.generate.hl7v2 import escape

SEGMENT_ID = re.compile(r"[A-Z][A-Z0-9]{2}\Z")
ADT_TYPES = {
    "ADT^A01^ADT_A01",
    "ADT^A03^ADT_A03",
    "ADT^A04^ADT_A01",
    "ADT^A08^ADT_A01",
    "ADT^A31^ADT_A05",
    "ADT^A40^ADT_A39",
}
TS = re.compile(r"\d{14}[+-]\d{4}\Z")


def _segments(message: str) -> list[list[str]]:
    assert message.endswith("\r") and "\n" not in message
    return [segment.split("|") for segment in message[:-1].split("\r")]


@pytest.mark.parametrize("kind", ["adt", "oru"])
def test_messages_are_well_formed(hard_run, kind):
    messages = hard_run.messages(kind)
    assert len(messages) == hard_run.summary.hl7_messages[kind] > 0
    codes = {row["organisation"] for row in hard_run.truth()}
    control_ids = Counter()
    for message in messages:
        segments = _segments(message)
        msh = segments[0]
        assert msh[0] == "MSH" and msh[1] == "^~\\&"
        assert msh[3] in codes  # MSH-4, the sending facility, is an ODS code
        assert TS.match(msh[6])  # MSH-7
        assert msh[8] in (ADT_TYPES if kind == "adt" else {"ORU^R01^ORU_R01"})  # MSH-9
        assert msh[10:12] == ["P", "2.4"]
        control_ids[msh[9]] += 1
        assert all(SEGMENT_ID.match(s[0]) for s in segments)
        assert [s[0] for s in segments].count("PID") == 1
    assert max(control_ids.values()) == 1


def _pid3(message: str) -> list[list[str]]:
    pid = next(s for s in _segments(message) if s[0] == "PID")
    return [rep.split("^") for rep in pid[3].split("~")]


def test_pid3_carries_nhs_number_and_mrn_of_a_known_registration(hard_run):
    truth = {(r["organisation"], r["mrn"]): r for r in hard_run.truth()}
    for message in hard_run.messages("adt") + hard_run.messages("oru"):
        ids = _pid3(message)
        facility = _segments(message)[0][3]
        mrn = [i for i in ids if i[4] == "MR"]
        assert len(mrn) == 1 and mrn[0][3] == facility
        row = truth[(facility, mrn[0][0])]
        nhs = [i for i in ids if i[4] == "NH"]
        if row["recorded_nhs_number"]:
            assert nhs == [[row["recorded_nhs_number"], "", "", "NHS", "NH"]]
        else:
            assert nhs == []


def test_one_oru_per_diagnostic_report_with_its_results(hard_run):
    reports = list(hard_run.resources("DiagnosticReport"))
    messages = hard_run.messages("oru")
    assert len(messages) == len(reports)
    obx = sum(1 for m in messages for s in _segments(m) if s[0] == "OBX")
    assert obx == sum(len(r["result"]) for r in reports)
    for message in messages:
        for segment in _segments(message):
            if segment[0] == "OBX":
                assert segment[2] == "NM" and float(segment[5]) > 0
                assert segment[3].endswith("^LN") and segment[11] == "F"


def test_trust_visits_and_gp_registrations_have_their_adt_events(hard_run):
    events = Counter(_segments(m)[0][8].split("^")[1] for m in hard_run.messages("adt"))
    trusts = {
        f"Organization/{o['id']}"
        for o in hard_run.resources("Organization")
        if o["type"][0]["text"] == "NHS Trust"
    }
    classes = Counter(
        e["class"]["code"]
        for e in hard_run.resources("Encounter")
        if e["serviceProvider"]["reference"] in trusts
    )
    assert events["A01"] == events["A03"] == classes["IMP"] > 0
    assert events["A04"] == classes["EMER"] + classes["AMB"] > 0
    rows = hard_run.truth()
    assert events["A31"] == sum(1 for r in rows if r["organisation_type"] == "gp-practice")
    assert 0 < events["A08"] < events["A04"]


def test_a40_merges_name_the_duplicate_mrn(hard_run):
    merged = {
        (r["organisation"], r["mrn"])
        for r in hard_run.truth()
        if Discrepancy.MERGED.value in r["discrepancies"]
    }
    retired = set()
    for message in hard_run.messages("adt"):
        segments = _segments(message)
        if segments[0][8].startswith("ADT^A40"):
            mrg = next(s for s in segments if s[0] == "MRG")
            value, _, _, authority, kind = mrg[1].split("^")
            assert kind == "MR" and authority == segments[0][3]
            retired.add((authority, value))
    assert retired == merged and merged


@pytest.mark.parametrize(
    ("raw", "escaped"),
    [
        ("O'Brien", "O'Brien"),
        ("Smith|Jones", "Smith\\F\\Jones"),
        ("A^B&C~D\\E", "A\\S\\B\\T\\C\\R\\D\\E\\E"),
        ("line\rbreak", "line\\X0D\\break"),
    ],
)
def test_escape(raw, escaped):
    assert escape(raw) == escaped
