"""gateway/work.py: ``glance`` reads the header :func:`read` would, from the MSH segment alone."""

from __future__ import annotations

import pytest

from careweave.gateway.work import glance, read
from tests.gateway.conftest import CORPUS, enhanced

ODD = [
    b"MSH|^~\\&",
    b"MSH|^~\\&|",
    b"MSH|^~\\&|A\r",
    b"MSH|^~\\&|A|B\nPID|1",
    b"  \r\nMSH|^~\\&|A|B\r\nPID|1",
    b"MSH|^~\\&#|A|B|C|D|E||ADT^A01|1|P|2.5",
    b"MSH#^~\\&#A#B#C#D#E##ADT^A01#1#P#2.5\rPID#1",
    b"\xef\xbb\xbfMSH|^~\\&|A|RJ1|C|D|E||ADT^A01^ADT_A01|X\\T\\1|P|2.5|||AL|NE",
    b"MSH|^~\\&|A|\\X41\\b|C|D|E||ADT^A01|1|P|2.5||||||8859/1\rPID|1",
]
BROKEN = [b"", b"MSH", b"MSH|", b"MSHX^~\\&|a", b"not hl7", b"PID|1\rMSH|^~\\&|A", b"MSH|^~\\&|A|\xff\xfe|B"]


@pytest.mark.parametrize("raw", [p.read_bytes() for p in sorted(CORPUS.glob("*.hl7"))] + ODD + BROKEN)
def test_glance_reads_the_header_read_does(raw: bytes) -> None:
    for message in (raw, enhanced(raw) if raw.startswith(b"MSH|") and b"\r" in raw else raw):
        full, head = read(message, "s"), glance(message, "s")
        fields = (head.sender, head.facility, head.control_id, head.kind)
        assert fields == (full.sender, full.facility, full.control_id, full.kind)
        if full.failure is not None:  # read whole: the same failure and the same (no) message
            assert (repr(head.failure), head.message) == (repr(full.failure), full.message)
            assert raw in BROKEN or raw.startswith(b"FHS")
            continue
        assert head.failure is None and head.message is not None and full.message is not None
        assert head.message.msh == full.message.msh and head.message.syntax == full.message.syntax
        assert head.enhanced == full.enhanced and head.message.segments == (head.message.msh,)
        assert glance(message, "s").message == head.message  # a remembered syntax: the same
