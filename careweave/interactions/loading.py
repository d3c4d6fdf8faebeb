"""Bulk load: NDJSON files, Bundles and folders of them into a tenant, streaming.

Rules:
1. Memory stays flat: NDJSON is read line by line, each Bundle file on its own, and resources are
   written in chunks (``chunk`` per write transaction, at most two chunks in flight).
2. Every resource is validated and indexed like an API write. A rejected resource (invalid JSON,
   a validation error, an unresolvable reference) is written with its reason to the report file
   (one JSON line each) and the load goes on.
3. Loading is idempotent: resources keep their ids (a Bundle entry's ``urn:uuid`` fullUrl gives its
   id), writes are updates, and an update that changes nothing stores nothing, so a second run of
   the same files changes nothing.
4. Conditional references (``Practitioner?identifier=...``) are resolved by search against the
   tenant (cached); a resource whose reference cannot be resolved yet is retried after all files,
   then rejected.
5. Files load in name order, Synthea's ``hospitalInformation*`` and ``practitionerInformation*``
   first (the resources others refer to).
6. The loader parses each resource once: a preparer (maybe in another process) gets its JSON, and
   the writer gets the loader's own parse of that same JSON.
"""

from __future__ import annotations

import asyncio
import gzip
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import IO, Any, Protocol, cast

import orjson

from careweave.bundles.plan import conditional_references, rewrite_references
from careweave.errors import CareweaveError
from careweave.fhir.model import is_valid_id
from careweave.interactions.common import criteria_plan
from careweave.interactions.context import Services
from careweave.search.index import IndexRows
from careweave.store import writes
from careweave.store.base import Tenant, Transaction

__all__ = ["InProcessPreparer", "LoadReport", "Prepared", "Preparer", "Rejected", "load_paths"]

_FIRST = ("hospitalInformation", "practitionerInformation")
Progress = Callable[[int, int], None]  # (resources read, resources stored)


@dataclass
class LoadReport:
    read: int = 0
    stored: int = 0  # new versions written
    unchanged: int = 0
    rejected: int = 0
    seconds: float = 0.0
    files: int = 0
    by_type: dict[str, int] = field(default_factory=dict)

    @property
    def rate(self) -> float:
        return self.read / self.seconds if self.seconds else 0.0


@dataclass(slots=True)
class _Item:
    source: str
    resource: dict[str, Any]


def _files(paths: list[Path]) -> list[Path]:
    found: list[Path] = []
    for path in paths:
        if path.is_dir():
            found.extend(p for p in path.rglob("*") if p.is_file() and _loadable(p))
        else:
            found.append(path)

    def order(p: Path) -> tuple[int, str]:
        return (0 if p.name.startswith(_FIRST) else 1, str(p))

    return sorted(found, key=order)


def _loadable(path: Path) -> bool:
    name = path.name.lower()
    return name.endswith((".ndjson", ".ndjson.gz", ".json", ".json.gz"))


def _open(path: Path) -> IO[bytes]:
    if path.name.endswith(".gz"):
        return cast(IO[bytes], gzip.GzipFile(path, "rb"))
    return path.open("rb")


def _read(path: Path, reject: Callable[[str, str, dict[str, Any] | None], None]) -> Iterator[_Item]:
    """Resources of one file, with bundle-local references already rewritten."""
    name = path.name.lower().removesuffix(".gz")
    with _open(path) as stream:
        if name.endswith(".ndjson"):
            for number, line in enumerate(stream, start=1):
                if not line.strip():
                    continue
                source = f"{path}:{number}"
                try:
                    resource = orjson.loads(line)
                except orjson.JSONDecodeError as exc:
                    reject(source, f"not JSON: {exc}", None)
                    continue
                if isinstance(resource, dict):
                    yield _Item(source, resource)
                else:
                    reject(source, "not a JSON object", None)
            return
        try:
            document = orjson.loads(stream.read())
        except orjson.JSONDecodeError as exc:
            reject(str(path), f"not JSON: {exc}", None)
            return
    if not isinstance(document, dict):
        reject(str(path), "not a JSON object", None)
    elif document.get("resourceType") == "Bundle" and document.get("type") in (
        "transaction",
        "batch",
        "collection",
        "searchset",
        "history",
    ):
        yield from _bundle_items(path, document, reject)
    else:
        yield _Item(str(path), document)


def _bundle_items(
    path: Path, bundle: dict[str, Any], reject: Callable[[str, str, dict[str, Any] | None], None]
) -> Iterator[_Item]:
    entries = [e for e in bundle.get("entry") or [] if isinstance(e, dict)]
    mapping: dict[str, str] = {}
    for entry in entries:
        resource = entry.get("resource")
        full_url = entry.get("fullUrl")
        if not isinstance(resource, dict) or not isinstance(resource.get("resourceType"), str):
            continue
        if not is_valid_id(resource.get("id")) and isinstance(full_url, str):
            tail = full_url.rsplit(":", 1)[-1].rsplit("/", 1)[-1]
            if is_valid_id(tail):
                resource["id"] = tail
        if isinstance(full_url, str) and is_valid_id(resource.get("id")):
            mapping[full_url] = f"{resource['resourceType']}/{resource['id']}"
    for number, entry in enumerate(entries):
        resource = entry.get("resource")
        source = f"{path}#entry[{number}]"
        method = (entry.get("request") or {}).get("method")
        if method == "DELETE" or not isinstance(resource, dict):
            if method != "DELETE":
                reject(source, "the entry has no resource", None)
            continue
        rewrite_references(resource, mapping, "")
        yield _Item(source, resource)


@dataclass(frozen=True, slots=True)
class Prepared:
    """A resource that passed validation, as JSON, with its index rows."""

    type: str
    body: bytes
    index: IndexRows


@dataclass(frozen=True, slots=True)
class Rejected:
    source: str
    reason: str
    type: str | None
    id: str | None


class Preparer(Protocol):
    """Validates and indexes chunks of (source, resource JSON): in process, or in worker processes
    (careweave.loadworkers.PoolPreparer)."""

    workers: int

    async def prepare(self, items: list[tuple[str, bytes]]) -> list[Prepared | Rejected]: ...

    def close(self) -> None: ...


class InProcessPreparer:
    workers = 0

    def __init__(self, services: Services, tenant: Tenant) -> None:
        self._services = services
        self._tenant = tenant

    async def prepare(self, items: list[tuple[str, bytes]]) -> list[Prepared | Rejected]:
        indexer = (await self._services.search.of(self._tenant)).indexer
        out: list[Prepared | Rejected] = []
        for source, raw in items:
            resource = orjson.loads(raw)
            type_ = resource.get("resourceType")
            issues = [i for i in self._services.validate(resource, self._tenant) if i.is_error]
            if issues:
                reason = "; ".join(f"{', '.join(i.expression) or type_}: {i.diagnostics}" for i in issues[:5])
                out.append(Rejected(source, reason, type_, resource.get("id")))
            else:
                out.append(Prepared(type_, raw, indexer.index(resource)))
        return out

    def close(self) -> None:
        return None


class _Loader:
    def __init__(
        self,
        services: Services,
        tenant: Tenant,
        report_file: IO[bytes] | None,
        chunk: int,
        preparer: Preparer,
    ) -> None:
        self.services = services
        self.tenant = tenant
        self.report_file = report_file
        self.chunk = chunk
        self.preparer = preparer
        self.report = LoadReport()
        self.refs: dict[str, str | None] = {}
        self.pending: list[tuple[str, bytes]] = []
        self.pending_resources: list[dict[str, Any]] = []  # the same resources, parsed
        self.preparing: list[tuple[asyncio.Future[list[Prepared | Rejected]], list[dict[str, Any]]]] = []
        self.writing: list[asyncio.Future[tuple[int, int]]] = []
        self.deferred: list[_Item] = []

    def reject(
        self,
        source: str,
        reason: str,
        resource: dict[str, Any] | None,
        type_: str | None = None,
        id_: str | None = None,
    ) -> None:
        self.report.rejected += 1
        if self.report_file is not None:
            line: dict[str, Any] = {"source": source, "reason": reason}
            if resource is not None:
                type_, id_ = resource.get("resourceType"), resource.get("id")
            if type_ is not None:
                line["resourceType"] = type_
                line["id"] = id_
            self.report_file.write(orjson.dumps(line) + b"\n")

    async def resolve(self, item: _Item, final: bool) -> bool:
        """Resolve the item's conditional references; False when one is not resolvable yet."""
        mapping: dict[str, str] = {}
        for ref in conditional_references(item.resource):
            if ref not in self.refs:
                self.refs[ref] = await self._search(ref)
            target = self.refs[ref]
            if target is None:
                if final:
                    self.reject(
                        item.source,
                        f"the conditional reference {ref} matches no single resource",
                        item.resource,
                    )
                else:
                    del self.refs[ref]  # look again later: the target may be in a later file
                    self.deferred.append(item)
                return False
            mapping[ref] = target
        if mapping:
            rewrite_references(item.resource, mapping, "")
        return True

    async def _search(self, ref: str) -> str | None:
        type_, _, query = ref.partition("?")
        try:
            plan = await criteria_plan(self.services, self.tenant, type_, query)
        except CareweaveError:
            return None
        page = await self.services.store.search(self.tenant, replace(plan, count=2))
        if len(page.matches) != 1:
            return None
        return f"{page.matches[0].type}/{page.matches[0].id}"

    async def add(self, item: _Item, final: bool = False) -> None:
        resource = item.resource
        type_ = resource.get("resourceType")
        if not isinstance(type_, str) or type_ not in self.services.resource_types:
            self.report.read += 1
            self.reject(item.source, f"unknown resourceType {type_!r}", resource)
            return
        raw = orjson.dumps(resource)
        # a conditional reference is a string with a "?" (which orjson never escapes): without one
        # there is nothing to resolve, and the resource need not be walked
        changed = b"?" in raw
        if changed and not await self.resolve(item, final):
            return
        self.report.read += 1
        if not is_valid_id(resource.get("id")):
            resource["id"] = self.services.new_id()
            changed = True
        self.pending.append((item.source, orjson.dumps(resource) if changed else raw))
        self.pending_resources.append(resource)
        if len(self.pending) >= self.chunk:
            await self._prepare_pending()

    async def _prepare_pending(self) -> None:
        if self.pending:
            chunk, self.pending = self.pending, []
            resources, self.pending_resources = self.pending_resources, []
            self.preparing.append((asyncio.ensure_future(self.preparer.prepare(chunk)), resources))
        depth = max(1, self.preparer.workers * 2)
        while len(self.preparing) > depth:
            await self._write_prepared()

    async def _write(self, results: list[Prepared | Rejected], resources: list[dict[str, Any]]) -> None:
        batch: list[writes.Prepared] = []
        for result, resource in zip(results, resources, strict=True):
            if isinstance(result, Rejected):
                self.reject(result.source, result.reason, None, result.type, result.id)
                continue
            # the loader's own parse of the resource: the same JSON as ``body`` (rule 6)
            batch.append(writes.Prepared(result.type, resource, result.index))
            self.report.by_type[result.type] = self.report.by_type.get(result.type, 0) + 1
        if batch:
            self.writing.append(asyncio.ensure_future(self.services.store.write(self.tenant, _store(batch))))
        while len(self.writing) > 2:
            await self._settle(self.writing.pop(0))

    async def _write_prepared(self) -> None:
        prepared, resources = self.preparing.pop(0)
        await self._write(await prepared, resources)

    async def _settle(self, write: asyncio.Future[tuple[int, int]]) -> None:
        stored, unchanged = await write
        self.report.stored += stored
        self.report.unchanged += unchanged

    async def drain(self) -> None:
        await self._prepare_pending()
        while self.preparing:
            await self._write_prepared()
        while self.writing:
            await self._settle(self.writing.pop(0))


def _store(batch: list[writes.Prepared]) -> Callable[[Transaction], tuple[int, int]]:
    def run(tx: Transaction) -> tuple[int, int]:
        stored = 0
        for prepared in batch:
            if writes.update(tx, prepared, prepared.resource["id"]).changed:
                stored += 1
        return stored, len(batch) - stored

    return run


async def load_paths(
    services: Services,
    tenant: Tenant,
    paths: list[Path],
    *,
    report_path: Path | None = None,
    progress: Progress | None = None,
    chunk: int = 250,
    preparer: Preparer | None = None,
) -> LoadReport:
    """Load every NDJSON file, Bundle and folder of them under ``paths`` into ``tenant``;
    validation and indexing run in ``preparer`` (in process when None)."""
    started = time.perf_counter()
    report_file = report_path.open("wb") if report_path is not None else None
    loader = _Loader(services, tenant, report_file, chunk, preparer or InProcessPreparer(services, tenant))
    try:
        files = _files(paths)
        loader.report.files = len(files)
        async for item in _items(files, loader):
            await loader.add(item)
            if progress is not None and loader.report.read % 1000 == 0:
                progress(loader.report.read, loader.report.stored)
        await loader.drain()
        retry, loader.deferred = loader.deferred, []
        for item in retry:
            await loader.add(item, final=True)
        await loader.drain()
    finally:
        if report_file is not None:
            report_file.close()
    loader.report.seconds = time.perf_counter() - started
    if progress is not None:
        progress(loader.report.read, loader.report.stored)
    return loader.report


async def _items(files: list[Path], loader: _Loader) -> AsyncIterator[_Item]:
    for path in files:
        for item in _read(path, loader.reject):
            yield item
        await asyncio.sleep(0)
