"""Streaming writers for the generator's output directory.

Rules:
1. Layout: ``ndjson/<ResourceType>.ndjson`` (one resource per line, Bulk Data style),
   ``bundles/NNNNNN.json`` (transaction Bundles; ``000000.json`` holds the organisations and
   practitioners and must be loaded first, the rest in name order), ``hl7v2/adt.hl7`` and
   ``hl7v2/oru.hl7``, ``ground_truth.csv`` and ``summary.json``.
2. Bundles use ``PUT Type/id`` for every entry, so loading them twice changes nothing (the ids
   are the generator's). A bundle closes once it holds ``bundle_size`` entries, but only between
   people, so all of one person's registrations and their references travel together.
3. Nothing is held back: each resource is written when it is made (a bundle's entries are held
   until it closes), so memory stays flat for any number of people.
4. Output files this module would write are removed from the directory first, so a smaller run
   into the same directory leaves no stale bundles or types behind. Other files are left alone.
"""

from __future__ import annotations

import csv
from collections import Counter
from contextlib import ExitStack
from pathlib import Path
from types import TracebackType
from typing import IO, Any

import orjson

__all__ = ["TRUTH_COLUMNS", "Sink"]

TRUTH_COLUMNS = (
    "patient_id",
    "organisation",
    "organisation_type",
    "mrn",
    "person_id",
    "household_id",
    "sex",
    "birth_date",
    "ethnicity",
    "nhs_number",
    "recorded_nhs_number",
    "verification_status",
    "twin",
    "discrepancies",
)
_PATTERNS = (("ndjson", "*.ndjson"), ("bundles", "*.json"), ("hl7v2", "*.hl7"))


class Sink:
    """The open output files of one run. Use as a context manager."""

    def __init__(self, out_dir: Path, formats: frozenset[str], bundle_size: int) -> None:
        self.out_dir = out_dir
        self.formats = formats
        self.bundle_size = bundle_size
        self.counts: Counter[str] = Counter()
        self.messages: Counter[str] = Counter()
        self.bundles = 0
        self._stack = ExitStack()
        self._ndjson: dict[str, IO[bytes]] = {}
        self._entries: list[bytes] = []
        self._hl7: dict[str, IO[bytes]] = {}
        self._truth: Any = None

    def __enter__(self) -> Sink:
        self.out_dir.mkdir(parents=True, exist_ok=True)
        for folder, pattern in _PATTERNS:
            for stale in (self.out_dir / folder).glob(pattern):
                stale.unlink()
        for folder in ("ndjson", "bundles", "hl7v2"):
            if folder in self.formats:
                (self.out_dir / folder).mkdir(exist_ok=True)
        if "hl7v2" in self.formats:
            for kind in ("adt", "oru"):
                self._hl7[kind] = self._open(self.out_dir / "hl7v2" / f"{kind}.hl7")
        truth_file = self._stack.enter_context(
            (self.out_dir / "ground_truth.csv").open("w", encoding="utf-8", newline="")
        )
        self._truth = csv.writer(truth_file, lineterminator="\n")
        self._truth.writerow(TRUTH_COLUMNS)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is None:
            self.close_bundle()
        self._stack.close()

    def _open(self, path: Path) -> IO[bytes]:
        return self._stack.enter_context(path.open("wb"))

    def add(self, resources: list[dict[str, Any]]) -> None:
        """Write resources to the NDJSON files and the open bundle."""
        for resource in resources:
            kind = resource["resourceType"]
            self.counts[kind] += 1
            data = orjson.dumps(resource)
            if "ndjson" in self.formats:
                out = self._ndjson.get(kind)
                if out is None:
                    out = self._ndjson[kind] = self._open(self.out_dir / "ndjson" / f"{kind}.ndjson")
                out.write(data + b"\n")
            if "bundles" in self.formats:
                url = f"{kind}/{resource['id']}".encode()
                self._entries.append(
                    b'{"resource":' + data + b',"request":{"method":"PUT","url":"' + url + b'"}}'
                )

    def end_person(self) -> None:
        """Close the open bundle if it is full (rule 2)."""
        if len(self._entries) >= self.bundle_size:
            self.close_bundle()

    def close_bundle(self) -> None:
        if not self._entries:
            return
        path = self.out_dir / "bundles" / f"{self.bundles:06d}.json"
        with path.open("wb") as out:
            out.write(b'{"resourceType":"Bundle","type":"transaction","entry":[')
            out.write(b",".join(self._entries))
            out.write(b"]}\n")
        self.bundles += 1
        self._entries = []

    def hl7(self, kind: str, messages: list[str]) -> None:
        if kind in self._hl7 and messages:
            self.messages[kind] += len(messages)
            self._hl7[kind].write("".join(m + "\n" for m in messages).encode("utf-8"))

    def truth(self, row: list[str]) -> None:
        self._truth.writerow(row)

    def summary(self, data: dict[str, Any]) -> None:
        (self.out_dir / "summary.json").write_bytes(
            orjson.dumps(data, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS) + b"\n"
        )
