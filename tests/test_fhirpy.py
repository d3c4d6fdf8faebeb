"""A real FHIR client (fhirpy) against a real careweave server process."""

from __future__ import annotations

import pytest
from fhirpy import SyncFHIRClient

pytestmark = pytest.mark.slow


def test_fhirpy_create_read_update_delete(server) -> None:
    client = SyncFHIRClient(f"{server.url}/fhir")
    patient = client.resource(
        "Patient",
        identifier=[{"system": "https://fhir.nhs.uk/Id/nhs-number", "value": "9434765919"}],
        name=[{"family": "Lewis", "given": ["Ada"]}],
    )
    patient.save()
    assert patient.id
    fetched = client.reference("Patient", patient.id).to_resource()
    assert fetched["name"][0]["family"] == "Lewis"
    assert fetched["meta"]["versionId"] == "1"
    fetched["name"][0]["family"] = "Byron"
    fetched.save()
    assert client.reference("Patient", patient.id).to_resource()["meta"]["versionId"] == "2"
    found = (
        client.resources("Patient").search(identifier="https://fhir.nhs.uk/Id/nhs-number|9434765919").fetch()
    )
    assert [p.id for p in found] == [patient.id]
    fetched.delete()
    assert client.resources("Patient").search(_id=patient.id).fetch() == []
