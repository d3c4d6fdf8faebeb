"""``careweave mpi ...``: evaluate, estimate, catch up, and the operators' decisions from a shell.

The composition root hands :func:`mpi_group` a way to open the service (``open_identity``), so
this module needs neither the settings loader nor the store backend.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from contextlib import AbstractAsyncContextManager
from functools import wraps
from pathlib import Path
from typing import Any, TypeVar

import click
import orjson

from careweave.errors import CareweaveError
from careweave.identity.models import estimate_on, write_model
from careweave.identity.service import IdentityService
from careweave.store.sql import mpi as db

__all__ = ["OpenIdentity", "mpi_group"]

T = TypeVar("T")
OpenIdentity = Callable[[Path | None, str | None], AbstractAsyncContextManager[IdentityService]]


def _storage(fn: Callable[..., Any]) -> Callable[..., Any]:
    fn = click.option("--database", default=None, help="Database URL. Env: CAREWEAVE_DATABASE.")(fn)
    fn = click.option(
        "--data",
        "data_dir",
        type=click.Path(path_type=Path, file_okay=False),
        default=None,
        help="Data directory (default ./data). Env: CAREWEAVE_DATA_DIR.",
    )(fn)
    return fn


def _actor(fn: Callable[..., Any]) -> Callable[..., Any]:
    fn = click.option("--reason", required=True, help="Why (kept in the audit trail).")(fn)
    fn = click.option("--actor", required=True, help="Who decides (kept in the audit trail).")(fn)
    return fn


def mpi_group(open_identity: OpenIdentity) -> click.Group:
    """The ``mpi`` command group."""

    def with_identity(fn: Callable[..., Coroutine[Any, Any, None]]) -> Callable[..., None]:
        @wraps(fn)
        def wrapper(data_dir: Path | None, database: str | None, **kwargs: Any) -> None:
            async def run() -> None:
                async with open_identity(data_dir, database) as identity:
                    await fn(identity, **kwargs)

            try:
                asyncio.run(run())
            except CareweaveError as exc:
                raise click.ClickException(f"{exc.code}: {exc.diagnostics or exc.meaning}") from None

        return wrapper

    @click.group("mpi")
    def group() -> None:
        """The master patient index: evaluate, re-estimate, review and decide."""

    @group.command("evaluate")
    @click.argument("directory", type=click.Path(exists=True, file_okay=False, path_type=Path))
    @click.option(
        "--model",
        "model_path",
        type=click.Path(exists=True, path_type=Path),
        default=None,
        help="Score with this model JSON (default: estimate one on the records).",
    )
    @click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
    def evaluate(directory: Path, model_path: Path | None, as_json: bool) -> None:
        """Evaluate the matcher on a generated population (careweave generate): pairwise
        precision/recall/F1, recall at zero false merges, people wrongly merged or split, accuracy
        by age and sex, runtime and pairs per second."""
        from careweave import mpi
        from careweave.identity.models import load_model

        model = load_model(model_path) if model_path else None
        try:
            report = mpi.evaluate(directory, model=model)
        except OSError as exc:
            raise click.ClickException(f"{directory}: {exc}") from None
        if as_json:
            click.echo(orjson.dumps(report.as_json(), option=orjson.OPT_INDENT_2).decode())
        else:
            mpi.print_report(report)

    @group.command("estimate")
    @_storage
    @click.argument("out", type=click.Path(dir_okay=False, path_type=Path))
    @click.option(
        "--ndjson",
        "ndjson",
        type=click.Path(exists=True, path_type=Path),
        default=None,
        help="Estimate on the Patients of this NDJSON file or generated directory instead "
        "of the records the index holds.",
    )
    @click.option("--seed", type=int, default=0, show_default=True, help="Random seed for sampling.")
    def estimate(
        data_dir: Path | None, database: str | None, out: Path, ndjson: Path | None, seed: int
    ) -> None:
        """Re-estimate the match model (EM, no labels) on this deployment's own records and write it
        to OUT; select it with the mpi_model setting (thresholds come from the settings)."""
        patients: list[dict[str, Any]] = []
        if ndjson is not None:
            path = ndjson / "ndjson" / "Patient.ndjson" if ndjson.is_dir() else ndjson
            patients.extend(orjson.loads(line) for line in path.read_bytes().splitlines() if line.strip())
            source = str(path)
        else:

            async def read(identity: IdentityService) -> None:
                rows = await identity.store.sql_read(db.all_demographics)
                for tid, pid, body in rows:
                    patients.append({**orjson.loads(body), "resourceType": "Patient", "id": f"{tid}/{pid}"})

            with_identity(read)(data_dir, database)
            source = "the records of the master patient index"
        if len(patients) < 2:
            raise click.ClickException("estimating needs at least two Patients")
        model = estimate_on(patients, {"source": source}, seed=seed)
        write_model(model, out)
        click.echo(f"{model.version}: estimated on {len(patients):,} Patients, written to {out}")

    @group.command("catch-up")
    @_storage
    @with_identity
    async def catch_up(identity: IdentityService) -> None:
        """Match every Patient written so far (what a running server does continuously)."""
        done = await identity.catch_up()
        click.echo(f"{done:,} change-log entries read; {identity.matched:,} Patient versions matched")

    @group.command("review")
    @_storage
    @click.option("--state", default="open", show_default=True, help="open, same, not-same or closed.")
    @click.option("--limit", default=50, show_default=True)
    @with_identity
    async def review(identity: IdentityService, state: str, limit: int) -> None:
        """List the review queue: records that may belong to another Person."""
        for item in await identity.reviews(state, 0, limit):
            click.echo(f"{item.item}\tPerson/{item.person}\t{item.weight:+.1f} bits\trecord {item.rid}")

    @group.command("show")
    @_storage
    @click.argument("item", type=int)
    @with_identity
    async def show(identity: IdentityService, item: int) -> None:
        """Compare the two records of a review item side by side, with the score's waterfall."""
        found, left, right = await identity.review(item)
        click.echo(f"item {found.item} ({found.state}): may belong to Person/{found.person}")
        if left is not None and right is not None:
            a, b = orjson.loads(left.demographics), orjson.loads(right.demographics)
            for key in sorted(set(a) | set(b)):
                left_value, right_value = orjson.dumps(a.get(key)).decode(), orjson.dumps(b.get(key)).decode()
                click.echo(f"  {key}:\n    < {left_value}\n    > {right_value}")
            click.echo((await identity.explain(left, right)).explain())

    @group.command("decide")
    @_storage
    @click.argument("item", type=int)
    @click.argument("decision", type=click.Choice(["same", "not-same"]))
    @_actor
    @with_identity
    async def decide(identity: IdentityService, item: int, decision: str, actor: str, reason: str) -> None:
        """Decide a review item."""
        click.echo(orjson.dumps(await identity.decide(item, decision, actor, reason)).decode())

    @group.command("link")
    @_storage
    @click.argument("person")
    @click.argument("patient")
    @_actor
    @with_identity
    async def link(identity: IdentityService, person: str, patient: str, actor: str, reason: str) -> None:
        """Link PATIENT (tenant/Patient/id or its URL) to PERSON by hand (level4)."""
        ref = await identity.patient_ref(patient)
        click.echo(orjson.dumps(await identity.link(person, ref, actor, reason)).decode())

    @group.command("unlink")
    @_storage
    @click.argument("person")
    @click.argument("patient")
    @_actor
    @with_identity
    async def unlink(identity: IdentityService, person: str, patient: str, actor: str, reason: str) -> None:
        """Take PATIENT out of PERSON ("not the same person"); it gets a Person of its own."""
        ref = await identity.patient_ref(patient)
        click.echo(orjson.dumps(await identity.unlink(person, ref, actor, reason)).decode())

    @group.command("merge")
    @_storage
    @click.argument("target")
    @click.argument("source")
    @_actor
    @with_identity
    async def merge(identity: IdentityService, target: str, source: str, actor: str, reason: str) -> None:
        """Merge Person SOURCE into Person TARGET (undo with unmerge)."""
        click.echo(orjson.dumps(await identity.merge(target, source, actor, reason)).decode())

    @group.command("unmerge")
    @_storage
    @click.argument("target")
    @click.argument("source")
    @_actor
    @with_identity
    async def unmerge(identity: IdentityService, target: str, source: str, actor: str, reason: str) -> None:
        """Undo the last merge of Person SOURCE into Person TARGET."""
        click.echo(orjson.dumps(await identity.unmerge(target, source, actor, reason)).decode())

    @group.command("locate")
    @_storage
    @click.argument("person")
    @with_identity
    async def locate(identity: IdentityService, person: str) -> None:
        """Record locator: the organisations holding records of PERSON."""
        for place in await identity.locate(person):
            click.echo(f"{place.tenant}\t" + ", ".join(f"Patient/{p}" for p in place.patients))

    return group
