"""What the mapping refuses, with the table 0357 code and location the ACK will carry."""

from __future__ import annotations

import re

import pytest

from careweave.errors import Category
from careweave.hl7v2 import Hl7v2Error, parse
from careweave.hl7v2.mapping import map_message
from tests.hl7v2.conftest import CORPUS


def _text(name: str) -> str:
    return (CORPUS / name).read_text(encoding="utf-8")


CASES = [
    (
        "adt_a04.hl7",
        (re.escape("|ADT^A04^ADT_A01|"), "|ADT^A99|"),
        "201",
        Category.UNSUPPORTED_MEDIA,
        "MSH-9.2",
    ),
    (
        "adt_a04.hl7",
        (re.escape("|ADT^A04^ADT_A01|"), "|QBP^Q22|"),
        "200",
        Category.UNSUPPORTED_MEDIA,
        "MSH-9.1",
    ),
    ("adt_a04.hl7", (re.escape("|ADT^A04^ADT_A01|"), "||"), "101", Category.UNSUPPORTED_MEDIA, "MSH-9"),
    ("adt_a04.hl7", (re.escape("|RJ1-A04-0001|"), "||"), "101", Category.UNSUPPORTED_MEDIA, "MSH-10"),
    ("adt_a04.hl7", (re.escape("|P|2.5.1|"), "|X|2.5.1|"), "202", Category.UNSUPPORTED_MEDIA, "MSH-11"),
    ("adt_a04.hl7", (re.escape("|P|2.5.1|"), "|P|3.0|"), "203", Category.UNSUPPORTED_MEDIA, "MSH-12"),
    ("adt_a04.hl7", (re.escape("|PAS|RJ1|"), "|PAS||"), "101", Category.INVALID, "MSH-4"),
    (
        "adt_a04.hl7",
        (re.escape("RJ10012345^^^RJ1^MR~9990000018^^^NHS^NH"), ""),
        "101",
        Category.INVALID,
        "PID-3",
    ),
    ("adt_a04.hl7", (re.escape("|19610417|"), "|19610231|"), "102", Category.INVALID, "PID-7.1"),
    (
        "adt_a04.hl7",
        (re.escape("|20240312093000||ADT"), "|yesterday||ADT"),
        "102",
        Category.INVALID,
        "MSH-7.1",
    ),
    ("adt_a03.hl7", (r"PV1\|[^\r]*", "PV1|1|I"), "101", Category.INVALID, "PV1-19"),
    ("adt_a40.hl7", (re.escape("MRG|RJ10099999^^^RJ1^MR"), "MRG|"), "101", Category.INVALID, "MRG-1"),
    ("oru_r01.hl7", (r"PLC-7788\^RJ1\|FIL-5566\^RJ1", "|", 2), "101", Category.INVALID, "OBR-3"),
    (
        "oru_r01.hl7",
        (re.escape("OBX|4|CWE|882-1^ABO and Rh group^LN"), "OBX|4|CWE|"),
        "101",
        Category.INVALID,
        "OBX[4]-3",
    ),
    ("mdm_t02.hl7", (re.escape("DOC-4455^RJ1"), ""), "101", Category.INVALID, "TXA-12"),
    (
        "siu_s12.hl7",
        (r"\^\^\^20240402140000\^20240402143000|AIS\|[^\r]*", "", 2),
        "101",
        Category.INVALID,
        "SCH-11",
    ),
    (
        "vxu_v04.hl7",
        (re.escape("|20240301103000|20240301103000|"), "||20240301103000|"),
        "101",
        Category.INVALID,
        "RXA-3",
    ),
]


@pytest.mark.parametrize(("name", "change", "code", "category", "where"), CASES)
def test_mapping_errors(name, change, code, category, where, options):
    text = _text(name)
    pattern, replacement, count = (*change, 1)[:3]
    changed, made = re.subn(pattern, replacement, text, count=count)
    assert made == count
    with pytest.raises(Hl7v2Error) as info:
        map_message(parse(changed), options)
    assert (info.value.code, info.value.category, str(info.value.location)) == (code, category, where)


def test_missing_pid_is_reported():
    message = parse("MSH|^~\\&|PAS|RJ1|||20240312093000||ADT^A04^ADT_A01|1|P|2.5.1\rEVN|A04\r")
    with pytest.raises(Hl7v2Error) as info:
        from zoneinfo import ZoneInfo

        from careweave.hl7v2.mapping import MapOptions

        map_message(message, MapOptions(ZoneInfo("Europe/London")))
    assert info.value.code == "101" and str(info.value.location) == "PID"
