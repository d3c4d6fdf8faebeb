"""careweave.generate's HL7 v2 feeds (hl7v2/adt.hl7, oru.hl7) parse and map with zero errors, and
every mapped resource is valid FHIR R4."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from careweave.generate import GeneratorConfig, generate
from careweave.hl7v2 import parse
from careweave.hl7v2.mapping import map_message


@pytest.fixture(scope="module")
def feeds(tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[bytes]]:
    out: Path = tmp_path_factory.mktemp("hl7v2-population")
    generate(GeneratorConfig(patients=150, organisations=5, seed=5, difficulty="hard"), out)
    return {
        kind: [m for m in (out / "hl7v2" / f"{kind}.hl7").read_bytes().split(b"\n") if m]
        for kind in ("adt", "oru")
    }


@pytest.mark.parametrize("kind", ["adt", "oru"])
def test_generated_messages_map_to_valid_resources(feeds, kind, options, validator):
    messages = feeds[kind]
    assert messages
    events: Counter[str] = Counter()
    for raw in messages:
        message = parse(raw)
        events[message.trigger_event] += 1
        for entry in map_message(message, options)["entry"]:
            errors = [i for i in validator.validate(entry["resource"]) if i.is_error]
            assert errors == [], (message.control_id, entry["resource"]["resourceType"], errors)
    if kind == "oru":
        assert set(events) == {"R01"}
    else:
        assert {"A01", "A03", "A04", "A31"} <= set(events)


def test_generated_merges_retire_a_known_record(feeds, options):
    seen: set[str] = set()
    retired: set[str] = set()
    for raw in feeds["adt"]:
        bundle = map_message(parse(raw), options)
        for entry in bundle["entry"]:
            resource = entry["resource"]
            if resource["resourceType"] == "Patient":
                if resource["active"]:
                    seen.add(resource["id"])
                else:
                    retired.add(resource["id"])
    assert retired <= seen  # an A40 retires a record an earlier message created
