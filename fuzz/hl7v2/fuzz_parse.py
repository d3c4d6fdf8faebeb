"""Atheris harness: no input makes the HL7 v2 parser, header reader, batch splitter, ACK builder,
mapping or MLLP framer raise anything but Hl7v2Error.

Run (atheris is optional; tests/hl7v2/test_fuzz.py is the hypothesis twin that CI runs)::

    pip install atheris
    mkdir -p /tmp/hl7v2-corpus && cp tests/data/hl7v2/*.hl7 /tmp/hl7v2-corpus/
    python fuzz/hl7v2/fuzz_parse.py /tmp/hl7v2-corpus -max_total_time=300

(libFuzzer writes new inputs into the corpus directory it is given: never point it at
tests/data.)
"""

from __future__ import annotations

import contextlib
import sys
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import atheris

with atheris.instrument_imports():
    from careweave.hl7v2 import ACCEPTED, Framer, Hl7v2Error, build_ack, parse, read_header
    from careweave.hl7v2.batch import split_batch
    from careweave.hl7v2.mapping import MapOptions, map_message

OPTIONS = MapOptions(ZoneInfo("Europe/London"))
NOW = datetime(2024, 1, 1, tzinfo=UTC)


def test_one_input(data: bytes) -> None:
    Framer(64).feed(data)
    read_header(data)
    build_ack(data, ACCEPTED, timestamp=NOW, control_id="1")
    with contextlib.suppress(Hl7v2Error):
        split_batch(data)
    try:
        message = parse(data)
        message.encode()
        map_message(message, OPTIONS)
    except Hl7v2Error:
        pass


if __name__ == "__main__":
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()
