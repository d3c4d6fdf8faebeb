"""Bulk load: NDJSON files, Bundles and folders of them into a tenant, streaming.

Rules:
1. Memory stays flat: NDJSON is read ``chunk`` lines at a time, each Bundle file on its own; a
   bounded number of chunks is being prepared or written at any time. Each prepared chunk is a
   write job; where the store runs several jobs in one transaction (SqliteStore.write_all), the
   loader sends them ``write_size`` resources at a time: fewer, larger transactions cost the
   writer less per resource, and each chunk keeps its own clock (meta.lastUpdated).
2. Every resource is validated and indexed like an API write. A rejected resource (invalid JSON,
   a validation error, an unresolvable reference) is written with its reason to the report file
   (one JSON line each, the file created at the first one) and the load goes on.
3. Loading is idempotent: resources keep their ids (a Bundle entry's ``urn:uuid`` fullUrl gives its
   id), writes are updates, and an update that changes nothing stores nothing, so a second run of
   the same files changes nothing.
4. Conditional references (``Practitioner?identifier=...``) are resolved by search against the
   tenant (cached; a target not found is looked for again once every resource prepared so far has
   been written); a resource whose reference cannot be resolved yet is retried after all files,
   then rejected.
5. Files load in name order, Synthea's ``hospitalInformation*`` and ``practitionerInformation*``
   first (the resources others refer to).
6. The loader hands NDJSON lines to a preparer unparsed. The preparer (maybe in another process:
   careweave.loadworkers) parses, checks, validates, indexes and serialises each resource
   (store.writes.serialise), so the loader only resolves conditional references, which need the
   store, and writes. A resource holding one comes back to the loader, which resolves it and sends
   it again with the targets.
"""

from __future__ import annotations

import asyncio
import gzip
import itertools
import pickle
import time
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import IO, Any, NamedTuple, Protocol, cast

import orjson

from careweave.bundles.plan import conditional_references, rewrite_references
from careweave.errors import CareweaveError, Issue
from careweave.fhir.model import is_valid_id
from careweave.interactions.common import criteria_plan
from careweave.interactions.context import Services
from careweave.search.index import IndexRows
from careweave.store import writes
from careweave.store.base import Tenant, Transaction

__all__ = [
    "WRITE_SIZE",
    "Chunk",
    "InProcessPreparer",
    "LoadReport",
    "Prepared",
    "Preparer",
    "Rejected",
    "Tools",
    "Waiting",
    "load_paths",
    "prepare_chunk",
]

_FIRST = ("hospitalInformation", "practitionerInformation")
# resources per transaction (rule 1): the writer's CPU per resource falls with the transaction's
# size (SQLite writes each changed page once per commit; 250 -> 2000 saves ~20 us a resource),
# little beyond; chunks waiting for it are held pickled, each unpickled by its own write job
WRITE_SIZE = 2000
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


# -- what the loader and a preparer exchange ---------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Chunk:
    """Resources to prepare, as JSON: lines of an NDJSON file (``path``, the first being line
    ``first``; blank ones are skipped), or resources with their own ``sources`` (Bundle entries,
    retries), each maybe with its resolved conditional references (``mappings``)."""

    lines: list[bytes]
    path: str = ""
    first: int = 1
    sources: list[str] | None = None
    mappings: list[dict[str, str]] | None = None

    def source(self, i: int) -> str:
        return self.sources[i] if self.sources is not None else f"{self.path}:{self.first + i}"


class Rejected(NamedTuple):
    source: str
    reason: str
    type: Any  # the resource's resourceType and id as sent (None: not a resource)
    id: Any


class Waiting(NamedTuple):
    """A resource holding conditional references, for the loader to resolve (rule 6)."""

    source: str
    line: bytes
    references: tuple[str, ...]
    type: str
    id: Any


@dataclass(slots=True)
class Prepared:
    """A chunk, prepared: the resources to store, and the ones rejected or waiting."""

    resources: list[writes.Serialised] = field(default_factory=list)
    rejected: list[Rejected] = field(default_factory=list)
    waiting: list[Waiting] = field(default_factory=list)
    read: int = 0  # resources read (waiting ones and lines that are no resource aside)
    by_type: dict[str, int] = field(default_factory=dict)  # resources to store, per type
    # or the resources pickled (by a worker process: :func:`pack`), unpickled by the write job
    packed: bytes = b""

    def pack(self) -> None:
        """Pickle the resources: the loader keeps them as bytes until their write job unpickles
        them, so the garbage collector never walks the objects of chunks waiting to be written."""
        if self.resources:
            self.packed = pickle.dumps(self.resources, protocol=pickle.HIGHEST_PROTOCOL)
            self.resources = []

    @property
    def count(self) -> int:
        """Resources to store."""
        return sum(self.by_type.values())


@dataclass(frozen=True, slots=True)
class Tools:
    """What preparing needs: the tenant's validation and indexer, the resource types, new ids."""

    validate: Callable[[dict[str, Any]], list[Issue]]
    index: Callable[[dict[str, Any]], IndexRows]
    resource_types: frozenset[str]
    new_id: Callable[[], str]


def prepare_chunk(chunk: Chunk, tools: Tools) -> Prepared:
    """Parse, check, validate, index and serialise each resource of ``chunk``."""
    out = Prepared()
    mappings = chunk.mappings
    for i, line in enumerate(chunk.lines):
        if not line.strip():
            continue
        try:
            resource = orjson.loads(line)
        except orjson.JSONDecodeError as exc:
            out.rejected.append(Rejected(chunk.source(i), f"not JSON: {exc}", None, None))
            continue
        if not isinstance(resource, dict):
            out.rejected.append(Rejected(chunk.source(i), "not a JSON object", None, None))
            continue
        type_ = resource.get("resourceType")
        if not isinstance(type_, str) or type_ not in tools.resource_types:
            out.read += 1
            reason = f"unknown resourceType {type_!r}"
            out.rejected.append(Rejected(chunk.source(i), reason, type_, resource.get("id")))
            continue
        if mappings is not None:
            rewrite_references(resource, mappings[i], "")
        # a conditional reference holds a "?", in the line as itself or escaped
        if b"?" in line or b"\\u003f" in line or b"\\u003F" in line:
            references = conditional_references(resource)
            if references:
                out.waiting.append(
                    Waiting(chunk.source(i), line, tuple(references), type_, resource.get("id"))
                )
                continue
        out.read += 1
        prepared = _prepare_one(resource, type_, tools)
        if isinstance(prepared, str):
            out.rejected.append(Rejected(chunk.source(i), prepared, type_, resource["id"]))
        else:
            out.resources.append(prepared)
            out.by_type[type_] = out.by_type.get(type_, 0) + 1
    return out


def _prepare_one(resource: dict[str, Any], type_: str, tools: Tools) -> writes.Serialised | str:
    """The resource (given an id if it has no valid one) ready to store, or why it is rejected."""
    if not is_valid_id(resource.get("id")):
        resource["id"] = tools.new_id()
    issues = [issue for issue in tools.validate(resource) if issue.is_error]
    if issues:
        return "; ".join(f"{', '.join(i.expression) or type_}: {i.diagnostics}" for i in issues[:5])
    return writes.serialise(resource, tools.index(resource))


class Preparer(Protocol):
    """Prepares chunks (:func:`prepare_chunk`): in process, or in worker processes
    (careweave.loadworkers.PoolPreparer)."""

    workers: int

    async def prepare(self, chunk: Chunk) -> Prepared: ...

    def close(self) -> None: ...


class InProcessPreparer:
    workers = 0

    def __init__(self, services: Services, tenant: Tenant) -> None:
        self._services = services
        self._tenant = tenant

    async def prepare(self, chunk: Chunk) -> Prepared:
        services, tenant = self._services, self._tenant
        indexer = (await services.search.of(tenant)).indexer
        validate = services.validate
        return prepare_chunk(
            chunk,
            Tools(lambda r: validate(r, tenant), indexer.index, services.resource_types, services.new_id),
        )

    def close(self) -> None:
        return None


# -- reading ------------------------------------------------------------------------------------------
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


Reject = Callable[[Rejected], None]


def _chunks(path: Path, size: int, reject: Reject) -> Iterator[Chunk]:
    """The resources of one file in chunks of ``size``, Bundle-local references already rewritten."""
    name = path.name.lower().removesuffix(".gz")
    with _open(path) as stream:
        if name.endswith(".ndjson"):
            first = 1
            while lines := list(itertools.islice(stream, size)):
                yield Chunk(lines, str(path), first)
                first += len(lines)
            return
        try:
            document = orjson.loads(stream.read())
        except orjson.JSONDecodeError as exc:
            reject(Rejected(str(path), f"not JSON: {exc}", None, None))
            return
    if not isinstance(document, dict):
        reject(Rejected(str(path), "not a JSON object", None, None))
    elif document.get("resourceType") == "Bundle" and document.get("type") in (
        "transaction",
        "batch",
        "collection",
        "searchset",
        "history",
    ):
        entries = _bundle_entries(path, document, reject)
        while batch := list(itertools.islice(entries, size)):
            yield Chunk([orjson.dumps(r) for _, r in batch], sources=[s for s, _ in batch])
    else:
        yield Chunk([orjson.dumps(document)], sources=[str(path)])


def _bundle_entries(
    path: Path, bundle: dict[str, Any], reject: Reject
) -> Iterator[tuple[str, dict[str, Any]]]:
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
                reject(Rejected(source, "the entry has no resource", None, None))
            continue
        rewrite_references(resource, mapping, "")
        yield source, resource


# -- loading ------------------------------------------------------------------------------------------
class _Loader:
    def __init__(
        self,
        services: Services,
        tenant: Tenant,
        report_path: Path | None,
        chunk: int,
        preparer: Preparer,
        write_size: int,
    ) -> None:
        self.services = services
        self.tenant = tenant
        self.report_path = report_path
        self.report_file: IO[bytes] | None = None
        self.chunk = chunk
        self.preparer = preparer
        self.depth = max(1, preparer.workers * 2)  # chunks being prepared
        self.report = LoadReport()
        self.refs: dict[str, str | None] = {}
        self.preparing: deque[asyncio.Future[Prepared]] = deque()
        self.writing: deque[asyncio.Future[tuple[int, int]]] = deque()
        self.write_size = max(1, write_size)
        # the store's write of several jobs in one transaction (SqliteStore.write_all), if any
        self.write_all: Callable[[Tenant, list[Any]], Awaitable[list[tuple[int, int]]]] | None = getattr(
            services.store, "write_all", None
        )
        self.unwritten: list[list[writes.Serialised] | bytes] = []  # for the next write job
        self.unwritten_count = 0  # resources in self.unwritten
        self.deferred: list[Waiting] = []
        self.final = False  # retrying the deferred: an unresolvable reference is a rejection

    def reject(self, rejected: Rejected) -> None:
        self.report.rejected += 1
        if self.report_path is None:
            return
        if self.report_file is None:
            self.report_file = self.report_path.open("wb")  # rule 2: only when something is rejected
        line: dict[str, Any] = {"source": rejected.source, "reason": rejected.reason}
        if rejected.type is not None:
            line["resourceType"] = rejected.type
            line["id"] = rejected.id
        self.report_file.write(orjson.dumps(line) + b"\n")

    def close(self) -> None:
        if self.report_file is not None:
            self.report_file.close()

    async def add(self, chunk: Chunk) -> None:
        self.preparing.append(asyncio.ensure_future(self.preparer.prepare(chunk)))
        while len(self.preparing) > self.depth:
            await self._take()

    async def _take(self) -> None:
        prepared = await self.preparing.popleft()
        report = self.report
        report.read += prepared.read
        for type_, count in prepared.by_type.items():
            report.by_type[type_] = report.by_type.get(type_, 0) + count
        for rejected in prepared.rejected:
            self.reject(rejected)
        if prepared.resources or prepared.packed:
            self.unwritten.append(prepared.packed or prepared.resources)
            self.unwritten_count += prepared.count
            if self.unwritten_count >= self.write_size or self.write_all is None:
                self._write()
        if prepared.waiting:
            await self._resolve_all(prepared.waiting, self.final)
        while len(self.writing) > 2:
            await self._settle(self.writing.popleft())

    async def _written(self) -> None:
        """Write what is prepared and wait until every write has committed."""
        self._write()
        while self.writing:
            await self._settle(self.writing.popleft())

    def _write(self) -> None:
        """Send the prepared chunks not yet sent to the store: a write job each, in one
        transaction where the store offers it (rule 1)."""
        if not self.unwritten:
            return
        jobs = [_store(part) for part in self.unwritten]
        self.unwritten = []
        self.unwritten_count = 0
        if self.write_all is not None:
            outcomes = self.write_all(self.tenant, jobs)
        else:
            outcomes = asyncio.gather(*(self.services.store.write(self.tenant, job) for job in jobs))
        self.writing.append(asyncio.ensure_future(_totals(outcomes)))

    async def _resolve_all(self, waiting: list[Waiting], final: bool) -> None:
        """Send the resources whose conditional references resolve to be prepared again."""
        resolved: list[tuple[Waiting, dict[str, str]]] = []
        for item in waiting:
            mapping = await self._resolve(item, final)
            if mapping is not None:
                resolved.append((item, mapping))
        for start in range(0, len(resolved), self.chunk):
            part = resolved[start : start + self.chunk]
            chunk = Chunk(
                [w.line for w, _ in part], sources=[w.source for w, _ in part], mappings=[m for _, m in part]
            )
            self.preparing.append(asyncio.ensure_future(self.preparer.prepare(chunk)))

    async def _resolve(self, item: Waiting, final: bool) -> dict[str, str] | None:
        """The item's conditional references resolved; None when one is not resolvable yet."""
        mapping: dict[str, str] = {}
        for ref in item.references:
            if ref not in self.refs:
                target = await self._search(ref)
                if target is None and (self.unwritten or self.writing):
                    await self._written()  # the target may be among them
                    target = await self._search(ref)
                self.refs[ref] = target
            target = self.refs[ref]
            if target is None:
                if final:
                    reason = f"the conditional reference {ref} matches no single resource"
                    self.reject(Rejected(item.source, reason, item.type, item.id))
                else:
                    del self.refs[ref]  # look again later: the target may be in a later file
                    self.deferred.append(item)
                return None
            mapping[ref] = target
        return mapping

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

    async def _settle(self, write: asyncio.Future[tuple[int, int]]) -> None:
        stored, unchanged = await write
        self.report.stored += stored
        self.report.unchanged += unchanged

    async def drain(self) -> None:
        while self.preparing:
            await self._take()
        await self._written()

    async def retry_deferred(self) -> None:
        retry, self.deferred = self.deferred, []
        self.final = True
        if retry:
            await self._resolve_all(retry, final=True)
        await self.drain()


def _store(part: list[writes.Serialised] | bytes) -> Callable[[Transaction], tuple[int, int]]:
    """The write job of a prepared chunk's resources (unpickled here when pickled)."""

    def run(tx: Transaction) -> tuple[int, int]:
        resources: list[writes.Serialised] = pickle.loads(part) if isinstance(part, bytes) else part
        stored = writes.update_serialised(tx, resources)
        return stored, len(resources) - stored

    return run


async def _totals(outcomes: Awaitable[list[tuple[int, int]]]) -> tuple[int, int]:
    """(stored, unchanged) of several write jobs."""
    done = await outcomes
    return sum(stored for stored, _ in done), sum(unchanged for _, unchanged in done)


async def load_paths(
    services: Services,
    tenant: Tenant,
    paths: list[Path],
    *,
    report_path: Path | None = None,
    progress: Progress | None = None,
    chunk: int = 250,
    preparer: Preparer | None = None,
    write_size: int = WRITE_SIZE,
) -> LoadReport:
    """Load every NDJSON file, Bundle and folder of them under ``paths`` into ``tenant``;
    preparation runs in ``preparer`` (in process when None), writes ``write_size`` resources at a
    time. ``report_path`` is created at the first rejected resource."""
    started = time.perf_counter()
    loader = _Loader(
        services, tenant, report_path, chunk, preparer or InProcessPreparer(services, tenant), write_size
    )
    try:
        files = _files(paths)
        loader.report.files = len(files)
        shown = 0
        async for item in _all_chunks(files, chunk, loader):
            await loader.add(item)
            if progress is not None and loader.report.read - shown >= 1000:
                shown = loader.report.read
                progress(loader.report.read, loader.report.stored)
        await loader.drain()
        await loader.retry_deferred()
    finally:
        loader.close()
    loader.report.seconds = time.perf_counter() - started
    if progress is not None:
        progress(loader.report.read, loader.report.stored)
    return loader.report


async def _all_chunks(files: list[Path], size: int, loader: _Loader) -> AsyncIterator[Chunk]:
    for path in files:
        for chunk in _chunks(path, size, loader.reject):
            yield chunk
            await asyncio.sleep(0)
