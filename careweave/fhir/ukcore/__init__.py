"""HL7 UK Core R4 (package UKCore.R4.STU.02.00.00, version 2.0.0), packaged as FHIR JSON.

Licence: the UK Core assets are Copyright (c) 2021+ HL7 UK, licensed under the Apache License,
Version 2.0 (http://www.apache.org/licenses/LICENSE-2.0); the HL7(R) FHIR(R) standard they build
on is Copyright (c) 2011+ HL7 and used under the FHIR licence (https://www.hl7.org/fhir/license.html).
The conformance resources carry this note in their own ``copyright`` element; ``source.info``
beside this module repeats it with the counts and the repairs made to the source.

Rules:
1. Two gzipped Bundles (type ``collection``) hold the resources, converted from the published XML
   by ``tools/build_ukcore.py`` with :func:`careweave.fhir.xml.parse_xml` (see :mod:`.build`):
   ``conformance.json.gz`` (StructureDefinitions, ValueSets, CodeSystems, ConceptMaps and the
   CapabilityStatement) and ``examples.json.gz``. A test keeps them equal to a fresh build.
2. They are read through :func:`load_conformance` / :func:`load_examples`, never through a path
   outside the package, and nothing is cached here: callers keep what they load.
"""

from __future__ import annotations

import gzip
from importlib import resources
from typing import Any

import orjson

__all__ = ["CONFORMANCE_FILE", "EXAMPLES_FILE", "INFO_FILE", "load_conformance", "load_examples"]

CONFORMANCE_FILE = "conformance.json.gz"
EXAMPLES_FILE = "examples.json.gz"
INFO_FILE = "source.info"


def load_conformance() -> list[dict[str, Any]]:
    """The UK Core StructureDefinitions, ValueSets, CodeSystems, ConceptMaps, CapabilityStatement."""
    return _resources(CONFORMANCE_FILE)


def load_examples() -> list[dict[str, Any]]:
    """The UK Core example resources (Patients, Observations, Bundles...)."""
    return _resources(EXAMPLES_FILE)


def _resources(file_name: str) -> list[dict[str, Any]]:
    raw = resources.files(__name__).joinpath(file_name).read_bytes()
    bundle = orjson.loads(gzip.decompress(raw))
    return [entry["resource"] for entry in bundle.get("entry", ())]
