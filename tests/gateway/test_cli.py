"""The command line against a real server process: ``serve --mllp-port``, ``hl7 send``, routes, the
error queue, ``hl7 show`` and ``hl7 replay`` (the CLI and the server share the SQLite file)."""

from __future__ import annotations

from pathlib import Path

import httpx
from click.testing import CliRunner

from careweave.cli import main
from tests.gateway.conftest import CORPUS
from tests.support import ServerProcess, free_port

BROKEN = (
    (CORPUS / "adt_a01.hl7")
    .read_bytes()
    .replace(b"RJ10012345^^^RJ1^MR~9990000018^^^NHS^NH", b"")
    .replace(b"RJ1-A01-0001", b"CLI-BAD-1")
)


def test_send_route_errors_show_and_replay(tmp_path: Path) -> None:
    mllp = free_port()
    server = ServerProcess(tmp_path / "srv", {"CAREWEAVE_MLLP_PORT": str(mllp)}).start()
    data = ["--data", str(server.data_dir)]
    runner = CliRunner()
    try:
        assert runner.invoke(main, ["tenant", "create", "trust-d", *data]).exit_code == 0
        routed = runner.invoke(main, ["hl7", "route", "rj1", "trust-d", *data])
        assert routed.exit_code == 0 and "RJ1 -> trust-d" in routed.output
        assert "RJ1\ttrust-d" in runner.invoke(main, ["hl7", "routes", *data]).output
        broken = tmp_path / "broken.hl7"
        broken.write_bytes(BROKEN)
        sent = runner.invoke(main, ["hl7", "send", str(CORPUS / "batch_adt.hl7"), str(CORPUS / "oru_r01.hl7"),
                                    str(broken), "--to", f"127.0.0.1:{mllp}"])  # fmt: skip
        assert sent.exit_code == 1  # one was not accepted
        lines = sent.output.splitlines()
        assert lines[:3] == ["RJ1-A28-0001\tAA", "RJ1-A04-0001\tAA", "RJ1-LAB-0001\tAA"]
        assert lines[3].startswith("CLI-BAD-1\tAE\t")
        patients = httpx.get(f"{server.url}/t/trust-d/fhir/Patient", timeout=30).json()
        assert len(patients["entry"]) == 1

        errors = runner.invoke(main, ["hl7", "errors", *data])
        [line] = errors.output.splitlines()
        id_, tenant, status, kind, control, reason = line.split("\t")
        assert (tenant, status, kind, control) == (
            "trust-d",
            "error",
            "ADT^A01",
            "CLI-BAD-1",
        ) and "PID-3" in reason
        shown = runner.invoke(main, ["hl7", "show", id_, *data])
        assert (
            "error" in shown.output and "--- message" in shown.output and "MSA|AE|CLI-BAD-1" in shown.output
        )

        assert runner.invoke(main, ["hl7", "replay", id_, *data]).exit_code == 1  # unchanged: fails again
        fixed = tmp_path / "fixed.hl7"
        fixed.write_bytes(BROKEN.replace(b"PID|1||||", b"PID|1||RJ1777^^^RJ1^MR||"))
        replayed = runner.invoke(main, ["hl7", "replay", id_, "--file", str(fixed), *data])
        assert replayed.exit_code == 0 and replayed.output.strip() == f"{id_}\tprocessed"
        assert runner.invoke(main, ["hl7", "errors", *data]).output == ""
        found = httpx.get(f"{server.url}/t/trust-d/fhir/Patient?identifier=RJ1777", timeout=30).json()
        assert len(found["entry"]) == 1
        assert runner.invoke(main, ["hl7", "unroute", "RJ1", *data]).exit_code == 0
        assert runner.invoke(main, ["hl7", "unroute", "RJ1", *data]).exit_code == 1
    finally:
        server.stop()
