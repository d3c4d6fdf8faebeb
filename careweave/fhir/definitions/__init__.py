"""The official FHIR R4 (4.0.1) definitions, packaged with careweave (CC0, published by HL7).

Files are the spec's own gzipped JSON bundles, copied unchanged from the spec's download page.
They are read through :func:`load`, never through a path outside the package.
"""

from __future__ import annotations

import gzip
from importlib import resources
from typing import Any

import orjson

__all__ = ["FHIR_VERSION", "NAMES", "load", "resources_of"]

FHIR_VERSION = "4.0.1"

NAMES = (
    "profiles-resources",
    "profiles-types",
    "search-parameters",
    "valuesets",
    "v3-codesystems",
    "compartmentdefinition-patient",
    "extension-definitions",
    "v2-tables",
    "conceptmaps",
)


def load(name: str) -> Any:
    """Return the parsed JSON of one packaged definition file (e.g. ``"search-parameters"``)."""
    if name not in NAMES:
        raise KeyError(f"no packaged definition called {name!r}")
    raw = resources.files(__name__).joinpath(f"{name}.json.gz").read_bytes()
    return orjson.loads(gzip.decompress(raw))


def resources_of(name: str) -> list[dict[str, Any]]:
    """The resources of a packaged Bundle (``entry[*].resource``)."""
    bundle = load(name)
    return [entry["resource"] for entry in bundle.get("entry", ())]
