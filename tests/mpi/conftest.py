"""Fixtures for the MPI tests: one generated hard population, its records, model and report,
each built once per session."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from careweave.generate import GeneratorConfig, generate
from careweave.mpi import MatchModel, PatientRecord, Report, estimate, evaluate, normalise
from careweave.mpi.dataset import Truth, read_patients, read_truth
from tests.mpi.builders import NICKNAMES

HARD = GeneratorConfig(
    patients=2000,
    organisations=12,
    seed=5,
    difficulty="hard",
    formats=frozenset({"ndjson"}),
    resources_per_patient=20,
)


@dataclass(frozen=True)
class Population:
    out: Path
    records: list[PatientRecord]
    truth: dict[str, Truth]

    def person(self, record: PatientRecord) -> str:
        return self.truth[record.id].person_id


@pytest.fixture(scope="session")
def hard(tmp_path_factory: pytest.TempPathFactory) -> Population:
    out = tmp_path_factory.mktemp("mpi-hard")
    generate(HARD, out)
    return Population(out, [normalise(p, NICKNAMES) for p in read_patients(out)], read_truth(out))


@pytest.fixture(scope="session")
def hard_model(hard: Population) -> MatchModel:
    return estimate(hard.records, seed=0)


@pytest.fixture(scope="session")
def hard_report(hard: Population) -> Report:
    return evaluate(hard.out)
