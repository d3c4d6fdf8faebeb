"""``careweave mpi ...`` on a real data directory: evaluate, estimate, catch-up, review, decide,
link, unlink, merge, unmerge, locate."""

from __future__ import annotations

import asyncio
from pathlib import Path

import orjson
from click.testing import CliRunner

from careweave.cli import main
from careweave.generate import GeneratorConfig, generate
from careweave.identity.models import load_model
from careweave.settings import Settings
from careweave.store import writes
from careweave.store.base import Transaction
from careweave.system import Definitions, build_system
from tests.mpi.builders import NHS_A, NHS_B, patient


def _seed(data: Path, definitions: Definitions) -> None:
    async def run() -> None:
        system = build_system(Settings(data_dir=data, sqlite_synchronous="NORMAL"), definitions)
        try:
            indexer = system.services.search.base.indexer
            baby = {"family": "Jones", "birth": "2025-03-01", "gender": "female", "status": "08"}
            for name, resources in (
                ("trust-a", [patient("a1", nhs=NHS_A), patient("n1", nhs=NHS_B, given=("Baby",), **baby)]),
                ("gp-c", [patient("c1", nhs=NHS_A), patient("n2", nhs=NHS_B, given=("Ella",), **baby)]),
            ):
                tenant = await system.store.create_tenant(name)

                def put(tx: Transaction, resources: list[dict[str, object]] = resources) -> None:
                    for r in resources:
                        writes.update(
                            tx, writes.Prepared("Patient", dict(r), indexer.index(dict(r))), str(r["id"])
                        )

                await system.store.write(tenant, put)
        finally:
            await system.close()

    asyncio.run(run())


def test_the_mpi_commands_work_on_a_data_directory(tmp_path: Path, definitions: Definitions) -> None:
    data = tmp_path / "data"
    _seed(data, definitions)
    runner = CliRunner()

    def mpi(*args: str) -> str:
        result = runner.invoke(main, ["mpi", *args, "--data", str(data)], catch_exceptions=False)
        assert result.exit_code == 0, result.output
        return result.output

    assert "Patient versions matched" in mpi("catch-up")
    queue = mpi("review").strip().splitlines()
    assert len(queue) == 1
    item, person = queue[0].split("\t")[0], queue[0].split("\t")[1].removeprefix("Person/")
    shown = mpi("show", item)
    assert "rule: placeholder-name" in shown and "birthDate" in shown
    decided = orjson.loads(mpi("decide", item, "same", "--actor", "ops", "--reason", "named at the GP"))
    assert decided["person"] == person
    assert sorted(mpi("locate", person).splitlines()) == ["gp-c\tPatient/n2", "trust-a\tPatient/n1"]
    out = orjson.loads(mpi("unlink", person, "trust-a/Patient/n1", "--actor", "ops", "--reason", "no"))
    alone = out["new_person"]
    mpi("link", person, "trust-a/Patient/n1", "--actor", "ops", "--reason", "yes after all")
    assert len(mpi("locate", person).splitlines()) == 2
    gone = runner.invoke(main, ["mpi", "locate", alone, "--data", str(data)])
    assert gone.exit_code != 0 and "CW-8001" in gone.output
    other = runner.invoke(
        main, ["mpi", "unmerge", person, alone, "--actor", "a", "--reason", "r", "--data", str(data)]
    )
    assert other.exit_code != 0 and "CW-8008" in other.output


def test_evaluate_and_estimate(tmp_path: Path) -> None:
    population = tmp_path / "population"
    generate(
        GeneratorConfig(
            patients=300,
            organisations=4,
            seed=3,
            difficulty="hard",
            formats=frozenset({"ndjson"}),
            resources_per_patient=20,
        ),
        population,
    )
    runner = CliRunner()
    report = runner.invoke(main, ["mpi", "evaluate", str(population), "--json"], catch_exceptions=False)
    assert report.exit_code == 0, report.output
    measured = orjson.loads(report.output)
    assert measured["records"] > 300 and measured["pairwise"]["recall"] > 0.8
    assert measured["people"]["wrongly_merged_persons"] == 0
    out = tmp_path / "model.json"
    estimated = runner.invoke(
        main, ["mpi", "estimate", str(out), "--ndjson", str(population)], catch_exceptions=False
    )
    assert estimated.exit_code == 0, estimated.output
    model = load_model(out)
    assert model.version in estimated.output and model.training["source"].endswith("Patient.ndjson")
    with_default = runner.invoke(main, ["mpi", "evaluate", str(population), "--model", str(out)])
    assert with_default.exit_code == 0, with_default.output


def test_the_reserved_identity_tenant_is_not_an_organisation(tmp_path: Path, definitions) -> None:
    data = tmp_path / "data"

    async def start() -> None:  # as the identity service does when the server starts
        system = build_system(Settings(data_dir=data, sqlite_synchronous="NORMAL"), definitions)
        try:
            await system.store.create_tenant("_mpi")
        finally:
            await system.close()

    asyncio.run(start())
    runner = CliRunner()
    listed = runner.invoke(main, ["tenant", "list", "--data", str(data)])
    assert listed.exit_code == 0 and "default" in listed.output
    assert "_mpi" not in listed.output
    removed = runner.invoke(main, ["tenant", "remove", "_mpi", "--yes", "--data", str(data)])
    assert removed.exit_code != 0 and "reserved" in removed.output
    changed = runner.invoke(main, ["tenant", "set", "_mpi", "validate_profiles", "true", "--data", str(data)])
    assert changed.exit_code != 0 and "reserved" in changed.output
