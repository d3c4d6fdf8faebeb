"""Fixtures for the validator tests: the R4 element model, terminology and a validator, built once."""

from __future__ import annotations

import pytest

from careweave.fhir import definitions
from careweave.fhir.elements import ElementModel
from careweave.fhir.validation import Terminology, Validator


@pytest.fixture(scope="session")
def model() -> ElementModel:
    return ElementModel.from_structure_definitions(
        definitions.resources_of("profiles-types") + definitions.resources_of("profiles-resources")
    )


@pytest.fixture(scope="session")
def terminology(model: ElementModel) -> Terminology:
    return Terminology.from_definitions(model)


@pytest.fixture(scope="session")
def validator(model: ElementModel, terminology: Terminology) -> Validator:
    return Validator(model, terminology)
