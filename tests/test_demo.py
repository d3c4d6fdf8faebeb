"""`make run`: careweave serve --demo loads the demo population into an empty server, once."""

from __future__ import annotations

import httpx
import pytest

from tests.support import ServerProcess

pytestmark = pytest.mark.slow


def test_serve_with_demo_loads_demo_data_once(tmp_path) -> None:
    srv = ServerProcess(tmp_path / "demo", extra_env={"CAREWEAVE_DEMO": "true"}).start()
    try:
        bundle = httpx.get(f"{srv.url}/fhir/Patient?_total=accurate&_count=1").json()
        patients = bundle["total"]
        assert patients > 20
        orgs = httpx.get(f"{srv.url}/fhir/Organization?_count=100").json()["entry"]
        assert any(o["resource"]["identifier"][0]["system"] ==
                   "https://fhir.nhs.uk/Id/ods-organization-code" for o in orgs)
        pid = bundle["entry"][0]["resource"]["id"]
        everything = httpx.get(f"{srv.url}/fhir/Patient/{pid}/Observation?_count=5").json()
        assert everything["resourceType"] == "Bundle"
    finally:
        srv.stop()
    again = ServerProcess(tmp_path / "demo", extra_env={"CAREWEAVE_DEMO": "true"}).start()
    try:
        bundle = httpx.get(f"{again.url}/fhir/Patient?_total=accurate&_count=1").json()
        assert bundle["total"] == patients  # not loaded twice
    finally:
        again.stop()
