"""Fixtures for the HL7 v2 tests: mapping options, the corpus, and the validator (built once)."""

from __future__ import annotations

from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from careweave.fhir.validation import Validator
from careweave.hl7v2.mapping import MapOptions
from careweave.system import Definitions

CORPUS = Path(__file__).resolve().parents[1] / "data" / "hl7v2"


def corpus_files() -> list[Path]:
    return sorted(CORPUS.glob("*.hl7"))


@pytest.fixture(scope="session")
def options() -> MapOptions:
    return MapOptions(timezone=ZoneInfo("Europe/London"))


@pytest.fixture(scope="session")
def validator(definitions: Definitions) -> Validator:
    return definitions.validator
