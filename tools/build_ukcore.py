"""Build careweave/fhir/ukcore/{conformance,examples}.json.gz and source.info from the UK Core XML.

Usage: python tools/build_ukcore.py [SOURCE]   (SOURCE defaults to /work/shared/uk-core)

The conversion itself is careweave.fhir.ukcore.build; tests/fhir/ukcore checks that the packaged
files equal a fresh build, so rerun this whenever the parser or the source changes.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from careweave.fhir import definitions
from careweave.fhir.elements import ElementModel
from careweave.fhir.ukcore import CONFORMANCE_FILE, EXAMPLES_FILE, INFO_FILE
from careweave.fhir.ukcore.build import build, write

TARGET = Path(__file__).resolve().parent.parent / "careweave" / "fhir" / "ukcore"


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("source", nargs="?", default="/work/shared/uk-core", type=Path)
    args = parser.parse_args(argv)
    if not (args.source / "package.json").is_file():
        print(f"no UK Core package at {args.source}", file=sys.stderr)
        return 2
    model = ElementModel.from_structure_definitions(
        definitions.resources_of("profiles-types") + definitions.resources_of("profiles-resources")
    )
    try:
        result = build(args.source, model)
    except ValueError as e:
        print(f"build failed: {e}", file=sys.stderr)
        return 1
    write(result, TARGET)
    for name in (CONFORMANCE_FILE, EXAMPLES_FILE, INFO_FILE):
        print(f"{name}: {(TARGET / name).stat().st_size:,} bytes")
    print(result.info, end="")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
