"""The CapabilityStatement is generated from what is served, and is itself valid FHIR R4."""

from __future__ import annotations

import pytest

from careweave.interactions.dispatch import HANDLERS
from careweave.interactions.surface import SURFACE

pytestmark = pytest.mark.anyio


def test_every_surface_row_has_a_handler_and_back() -> None:
    assert set(HANDLERS) == set(SURFACE)


async def test_capability_statement_describes_the_server(client, system) -> None:
    r = await client.get("/fhir/metadata")
    assert r.status_code == 200
    cs = r.json()
    assert cs["fhirVersion"] == "4.0.1" and cs["kind"] == "instance"
    resources = {res["type"]: res for res in cs["rest"][0]["resource"]}
    assert set(resources) == set(system.services.resource_types)
    patient = resources["Patient"]
    codes = {i["code"] for i in patient["interaction"]}
    assert codes == {"read", "vread", "update", "patch", "delete", "history-instance",
                     "history-type", "create", "search-type"}
    names = {p["name"] for p in patient["searchParam"]}
    assert {"identifier", "name", "birthdate", "_id", "_lastUpdated"} <= names
    assert "_query" not in names
    assert {"name": "validate",
            "definition": "http://hl7.org/fhir/OperationDefinition/Resource-validate"} in patient[
        "operation"]
    issues = system.definitions.validator.validate(cs)
    assert [i for i in issues if i.is_error] == []
