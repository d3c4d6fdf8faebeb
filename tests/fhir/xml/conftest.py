"""Fixtures for the XML tests: the R4 element model, built once per session."""

from __future__ import annotations

import pytest

from careweave.fhir import definitions
from careweave.fhir.elements import ElementModel


@pytest.fixture(scope="session")
def model() -> ElementModel:
    return ElementModel.from_structure_definitions(
        definitions.resources_of("profiles-types") + definitions.resources_of("profiles-resources")
    )
