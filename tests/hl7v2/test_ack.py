"""Acknowledgements (HL7 v2.5.1 chapter 2.9 original and enhanced mode, 2.14.1 MSA, 2.14.5 ERR;
v2.3 chapter 2.16 ERR-1)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

from careweave.errors import CATALOGUE, Category, Issue, error
from careweave.fhir import definitions
from careweave.hl7v2 import ACCEPTED, ACK_CODES, Hl7v2Error, Location, Outcome, parse
from careweave.hl7v2.ack import ERROR_TEXT, AckError, ack_wanted, build_ack, is_enhanced, outcome_of

NOW = datetime(2024, 3, 12, 9, 30, 5, tzinfo=UTC)


def _msg(version: str = "2.5.1", accept: str = "", application: str = "", sep: str = "|") -> bytes:
    fields = [
        "MSH",
        "^~\\&",
        "PAS",
        "RJ1",
        "CW",
        "CWF",
        "20240312093000",
        "",
        "ADT^A01^ADT_A01",
        "MSG-1",
        "P",
        version,
        "",
        "",
        accept,
        application,
        "GBR",
        "UNICODE UTF-8",
    ]
    return (sep.join(fields) + "\rPID|1||1^^^RJ1^MR\r").encode()


def _ack(source, outcome, **kw) -> list[list[str]]:
    text = build_ack(source, outcome, timestamp=NOW, control_id="ACK-1", **kw).decode()
    assert text.endswith("\r")
    return [s.split("|") for s in text[:-1].split("\r")]


def test_every_category_has_an_ack_code():
    assert set(ACK_CODES) == {None, *Category}
    assert {a for a, _ in ACK_CODES.values()} == {"AA", "AE", "AR"}
    assert {c for _, c in ACK_CODES.values()} == {"CA", "CE", "CR"}


def test_error_texts_are_table_0357():
    table = next(
        r
        for r in definitions.resources_of("v2-tables")
        if r["resourceType"] == "CodeSystem" and r["url"].endswith("/v2-0357")
    )
    assert {c["code"]: c["display"] for c in table["concept"]} == ERROR_TEXT


def test_aa_swaps_sender_and_receiver():
    msh, msa = _ack(_msg(), ACCEPTED)
    assert msh[:12] == [
        "MSH",
        "^~\\&",
        "CW",
        "CWF",
        "PAS",
        "RJ1",
        "20240312093005+0000",
        "",
        "ACK^A01^ACK",
        "ACK-1",
        "P",
        "2.5.1",
    ]
    assert msh[-1] == "UNICODE UTF-8"
    assert msa == ["MSA", "AA", "MSG-1"]


@pytest.mark.parametrize(
    ("exc", "code", "err3"),
    [
        (Hl7v2Error("no visit", "101", location=Location("PV1", 1, 19)), "AE", "101"),
        (Hl7v2Error("v9", "203", Category.UNSUPPORTED_MEDIA, Location("MSH", field=12)), "AR", "203"),
        (error("CW-3001", "Patient.birthDate is not a date"), "AE", "207"),
        (error("CW-9001"), "AR", "207"),
        (RuntimeError("secret detail"), "AR", "207"),
    ],
)
def test_errors_become_ae_or_ar_with_err_segments(exc, code, err3):
    segments = _ack(_msg(), outcome_of(exc))
    assert segments[1][:3] == ["MSA", code, "MSG-1"]
    err = segments[2]
    assert err[0] == "ERR" and err[3].split("^") == [err3, ERROR_TEXT[err3], "HL70357"]
    assert err[4] == "E"
    assert "secret" not in err[8]


def test_err_location_and_user_message():
    outcome = Outcome(Category.INVALID, (AckError("PV1-19 | missing", "101", "E", Location("PV1", 1, 19)),))
    err = _ack(_msg(), outcome)[2]
    assert err[2] == "PV1^1^19^1" and err[8] == "PV1-19 \\F\\ missing"


def test_issues_of_a_careweave_error_each_become_an_err():
    issues = (Issue("error", "required", "a"), Issue("warning", "code-invalid", "b"))
    exc = error("CW-3001")
    exc.issues = issues
    errs = [s for s in _ack(_msg(), outcome_of(exc)) if s[0] == "ERR"]
    assert [(e[3].split("^")[0], e[4]) for e in errs] == [("101", "E"), ("103", "W")]


@pytest.mark.parametrize("version", ["2.2", "2.3", "2.3.1", "2.4"])
def test_older_versions_get_the_v23_style(version):
    outcome = outcome_of(Hl7v2Error("no id", "101", location=Location("PID", 1, 3)))
    msh, msa, err = _ack(_msg(version), outcome)
    assert msh[8] == ("ACK^A01^ACK" if version in ("2.3.1", "2.4") else "ACK^A01")
    assert msa[:4] == ["MSA", "AE", "MSG-1", "no id"]
    assert msa[6].split("^")[0] == "101"
    assert err[1] == "PID^1^3^101&Required field missing&HL70357"


def test_custom_delimiters_are_kept():
    text = build_ack(
        _msg(sep="#").replace(b"^~\\&", b"!~\\&").replace(b"ADT^A01^ADT_A01", b"ADT!A01!ADT_A01"),
        ACCEPTED,
        timestamp=NOW,
        control_id="1",
    )
    assert text.startswith(b"MSH#!~\\&#CW#CWF#PAS#RJ1#") and b"ACK!A01!ACK" in text


@pytest.mark.parametrize(
    ("raw", "control_id"),
    [
        (b"\x00\x01garbage", ""),
        (b"MSH|^~\\&|A|B|C|D|2024||ADT^A01|77|P|2.4\rP!D|", "77"),
        ("MSH|^~\\&|A|B|C|D|2024||ADT^A01|78|P|\u00b2.5\rP!D|".encode(), "78"),  # found by atheris
    ],
)
def test_broken_messages_still_get_an_ar(raw, control_id):
    try:
        parse(raw)
    except Hl7v2Error as exc:
        outcome = outcome_of(exc)
    segments = _ack(raw, Outcome(Category.UNSUPPORTED_MEDIA, outcome.errors))
    assert segments[1][1] == "AR"
    assert (segments[1][2] if len(segments[1]) > 2 else "") == control_id
    assert parse(build_ack(raw, outcome, timestamp=NOW, control_id="1")).segment("MSA") is not None


@pytest.mark.parametrize(
    ("accept", "application", "ok", "commit_wanted", "app_wanted"),
    [
        ("", "", True, False, True),  # original mode: one ACK
        ("AL", "NE", True, True, False),
        ("AL", "AL", False, True, True),
        ("ER", "SU", True, False, True),
        ("ER", "SU", False, True, False),
        ("NE", "ER", False, False, True),
        ("", "AL", True, True, True),  # enhanced; empty MSH-15 counts as AL
    ],
)
def test_enhanced_mode_conditions(accept, application, ok, commit_wanted, app_wanted):
    message = parse(_msg(accept=accept, application=application))
    outcome = ACCEPTED if ok else outcome_of(Hl7v2Error("x"))
    assert is_enhanced(message) is bool(accept or application)
    assert ack_wanted(message, outcome, commit=True) is commit_wanted
    assert ack_wanted(message, outcome, commit=False) is app_wanted


@pytest.mark.parametrize(
    ("category", "commit_code"),
    [(None, "CA"), (Category.INVALID, "CE"), (Category.UNSUPPORTED_MEDIA, "CR"), (Category.BUSY, "CE")],
)
def test_commit_acks(category, commit_code):
    outcome = Outcome(category, () if category is None else (AckError("x"),))
    assert _ack(_msg(accept="AL", application="AL"), outcome, commit=True)[1][1] == commit_code


def test_catalogue_is_not_needed_for_v2_errors():
    assert all(code.startswith("CW-") for code in CATALOGUE)


def test_an_msh18_with_separators_inside_is_not_echoed() -> None:
    """Found by the fuzz test: ``UNICODE&UTF-8`` reads as UNICODE (its first sub-component) but
    was echoed whole, and the ACK could not be read back."""
    from datetime import datetime

    from careweave.hl7v2 import ACCEPTED, build_ack, parse

    source = b"MSH|^~\\&|PAS|RJ1|CW|CW|20240101||ADT^A01^ADT_A01|1|P|2.5.1|||||GBR|UNICODE&UTF-8\rEVN|A01\r"
    ack = build_ack(source, ACCEPTED, timestamp=datetime(2024, 1, 1), control_id="1")
    assert parse(ack).msh.raw(18) == ""


@pytest.mark.parametrize(
    ("when", "written"),
    [
        (datetime(2024, 3, 12, 9, 30, 5), "20240312093005"),
        (datetime(2024, 3, 12, 9, 30, 5, tzinfo=UTC), "20240312093005+0000"),
        (datetime(2024, 7, 1, 23, 5, 0, tzinfo=ZoneInfo("Europe/London")), "20240701230500+0100"),
        (
            datetime(2024, 3, 12, 9, 30, 5, tzinfo=timezone(-timedelta(hours=5, minutes=30))),
            "20240312093005-0530",
        ),
        (
            datetime(2024, 3, 12, 9, 30, 5, tzinfo=timezone(timedelta(hours=5, minutes=45))),
            "20240312093005+0545",
        ),
    ],
)
def test_the_ack_timestamp_is_msh7_with_the_offset_of_the_clock(when: datetime, written: str) -> None:
    msh = build_ack(_msg(), ACCEPTED, timestamp=when, control_id="1").decode().split("\r")[0]
    assert msh.split("|")[6] == written
