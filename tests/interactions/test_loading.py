"""careweave load: NDJSON, Bundles and folders; idempotent; conditional references; rejects."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import orjson
import pytest

from careweave.generate import DEMO, generate
from careweave.interactions.loading import load_paths
from careweave.store.base import HistoryQuery

pytestmark = pytest.mark.anyio

NPI = "http://hl7.org/fhir/sid/us-npi"


@pytest.fixture(scope="module")
def demo(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("demo")
    generate(DEMO, out)
    return out


async def test_ndjson_then_bundles_then_again_changes_nothing(system, demo, tmp_path) -> None:
    tenant = await system.store.tenant("default")
    summary = json.loads((demo / "summary.json").read_text())
    first = await load_paths(system.services, tenant, [demo / "ndjson"],
                             report_path=tmp_path / "r.ndjson")
    assert first.rejected == 0
    assert first.stored == first.read == sum(summary["resources"].values())
    for type_, count in summary["resources"].items():
        assert first.by_type[type_] == count
    again = await load_paths(system.services, tenant, [demo / "ndjson"])
    assert again.stored == 0 and again.unchanged == first.read
    bundles = await load_paths(system.services, tenant, [demo / "bundles"])
    assert bundles.stored == 0 and bundles.unchanged == first.read
    history = await system.store.history(tenant, HistoryQuery(count=1, type="Patient"))
    assert history.entries[0].version == 1


def _synthea_like(tmp: Path) -> Path:
    folder = tmp / "synthea"
    folder.mkdir()
    practitioners = {"resourceType": "Bundle", "type": "batch", "entry": [{
        "fullUrl": "urn:uuid:0000016d-3a85-4cca-0000-000000000001",
        "resource": {"resourceType": "Practitioner", "identifier": [{"system": NPI,
                                                                     "value": "9999999999"}],
                     "name": [{"family": "Hurst"}]},
        "request": {"method": "POST", "url": "Practitioner",
                    "ifNoneExist": f"identifier={NPI}|9999999999"}}]}
    patient = {"resourceType": "Bundle", "type": "transaction", "entry": [
        {"fullUrl": "urn:uuid:7d1c1b6d-0000-4000-8000-000000000001",
         "resource": {"resourceType": "Patient", "name": [{"family": "Smith"}],
                      "generalPractitioner": [{"reference": f"Practitioner?identifier={NPI}|9999999999"}]},
         "request": {"method": "POST", "url": "Patient"}},
        {"fullUrl": "urn:uuid:7d1c1b6d-0000-4000-8000-000000000002",
         "resource": {"resourceType": "Encounter", "status": "finished",
                      "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode",
                                "code": "AMB"},
                      "subject": {"reference": "urn:uuid:7d1c1b6d-0000-4000-8000-000000000001"},
                      "participant": [{"individual": {
                          "reference": f"Practitioner?identifier={NPI}|9999999999"}}]},
         "request": {"method": "POST", "url": "Encounter"}},
    ]}
    # the patient file sorts before the practitioner file: its references are retried at the end
    (folder / "Ann_Smith.json").write_bytes(orjson.dumps(patient))
    (folder / "zz_practitioners.json").write_bytes(orjson.dumps(practitioners))
    return folder


async def test_synthea_shape_urn_uuids_and_conditional_references(system, tmp_path) -> None:
    tenant = await system.store.tenant("default")
    report = await load_paths(system.services, tenant, [_synthea_like(tmp_path)],
                              report_path=tmp_path / "r.ndjson")
    assert report.rejected == 0 and report.stored == 3
    encounter = await system.store.read(tenant, "Encounter", "7d1c1b6d-0000-4000-8000-000000000002")
    body = orjson.loads(encounter.body)
    assert body["subject"]["reference"] == "Patient/7d1c1b6d-0000-4000-8000-000000000001"
    assert body["participant"][0]["individual"]["reference"] == (
        "Practitioner/0000016d-3a85-4cca-0000-000000000001")
    again = await load_paths(system.services, tenant, [tmp_path / "synthea"])
    assert again.stored == 0


async def test_rejects_are_reported_and_the_rest_loads(system, tmp_path) -> None:
    tenant = await system.store.tenant("default")
    lines = [
        {"resourceType": "Patient", "id": "ok1"},
        {"resourceType": "Patient", "id": "bad", "gender": "robot"},
        {"resourceType": "Nonsense", "id": "x"},
        {"resourceType": "Observation", "id": "o1", "status": "final", "code": {"text": "x"},
         "subject": {"reference": "Patient?identifier=none|none"}},
    ]
    path = tmp_path / "mixed.ndjson"
    path.write_bytes(b"\n".join(orjson.dumps(line) for line in lines) + b"\n{broken json\n")
    report = await load_paths(system.services, tenant, [path], report_path=tmp_path / "r.ndjson")
    assert report.stored == 1 and report.rejected == 4
    reasons = [json.loads(line) for line in (tmp_path / "r.ndjson").read_text().splitlines()]
    by_id = {r.get("id"): r["reason"] for r in reasons}
    assert "gender" in by_id["bad"] or "robot" in by_id["bad"]
    assert "Nonsense" in by_id["x"]
    assert "conditional reference" in by_id["o1"]
    assert any("not JSON" in r["reason"] for r in reasons)


async def test_stored_bodies_are_the_resources_as_written(system, tmp_path) -> None:
    # the writer gets the loader's own parse (rule 6), and only a resource holding a "?" is walked
    # for conditional references: one written with an escaped "?" (\\u003f) is still found
    tenant = await system.store.tenant("default")
    lines = [
        b'{"resourceType":"Patient","id":"q1","name":[{"text":"Who? \\u00e9"}],"multipleBirthInteger":3}',
        b'{"resourceType":"Observation","status":"final","code":{"text":"x"},'
        b'"valueQuantity":{"value":1.50,"unit":"mg"},"subject":{"reference":"Patient/q1"}}',
        b'{"resourceType":"Observation","id":"o2","status":"final","code":{"text":"x"},'
        b'"subject":{"reference":"Patient\\u003fidentifier=none|none"}}',
    ]
    path = tmp_path / "plain.ndjson"
    path.write_bytes(b"\n".join(lines) + b"\n")
    report = await load_paths(system.services, tenant, [path], report_path=tmp_path / "r.ndjson")
    assert report.stored == 2 and report.rejected == 1
    assert "conditional reference" in (tmp_path / "r.ndjson").read_text()
    history = (await system.store.history(tenant, HistoryQuery(count=10))).entries
    stored = {e.type: orjson.loads(e.body) for e in history if e.body is not None}
    for line in lines[:2]:
        sent = orjson.loads(line)
        got = stored[sent["resourceType"]]
        assert {k: v for k, v in got.items() if k not in ("id", "meta")} == {
            k: v for k, v in sent.items() if k != "id"}
    assert stored["Patient"]["id"] == "q1" and stored["Observation"]["id"]


@pytest.mark.slow
def test_cli_load_with_worker_processes(demo, tmp_path) -> None:
    data = tmp_path / "d"
    out = subprocess.run(
        [sys.executable, "-m", "careweave.cli", "load", str(demo / "ndjson"), "--data", str(data),
         "--workers", "1"],
        capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert "0 rejected" in out.stdout and " stored" in out.stdout
    assert not (tmp_path / "load-rejected.ndjson").exists()  # created at the first rejection only
    again = subprocess.run(
        [sys.executable, "-m", "careweave.cli", "load", str(demo / "ndjson"), "--data", str(data),
         "--workers", "1", "--report", str(tmp_path / "r.ndjson")],
        capture_output=True, text=True, timeout=300)
    assert " 0 stored" in again.stdout, again.stdout


@pytest.mark.slow
def test_cli_report_names_the_file_with_the_rejections(tmp_path) -> None:
    source = tmp_path / "in.ndjson"
    source.write_bytes(b'{"resourceType":"Patient","id":"a"}\n{"resourceType":"Patient","gender":"x"}\n')
    out = subprocess.run(
        [sys.executable, "-m", "careweave.cli", "load", str(source), "--data", str(tmp_path / "d"),
         "--workers", "0"],
        capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert "1 stored" in out.stdout and "1 rejected" in out.stdout
    assert "load-rejected.ndjson" in out.stdout
    (line,) = (tmp_path / "load-rejected.ndjson").read_bytes().splitlines()
    assert orjson.loads(line)["source"] == f"{source}:2"
