"""generate(): deterministic bytes for a seed, formats that do not move data, flat memory, and
configuration checks."""

from __future__ import annotations

import hashlib
import tracemalloc
from dataclasses import replace
from pathlib import Path

import pytest

from careweave.generate import DEMO, PRESETS, DiscrepancyRates, GeneratorConfig, generate
from careweave.generate.config import EASY

SMALL = GeneratorConfig(patients=60, organisations=5, seed=3, resources_per_patient=25)


def _digest(out: Path) -> dict[str, str]:
    return {
        str(p.relative_to(out)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(out.rglob("*"))
        if p.is_file()
    }


def test_same_seed_same_bytes(tmp_path):
    first = _digest(_write(tmp_path / "a", SMALL))
    second = _digest(_write(tmp_path / "b", SMALL))
    assert first == second
    assert {"ground_truth.csv", "summary.json", "hl7v2/adt.hl7", "hl7v2/oru.hl7"} <= set(first)
    assert "ndjson/Patient.ndjson" in first and "bundles/000000.json" in first


def test_another_seed_other_data(tmp_path):
    first = _digest(_write(tmp_path / "a", SMALL))
    other = _digest(_write(tmp_path / "b", replace(SMALL, seed=4)))
    for name in ("ndjson/Patient.ndjson", "ndjson/Observation.ndjson", "ground_truth.csv"):
        assert first[name] != other[name]


def test_formats_do_not_change_the_data(tmp_path):
    everything = _digest(_write(tmp_path / "all", SMALL))
    only_ndjson = _digest(_write(tmp_path / "nd", replace(SMALL, formats=frozenset({"ndjson"}))))
    for name, digest in only_ndjson.items():
        if name != "summary.json":
            assert everything[name] == digest, name
    assert not any(name.startswith(("bundles/", "hl7v2/")) for name in only_ndjson)


def test_rerun_into_the_same_directory_leaves_no_stale_files(tmp_path):
    out = tmp_path / "out"
    _write(out, replace(SMALL, bundle_size=50))
    (out / "notes.txt").write_text("mine")
    _write(out, replace(SMALL, formats=frozenset({"ndjson"})))
    assert not list((out / "bundles").glob("*.json"))
    assert (out / "notes.txt").read_text() == "mine"


def test_progress_reports_every_household_up_to_the_total(tmp_path):
    seen: list[tuple[int, int]] = []
    summary = generate(SMALL, tmp_path, progress=lambda done, total: seen.append((done, total)))
    assert seen[-1] == (SMALL.patients, SMALL.patients) == (summary.persons, SMALL.patients)
    assert [d for d, _ in seen] == sorted(d for d, _ in seen)


def _peak(tmp_path: Path, patients: int) -> int:
    config = GeneratorConfig(patients=patients, organisations=6, seed=9, resources_per_patient=20,
                             bundle_size=200)  # fmt: skip
    tracemalloc.start()
    try:
        generate(config, tmp_path / str(patients))
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_memory_stays_flat_as_the_population_grows(tmp_path):
    small, large = _peak(tmp_path, 200), _peak(tmp_path, 600)
    assert large < small * 1.25  # three times the people, about the same memory


def test_demo_preset():
    assert PRESETS["demo"] is DEMO
    assert (DEMO.patients, DEMO.organisations) == (50, 4)


@pytest.mark.parametrize(
    "bad",
    [
        {"patients": 0},
        {"patients": 900_000},
        {"organisations": 1},
        {"difficulty": "medium"},
        {"formats": frozenset({"csv"})},
        {"resources_per_patient": 10},
        {"bundle_size": 0},
    ],
)
def test_bad_config_is_refused(bad):
    with pytest.raises(ValueError):
        GeneratorConfig(**bad)


def test_rates_are_probabilities():
    with pytest.raises(ValueError):
        replace(EASY, name_typo=1.5)
    custom = replace(EASY, name_typo=0.5)
    assert isinstance(custom, DiscrepancyRates)
    assert GeneratorConfig(rates=custom).discrepancy_rates.name_typo == 0.5
    assert GeneratorConfig(difficulty="hard").discrepancy_rates.name_typo > EASY.name_typo


def _write(out: Path, config: GeneratorConfig) -> Path:
    generate(config, out)
    return out
