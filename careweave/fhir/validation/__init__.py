"""FHIR R4 resource validation: base rules from the definitions, required bindings, invariants,
and StructureDefinition profiles.

Usage::

    terminology = Terminology.from_definitions()
    validator = Validator(model, terminology, fhirpath=engine)
    issues = validator.validate(resource)
"""

from careweave.fhir.validation.conform import PROFILE_DETAILS
from careweave.fhir.validation.expansion import Expansion
from careweave.fhir.validation.invariants import FhirPathEngine, SkippedInvariant
from careweave.fhir.validation.profile import Profile, ProfileLibrary
from careweave.fhir.validation.terminology import Terminology
from careweave.fhir.validation.validator import Validator

__all__ = [
    "PROFILE_DETAILS",
    "Expansion",
    "FhirPathEngine",
    "Profile",
    "ProfileLibrary",
    "SkippedInvariant",
    "Terminology",
    "Validator",
]
