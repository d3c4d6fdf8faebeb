"""Parsing and encoding ER7 (HL7 v2.5.1 chapter 2: message construction rules, MSH-1/2/18)."""

from __future__ import annotations

import pytest

from careweave.errors import Category
from careweave.hl7v2 import Hl7v2Error, Syntax, parse, read_header
from tests.hl7v2.conftest import CORPUS, corpus_files

MSH = "MSH|^~\\&|PAS|RJ1|CW|CW|20240312093000||ADT^A01^ADT_A01|42|P|2.5.1"
PID = "PID|1||123^^^RJ1^MR~9990000018^^^NHS^NH||Hughes&Van&Dyke^Eleanor^Mary||19610417|F"


@pytest.mark.parametrize(
    "data",
    [
        f"{MSH}\r{PID}\r",
        f"{MSH}\n{PID}\n",
        f"{MSH}\r\n{PID}\r\n",
        f"{MSH}\r{PID}",
        f"\ufeff{MSH}\r{PID}\r",
        f"\r\n  {MSH}\r\r\n{PID}\r\n\r\n",
        (f"{MSH}\r{PID}\r").encode(),
        b"\xef\xbb\xbf" + (f"{MSH}\r{PID}\r").encode(),
    ],
    ids=["cr", "lf", "crlf", "no-final-terminator", "bom-text", "blank-lines", "bytes", "bom-bytes"],
)
def test_segment_endings_and_bom(data):
    message = parse(data)
    assert [s.name for s in message.segments] == ["MSH", "PID"]
    pid = message.segment("PID")
    assert pid.get(3, 1, repetition=2) == "9990000018"
    assert pid.get(5, 1, 2) == "Van"
    assert message.control_id == "42" and message.structure == "ADT_A01"


def test_accessors_are_one_based_and_never_raise():
    pid = parse(f"{MSH}\r{PID}\r").segment("PID")
    assert pid.get(3) == "123"
    assert pid.get(3, 4) == "RJ1"
    assert pid.get(3, 4, repetition=2) == "NHS"
    assert pid.get(3, repetition=3) == ""
    assert pid.get(99) == pid.get(0) == pid.get(3, 99) == pid.get(5, 1, 9) == ""
    assert [r.get(5) for r in pid.repetitions(3)] == ["MR", "NH"]
    assert pid.first(99).get(1) == "" and not pid.first(99)
    assert pid.raw(3) == "123^^^RJ1^MR~9990000018^^^NHS^NH"


def test_msh_fields_are_numbered_as_the_standard_numbers_them():
    msh = parse(f"{MSH}\r").msh
    assert msh.get(1) == "|" and msh.get(2) == "^~\\&"
    assert msh.get(3) == "PAS" and msh.get(9, 2) == "A01" and msh.get(12) == "2.5.1"


def test_explicit_null_reads_as_empty():
    pid = parse(f'{MSH}\rPID|1||""||""^Eleanor\r').segment("PID")
    assert pid.get(3) == "" and pid.get(5, 1) == "" and pid.get(5, 2) == "Eleanor"
    assert pid.repetitions(3) == ()


def test_custom_delimiters_and_truncation_character():
    text = "MSH#!%$*@#LIMS#RJ1####ORU!R01#7#P#2.7\rOBX#1#ST#X!Y##a$F$b!c%d*e"
    message = parse(text)
    assert message.syntax == Syntax("#", "!", "%", "$", "*", "@", "utf-8")
    obx = message.segment("OBX")
    assert obx.get(5) == "a#b" and obx.get(5, 2) == "c" and obx.get(5, repetition=2) == "d"
    assert obx.get(5, 1, 2, repetition=2) == "e"


def test_z_segments_are_kept():
    message = parse(f"{MSH}\r{PID}\rZPI|1|custom^value\r")
    assert message.segment("ZPI").get(2, 2) == "value"


@pytest.mark.parametrize(
    ("declared", "raw", "expected"),
    [
        ("UNICODE UTF-8", "Núñez".encode(), "Núñez"),
        ("8859/1", "Núñez".encode("latin-1"), "Núñez"),
        ("8859/15", "€5".encode("iso8859-15"), "€5"),
        ("ASCII", b"Smith", "Smith"),
        ("ASCII", "Zoë".encode(), "Zoë"),  # declared ASCII, sent UTF-8: read as UTF-8
        ("", "Zoë".encode("latin-1"), "Zoë"),  # undeclared, not UTF-8: read as 8859/1
        ("UNICODE UTF-8~8859/1", "Zoë".encode(), "Zoë"),
    ],
)
def test_declared_character_sets(declared, raw, expected):
    head = f"MSH|^~\\&|A|B|C|D|20240101||ADT^A28|1|P|2.5|||||GBR|{declared}\r".encode("ascii")
    message = parse(head + b"PID|1||1^^^B^MR||" + raw + b"\r")
    assert message.segment("PID").get(5) == expected


def test_utf16_is_recognised():
    text = f"{MSH}|||||GBR|UNICODE UTF-16\rPID|1||1||Zoë\r"
    assert parse(text.encode("utf-16-le")).segment("PID").get(5) == "Zoë"


def test_hex_escapes_use_the_message_character_set():
    head = "MSH|^~\\&|A|B|C|D|20240101||ADT^A28|1|P|2.5|||||GBR|8859/1\r"
    assert parse((head + "PID|1||1||Zo\\XEB\\\r").encode("latin-1")).segment("PID").get(5) == "Zoë"


@pytest.mark.parametrize(
    ("data", "code", "category", "where"),
    [
        (b"", "100", Category.UNSUPPORTED_MEDIA, "MSH"),
        (b"PID|1||1\r", "100", Category.UNSUPPORTED_MEDIA, "MSH"),
        (b"MSH", "100", Category.UNSUPPORTED_MEDIA, "MSH-1"),
        (b"MSHA^~\\&|x", "102", Category.UNSUPPORTED_MEDIA, "MSH-1"),
        (b"MSH||x", "102", Category.UNSUPPORTED_MEDIA, "MSH-2"),
        (b"MSH|^^\\&|x", "102", Category.UNSUPPORTED_MEDIA, "MSH-2"),
        (b"MSH|^~\\&ab|x", "102", Category.UNSUPPORTED_MEDIA, "MSH-2"),
        (b"MSH|^~\\&|x\rpid|1\r", "100", Category.INVALID, "pid[2]"),
        (b"MSH|^~\\&|x\rPI|1\r", "100", Category.INVALID, "PI[2]"),
        (b"MSH|^~\\&|x\rMSH|^~\\&|y\r", "100", Category.INVALID, "MSH[2]"),
        (b"MSH|^~\\&" + b"|" * 16 + b"KLINGON\r", "199", Category.UNSUPPORTED_MEDIA, "MSH-18"),
        (b"MSH|^~\\&" + b"|" * 16 + b"8859/1\r", None, None, None),
        (b"MSH|^~\\&" + b"|" * 16 + b"UNICODE UTF-8\rPID|\xff\r", "102", Category.INVALID, "MSH-18"),
    ],
)
def test_unreadable_messages_raise_hl7v2_error(data, code, category, where):
    if code is None:
        assert parse(data).msh.get(18) == "8859/1"
        return
    with pytest.raises(Hl7v2Error) as info:
        parse(data)
    assert info.value.code == code
    assert info.value.category is category
    assert str(info.value.location) == where


@pytest.mark.parametrize("path", corpus_files(), ids=lambda p: p.name)
def test_round_trip_parse_encode_parse(path):
    data = path.read_bytes()
    if data.lstrip(b"\xef\xbb\xbf")[:3] in (b"FHS", b"BHS"):
        pytest.skip("a batch: see test_batch")
    first = parse(data)
    again = parse(first.to_bytes())
    assert again == first
    other = Syntax("#", "!", "%", "$", "*", charset=first.syntax.charset)
    moved = parse(first.encode(other))
    assert moved.syntax.field == "#"
    for a, b in zip(first.segments, moved.segments, strict=True):
        assert a.name == b.name
        for n in range(3, max(len(a.fields), len(b.fields))):
            assert [r.components for r in a.repetitions(n)] == [r.components for r in b.repetitions(n)]
    assert parse(moved.to_bytes(first.syntax)) == first


def test_to_bytes_uses_the_message_character_set():
    data = (CORPUS / "adt_a28_latin1_crlf.hl7").read_bytes()
    message = parse(data)
    assert message.syntax.charset == "latin-1"
    assert "Núñez".encode("latin-1") in message.to_bytes()
    assert parse(message.to_bytes()) == message


@pytest.mark.parametrize(
    ("data", "control_id"),
    [
        (f"{MSH}\rP!D|broken\r".encode(), "42"),
        (b"junk before\r" + f"{MSH}\r".encode(), "42"),
        (b"MSH|^~\\&|A|B|C|D|2024||ADT^A01|99|P|2.4|||||GBR|KLINGON\r", "99"),
        (b"no header at all", None),
        (b"MSH|", None),
    ],
)
def test_read_header_recovers_what_it_can(data, control_id):
    header = read_header(data)
    if control_id is None:
        assert header is None
    else:
        assert header is not None and header.get(10) == control_id


def test_a_field_is_split_once_and_reads_the_same_either_way():
    """``repetitions`` is remembered per segment; ``get`` reads the same values as the repetitions
    (escapes, sub-components and explicit nulls included)."""
    text = f'{MSH}\rPID|1||123^^^RJ1^MR~""~9990000018^^^NHS^NH||A\\T\\B&Van^Eleanor^""^Jr\r'
    pid = parse(text).segment("PID")
    assert pid is not None
    assert pid.repetitions(3) is pid.repetitions(3)
    first, second = pid.repetitions(3)  # the explicit null repetition is skipped
    assert (first.get(1), first.get(4), second.get(5)) == ("123", "RJ1", "NH")
    assert pid.get(3, 4) == first.get(4) and pid.get(3, 1, repetition=3) == second.get(1)
    name = pid.first(5)
    assert (pid.get(5, 1, 1), pid.get(5, 1, 2), pid.get(5, 2), pid.get(5, 3), pid.get(5, 4)) == (
        name.get(1, 1), name.get(1, 2), name.get(2), name.get(3), name.get(4),
    ) == ("A&B", "Van", "Eleanor", "", "Jr")  # fmt: skip
