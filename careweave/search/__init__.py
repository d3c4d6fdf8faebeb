"""FHIR search: parameters, index extraction and query plans (pure; no storage, no HTTP)."""
