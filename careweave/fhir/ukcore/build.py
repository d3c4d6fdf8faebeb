"""Build the packaged UK Core Bundles from the published UK Core XML (used by tools/build_ukcore.py).

Rules:
1. Every ``*.xml`` under the source folder is converted with :func:`careweave.fhir.xml.parse_xml`,
   in the order of the sorted relative paths, so a build is deterministic. Files under
   ``examples/`` go to the examples Bundle, all others to the conformance Bundle, which accepts
   only the conformance resource types in :data:`CONFORMANCE_TYPES`.
2. A few source files break the FHIR XML rules. Each one is repaired by an entry of
   :data:`REPAIRS` (an exact byte replacement with its reason, recorded in ``source.info``); a
   repair that no longer matches exactly once fails the build, so a fixed upstream file is noticed.
   Any other file the parser refuses fails the build.
3. The outputs are compact JSON (orjson), gzipped with a zero timestamp, plus ``source.info``
   naming the source package, its licence, the counts per resource type and the repairs.
"""

from __future__ import annotations

import gzip
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from careweave.errors import CareweaveError
from careweave.fhir.elements import ElementModel
from careweave.fhir.ukcore import CONFORMANCE_FILE, EXAMPLES_FILE, INFO_FILE
from careweave.fhir.xml import parse_xml

__all__ = ["CONFORMANCE_TYPES", "LICENCE_NOTE", "REPAIRS", "Build", "Repair", "build", "write"]

CONFORMANCE_TYPES = frozenset(
    {"StructureDefinition", "ValueSet", "CodeSystem", "ConceptMap", "CapabilityStatement"}
)
LICENCE_NOTE = (
    "UK Core assets: Copyright (c) 2021+ HL7 UK, licensed under the Apache License, Version 2.0 "
    "(http://www.apache.org/licenses/LICENSE-2.0). HL7(R) FHIR(R) standard: Copyright (c) 2011+ "
    "HL7, used under the FHIR licence (https://www.hl7.org/fhir/license.html)."
)


@dataclass(frozen=True, slots=True)
class Repair:
    """An exact byte replacement in one source file (``path`` relative to the source folder)."""

    path: str
    old: bytes
    new: bytes
    reason: str


REPAIRS = (
    Repair(
        "codesystems/CodeSystem-UKCore-EthnicCategoryScotland.xml",
        b'<display value="Gypsy/ Traveller" />c',
        b'<display value="Gypsy/ Traveller" />',
        "a stray 'c' after the display of code 1K (FHIR elements hold no text)",
    ),
    Repair(
        "examples/Extension-UKCore-ConditionEpisode-Example.xml",
        b'<valueCode value="new" />',
        b"",
        "value[x] given twice; the extension's profile allows only valueCodeableConcept",
    ),
)


@dataclass(frozen=True, slots=True)
class Build:
    """The packaged files' contents: the two Bundles as JSON bytes (not gzipped), and the info."""

    conformance: bytes
    examples: bytes
    info: str


def build(source: Path, model: ElementModel, repairs: Iterable[Repair] = REPAIRS) -> Build:
    """Convert the UK Core XML under ``source``; raises ValueError naming any file it cannot."""
    repairs = tuple(repairs)
    pending = {r.path: r for r in repairs}
    conformance: list[dict[str, Any]] = []
    examples: list[dict[str, Any]] = []
    for path in sorted(source.rglob("*.xml")):
        relative = path.relative_to(source).as_posix()
        data = _repaired(path.read_bytes(), pending.pop(relative, None))
        try:
            resource = parse_xml(data, model)
        except CareweaveError as e:
            raise ValueError(f"{relative}: {e}") from None
        if relative.startswith("examples/"):
            examples.append(resource)
        elif resource["resourceType"] in CONFORMANCE_TYPES:
            conformance.append(resource)
        else:
            raise ValueError(f"{relative}: a {resource['resourceType']} is not conformance")
    if pending:
        raise ValueError(f"repairs for files that are missing: {sorted(pending)}")
    package = orjson.loads((source / "package.json").read_bytes())
    return Build(
        conformance=orjson.dumps(_bundle("ukcore-conformance", conformance)),
        examples=orjson.dumps(_bundle("ukcore-examples", examples)),
        info=_info(package, conformance, examples, repairs),
    )


def write(result: Build, target: Path) -> None:
    """Write the packaged files into ``target`` (the ``careweave/fhir/ukcore`` folder)."""
    for name, data in ((CONFORMANCE_FILE, result.conformance), (EXAMPLES_FILE, result.examples)):
        (target / name).write_bytes(gzip.compress(data, compresslevel=9, mtime=0))
    (target / INFO_FILE).write_text(result.info, encoding="utf-8")


def _repaired(data: bytes, repair: Repair | None) -> bytes:
    if repair is None:
        return data
    if data.count(repair.old) != 1:
        raise ValueError(f"{repair.path}: the repair ({repair.reason}) no longer applies")
    return data.replace(repair.old, repair.new)


def _bundle(bundle_id: str, resources: Iterable[dict[str, Any]]) -> dict[str, Any]:
    return {
        "resourceType": "Bundle",
        "id": bundle_id,
        "type": "collection",
        "entry": [{"resource": r} for r in resources],
    }


def _info(
    package: Mapping[str, Any],
    conformance: list[dict[str, Any]],
    examples: list[dict[str, Any]],
    repairs: Iterable[Repair],
) -> str:
    lines = [
        "[UKCore]",
        f"package={package.get('name', '')}",
        f"version={package.get('version', '')}",
        f"fhirVersion={','.join(package.get('fhirVersions', ()))}",
        f"licence={LICENCE_NOTE}",
    ]
    for section, resources in (("conformance", conformance), ("examples", examples)):
        counts = Counter(r["resourceType"] for r in resources)
        lines += ["", f"[{section}]", f"total={len(resources)}"]
        lines += [f"{name}={count}" for name, count in sorted(counts.items())]
    lines += ["", "[repairs]"] + [f"{r.path}={r.reason}" for r in repairs]
    return "\n".join(lines) + "\n"
