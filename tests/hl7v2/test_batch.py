"""Batches (HL7 v2.5.1 chapter 2.10.3: FHS, BHS, BTS, FTS)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from careweave.hl7v2 import Hl7v2Error, is_batch, parse, split_batch
from careweave.hl7v2.batch import build_batch_ack
from tests.hl7v2.conftest import CORPUS

NOW = datetime(2024, 3, 12, 17, 0, tzinfo=UTC)


def test_a_batch_file_splits_into_its_messages():
    data = (CORPUS / "batch_adt.hl7").read_bytes()
    assert is_batch(data) and not is_batch((CORPUS / "adt_a01.hl7").read_bytes())
    batch = split_batch(data)
    assert [h.name for h in batch.headers] == ["FHS", "BHS"]
    assert [t.name for t in batch.trailers] == ["BTS", "FTS"]
    assert batch.declared_count == 2 and batch.count_matches
    events = [parse(m).trigger_event for m in batch.messages]
    assert events == ["A28", "A04"]
    assert batch.messages[0] == (CORPUS / "adt_a28.hl7").read_bytes()


def test_count_mismatch_is_reported_not_raised():
    data = b"BHS|^~\\&|A|B\rMSH|^~\\&|A|B|C|D|2024||ADT^A28|1|P|2.5\rBTS|3\r"
    batch = split_batch(data)
    assert batch.declared_count == 3 and not batch.count_matches


@pytest.mark.parametrize("data", [b"MSH|^~\\&|x\r", b"BHS|^~\\&|A\rPID|1\rBTS|0\r", b""])
def test_not_a_batch_or_stray_segments_raise(data):
    with pytest.raises(Hl7v2Error):
        split_batch(data)


def test_batch_ack_wraps_each_ack():
    batch = split_batch((CORPUS / "batch_adt.hl7").read_bytes())
    acks = [b"MSH|^~\\&|C|D|A|B|2024||ACK|1|P|2.5\rMSA|AA|1\r"] * 2
    out = build_batch_ack(batch, acks, timestamp=NOW, control_id="B1").split(b"\r")
    assert out[0].startswith(b"FHS|^~\\&|CAREWEAVE|CAREWEAVE|PAS|RJ1|20240312170000+0000")
    assert out[1].startswith(b"BHS|") and out[1].endswith(b"|B1|BATCH-1")
    assert out.count(b"MSA|AA|1") == 2
    assert out[-3:] == [b"BTS|2", b"FTS|1", b""]
