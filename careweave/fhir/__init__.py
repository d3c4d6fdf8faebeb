"""The FHIR R4 model: packaged definitions, element model, FHIRPath, validation (pure)."""
