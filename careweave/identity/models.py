"""The match model the service uses: the packaged default, or one estimated on a deployment's data.

Rules:
1. ``default_model.json.gz`` (beside this module) is a :class:`~careweave.mpi.MatchModel` estimated
   by EM on a generated population (:func:`estimate_default` records exactly how: generator
   configuration, seed, record count). Its names are synthetic; it holds no real person's data.
2. Thresholds are settings (``mpi_certain_threshold``, ``mpi_possible_threshold``); applying them
   gives a model with a new version (:meth:`MatchModel.with_thresholds`), and that version is
   stored with every link and review item, so a link names the parameters *and* thresholds that
   made it.
3. :func:`estimate_on` re-estimates on any Patients (a deployment's own, e.g. from its stored
   records); the result is written as JSON and selected with the ``mpi_model`` setting.
"""

from __future__ import annotations

import gzip
from collections.abc import Iterable
from dataclasses import replace
from pathlib import Path
from types import MappingProxyType
from typing import Any

import orjson

from careweave.mpi import MatchModel, NicknameIndex, Thresholds, estimate, normalise

__all__ = ["DEFAULT_MODEL", "estimate_default", "estimate_on", "load_model", "write_model"]

DEFAULT_MODEL = Path(__file__).with_name("default_model.json.gz")

# How the packaged default was made (rule 1): `careweave mpi estimate --generated` runs this.
DEFAULT_POPULATION: dict[str, Any] = {
    "patients": 30000,
    "organisations": 24,
    "seed": 2026,
    "difficulty": "hard",
    "resources_per_patient": 20,
}


def load_model(path: Path | None, thresholds: Thresholds | None = None) -> MatchModel:
    """The model at ``path`` (None: the packaged default), with ``thresholds`` applied (rule 2)."""
    raw = (path or DEFAULT_MODEL).read_bytes()
    model = MatchModel.from_json(orjson.loads(gzip.decompress(raw) if raw[:2] == b"\x1f\x8b" else raw))
    if thresholds is not None and thresholds != model.thresholds:
        model = model.with_thresholds(thresholds)
    return model


def estimate_on(patients: Iterable[dict[str, Any]], notes: dict[str, Any], seed: int = 0) -> MatchModel:
    """A model estimated by EM on these Patient resources (rule 3); ``notes`` go into
    ``training`` beside the estimator's own."""
    nicknames = NicknameIndex.from_table()
    records = [normalise(p, nicknames) for p in patients if isinstance(p.get("id"), str)]
    model = estimate(records, seed=seed)
    return replace(model, training=MappingProxyType({**dict(model.training), **notes}))


def estimate_default(work_dir: Path) -> MatchModel:
    """Regenerate the packaged default (rule 1): generate the population, estimate on it."""
    from careweave.generate import GeneratorConfig, generate
    from careweave.mpi.dataset import read_patients

    config = GeneratorConfig(formats=frozenset({"ndjson"}), **DEFAULT_POPULATION)
    if not (work_dir / "summary.json").exists():
        generate(config, work_dir)
    return estimate_on(
        read_patients(work_dir),
        {
            "population": f"careweave.generate {DEFAULT_POPULATION}",
            "estimated_by": "careweave.identity.models",
        },
    )


def write_model(model: MatchModel, path: Path) -> None:
    """Write a model as JSON (gzip-compressed when ``path`` ends in .gz)."""
    body = orjson.dumps(model.to_json(), option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS)
    path.write_bytes(gzip.compress(body, mtime=0) if path.suffix == ".gz" else body)
