"""UK Core profiles (differential-only, XML) applied to the UK Core examples and to broken
variants. Reads /work/shared/uk-core, so it skips cleanly where that folder is absent."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest

from careweave.fhir import definitions
from careweave.fhir.elements import ElementModel
from careweave.fhir.validation import PROFILE_DETAILS, ProfileLibrary, Validator

UK_CORE = Path("/work/shared/uk-core")
pytestmark = pytest.mark.skipif(not UK_CORE.is_dir(), reason="UK Core package not available")
UKCORE = "https://fhir.hl7.org.uk/StructureDefinition/"


def _parse(path: Path, model: ElementModel) -> dict[str, Any] | None:
    from careweave.errors import CareweaveError
    from careweave.fhir.xml import parse_xml

    try:
        return parse_xml(path.read_bytes(), model)
    except CareweaveError:
        return None  # a few package files are not valid R4 XML; they are not what we test


@pytest.fixture(scope="module")
def library(validator: Validator, model: ElementModel) -> ProfileLibrary:
    found = []
    for folder in ("structuredefinitions", "valuesets", "codesystems"):
        for path in sorted((UK_CORE / folder).glob("*.xml")):
            parsed = _parse(path, model)
            if parsed is not None:
                found.append(parsed)
    return validator.profile_library(found + definitions.resources_of("extension-definitions"))


def _examples(kind: str) -> list[Path]:
    return sorted((UK_CORE / "examples").glob(f"UKCore-{kind}-*.xml")) if UK_CORE.is_dir() else []


def _profile_errors(
    validator: Validator, library: ProfileLibrary, resource: dict[str, Any], url: str
) -> list[Any]:
    profile = library.profile(url)
    assert profile is not None
    issues = validator.validate(resource, profiles=[profile])
    return [i for i in issues if i.details == PROFILE_DETAILS and i.severity == "error"]


@pytest.mark.parametrize(
    "path", _examples("Patient") + _examples("Observation") + _examples("Encounter"), ids=lambda p: p.name
)
def test_examples_meet_their_profile(
    validator: Validator, library: ProfileLibrary, model: ElementModel, path: Path
) -> None:
    resource = _parse(path, model)
    assert resource is not None
    url = UKCORE + "UKCore-" + resource["resourceType"]
    assert _profile_errors(validator, library, resource, url) == []


def test_broken_patient_is_caught(validator: Validator, library: ProfileLibrary, model: ElementModel) -> None:
    paths = _examples("Patient")
    resource = _parse(paths[0], model)
    assert resource is not None
    broken = copy.deepcopy(resource)
    nhs = {"system": "https://fhir.nhs.uk/Id/nhs-number"}
    broken["identifier"] = [nhs, dict(nhs, value="9000000009")]
    ethnic = {"url": UKCORE + "Extension-UKCore-EthnicCategory", "valueString": "A"}
    broken["extension"] = [ethnic, ethnic]
    found = {
        (i.code, i.expression[0])
        for i in _profile_errors(validator, library, broken, UKCORE + "UKCore-Patient")
    }
    assert ("structure", "Patient.identifier:nhsNumber") in found
    assert ("required", "Patient.identifier[0].value") in found
    assert ("structure", "Patient.extension:ethnicCategory") in found
    assert ("structure", "Patient.extension[0].valueString") in found
