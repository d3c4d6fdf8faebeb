"""Fixtures for the generator tests: a few runs written once per session, and a validator."""

from __future__ import annotations

import csv
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import pytest

from careweave.fhir import definitions, ukcore
from careweave.fhir.elements import ElementModel
from careweave.fhir.validation import Profile, Terminology, Validator
from careweave.generate import DEMO, GeneratorConfig, Summary, generate

UKCORE_PATIENT = "https://fhir.hl7.org.uk/StructureDefinition/UKCore-Patient"


@dataclass(frozen=True)
class Run:
    config: GeneratorConfig
    out: Path
    summary: Summary

    def resources(self, kind: str | None = None) -> Iterator[dict[str, Any]]:
        files = sorted((self.out / "ndjson").glob(f"{kind or '*'}.ndjson"))
        for path in files:
            for line in path.read_bytes().splitlines():
                yield orjson.loads(line)

    def truth(self) -> list[dict[str, str]]:
        with (self.out / "ground_truth.csv").open(encoding="utf-8", newline="") as f:
            return list(csv.DictReader(f))

    def messages(self, kind: str) -> list[str]:
        text = (self.out / "hl7v2" / f"{kind}.hl7").read_bytes().decode("utf-8")
        assert text.endswith("\n")
        return text[:-1].split("\n")


def _run(tmp_path_factory: pytest.TempPathFactory, name: str, config: GeneratorConfig) -> Run:
    out = tmp_path_factory.mktemp(name)
    return Run(config, out, generate(config, out))


@pytest.fixture(scope="session")
def demo_run(tmp_path_factory: pytest.TempPathFactory) -> Run:
    return _run(tmp_path_factory, "demo", DEMO)


@pytest.fixture(scope="session")
def hard_run(tmp_path_factory: pytest.TempPathFactory) -> Run:
    config = GeneratorConfig(
        patients=1500, organisations=10, seed=11, difficulty="hard", resources_per_patient=20
    )
    return _run(tmp_path_factory, "hard", config)


@pytest.fixture(scope="session")
def validator() -> Validator:
    model = ElementModel.from_structure_definitions(
        definitions.resources_of("profiles-types") + definitions.resources_of("profiles-resources")
    )
    return Validator(model, Terminology.from_definitions(model))


@pytest.fixture(scope="session")
def ukcore_patient(validator: Validator) -> Profile:
    profile = validator.profile_library(ukcore.load_conformance()).profile(UKCORE_PATIENT)
    assert profile is not None
    return profile
