"""Reading a generated population for evaluation: Patient resources and the ground truth.

Rules:
1. A generated directory (see :mod:`careweave.generate`) holds ``ndjson/Patient.ndjson``, one
   Patient per line, ``ground_truth.csv``, one row per Patient (``person_id`` says which real
   person it is), and ``summary.json`` (whose ``config.as_of`` is the generator's "today").
2. Patients are streamed, never all held as JSON, so a million-record population fits in memory
   as normalised records.
3. Only the truth columns the evaluation needs are kept (:class:`Truth`).
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import orjson

__all__ = ["Truth", "read_as_of", "read_patients", "read_truth"]


@dataclass(frozen=True, slots=True)
class Truth:
    """What the generator knows about one Patient record (rule 3)."""

    patient_id: str
    person_id: str
    sex: str
    birth_date: date
    twin: int | None
    discrepancies: tuple[str, ...]


def read_patients(out_dir: Path) -> Iterator[dict[str, Any]]:
    """The Patient resources of a generated directory, one at a time (rule 2)."""
    with (Path(out_dir) / "ndjson" / "Patient.ndjson").open("rb") as lines:
        for line in lines:
            if line.strip():
                yield orjson.loads(line)


def read_truth(out_dir: Path) -> dict[str, Truth]:
    """Patient id -> :class:`Truth`, from ``ground_truth.csv``."""
    out: dict[str, Truth] = {}
    with (Path(out_dir) / "ground_truth.csv").open(encoding="utf-8", newline="") as f:
        for row in csv.DictReader(f):
            out[row["patient_id"]] = Truth(
                patient_id=row["patient_id"],
                person_id=row["person_id"],
                sex=row["sex"],
                birth_date=date.fromisoformat(row["birth_date"]),
                twin=int(row["twin"]) if row["twin"] else None,
                discrepancies=tuple(filter(None, row["discrepancies"].split(";"))),
            )
    return out


def read_as_of(out_dir: Path) -> date:
    """The generator's "today" from ``summary.json``. Raises OSError or KeyError if absent."""
    summary = orjson.loads((Path(out_dir) / "summary.json").read_bytes())
    return date.fromisoformat(summary["config"]["as_of"])
