"""Validation and indexing of mapped resources in worker processes, beside the event loop.

Rules:
1. The gateway's CPU goes to parsing and mapping (cheap), validating and indexing (about two
   thirds), and the writes. A :class:`PreparePool` moves validating and indexing into spawned
   processes (never forked: the parent runs threads), so the event loop and the SQLite writer
   keep the parent's interpreter to themselves.
2. A worker builds the definitions, the validator and the base indexer once (about a second,
   with the function the composition root gives) and holds nothing else; it gets resources as
   JSON bytes and returns, for each, its index rows or the validation issues that refuse it. It
   never touches the store.
3. Tenants with their own search parameters are prepared in the parent (their indexer differs);
   ``validate_profiles`` travels with each call.
4. :func:`map_and_prepare` does the whole pure part of a message in the worker: parse, map,
   validate and index (about 80% of the gateway's CPU per message), so the parent keeps only
   the sockets, the ordering, the writes and the ACKs. A worker remembers what it validated and
   indexed by content (:class:`Recent`) and sends the index rows of a resource it has sent
   twice before as None: the parent has them cached, or prepares that resource itself (never
   stores anything unvalidated). Only content seen before is kept (``_RECENT`` of them): what a
   feed says once (the Provenance of each message, new results) would push out what it repeats,
   and full garbage collections, which pause the process, would walk it. What was said once
   just before (the last ``_TRIAL`` contents) is on trial: when it comes again its rows are sent
   again without validating and indexing it a second time, and it is kept.
5. Objects built at start-up are moved out of the garbage collector's sight (``gc.freeze``): the
   definitions are large and never freed, and full collections walking them cost more than the
   work between them.
6. Each worker has one pipe, which the parent's event loop reads (``add_reader``): a request is
   one write, a result one read, with no executor threads competing for the parent's GIL. At
   most ``_IN_FLIGHT`` requests of at most ``MAX_REQUEST`` bytes wait on a worker, so the parent
   never blocks writing to a pipe. A worker that dies fails its requests with
   :class:`WorkerGone` and the parent does that work itself.
7. Index rows cross the pipe as plain tuples of their fields (:func:`_pack`, :func:`_unpack`):
   unpickling a slotted dataclass costs the parent, whose CPU is the scarce one, several times
   what building it from a tuple does. The mapping options are pickled once per pool.
8. Results go back in batches: a worker that finishes a request while others wait in its pipe
   holds the result (``_HOLD`` seconds at most, ``_IN_FLIGHT`` results at most) and sends what
   it holds in one write when its pipe is empty. The parent reads several results per wake-up,
   and their messages reach the writer together, to share a commit (commit.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import gc
import itertools
import logging
import multiprocessing
import pickle
import time
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from typing import Any, Generic, TypeVar

import orjson

from careweave.errors import Category, Issue
from careweave.hl7v2.errors import Hl7v2Error, Location
from careweave.hl7v2.mapping import MapOptions, map_message
from careweave.hl7v2.message import parse
from careweave.interactions.context import Validate
from careweave.search.index import IndexRows
from careweave.search.indexer import Indexer
from careweave.store.base import Tenant

__all__ = [
    "Mapped",
    "Parts",
    "PreparePool",
    "Recent",
    "SecondSight",
    "WorkerGone",
    "init_worker",
    "map_and_prepare",
    "prepare_resources",
]

log = logging.getLogger("careweave.gateway")

Prepared = IndexRows | list[Issue]
K = TypeVar("K", bound=Hashable)
V = TypeVar("V")
_RECENT = 4096  # resources a worker remembers as validated and indexed, by content
_SEEN = 16_384  # contents seen once, by hash (SecondSight)
_TRIAL = 512  # contents seen once, with their index rows (Recent)
_IN_FLIGHT = 4  # requests sent to one worker and not answered yet, at most (rule 6)
_HOLD = 0.002  # seconds a worker holds finished results while more requests wait (rule 8)


Parts = tuple[Validate, Indexer]
"""What a worker builds once: the validator and the base indexer (the composition root says how)."""


@dataclass(slots=True)
class _Worker:
    validate: Validate
    indexer: Indexer
    tenants: dict[bool, Tenant]
    recent: Recent[tuple[bool, bytes], Prepared]


@dataclass(frozen=True, slots=True)
class Mapped:
    """What a worker made of one message (rule 4): ``entries`` are (request URL, content as
    sorted JSON, index rows, the issues that refuse it, or None when this worker sent the rows
    before), or ``failure`` the fields of the :class:`Hl7v2Error` that stopped the mapping."""

    entries: list[tuple[str, bytes, Prepared | None]]
    failure: tuple[str, str, Category, Location | None] | None = None

    def error(self) -> Exception | None:
        if self.failure is None:
            return None
        diagnostics, code, category, location = self.failure
        if category is Category.FAULT:
            return RuntimeError(diagnostics)  # a mapper bug: answered as an internal error
        return Hl7v2Error(diagnostics, code, category, location)


class SecondSight:
    """Which contents a cache takes (rule 4): those seen before. Remembers the hashes of the last
    ``size`` contents seen once (a collision only admits one early)."""

    def __init__(self, size: int = _SEEN) -> None:
        self._size = size
        self._once: dict[int, None] = {}

    def again(self, key: Hashable) -> bool:
        """True when ``key`` was seen before (it is forgotten then), else remember it."""
        h = hash(key)
        if h in self._once:
            del self._once[h]
            return True
        if len(self._once) >= self._size:
            del self._once[next(iter(self._once))]  # the oldest
        self._once[h] = None
        return False


class Recent(Generic[K, V]):
    """A cache by content that keeps what repeats (rule 4). A value put for the first time is on
    trial (the last ``trial`` of them): found again, it is kept. Keys whose trial ended are
    remembered by hash (:class:`SecondSight`): put again, they are kept at once. The last
    ``size`` kept values stay; what a feed says once passes through the trial alone."""

    def __init__(self, size: int = _RECENT, trial: int = _TRIAL) -> None:
        self._size = size
        self._trial_size = trial
        self._kept: dict[K, V] = {}
        self._trial: dict[K, V] = {}
        self._seen = SecondSight()

    def __len__(self) -> int:
        return len(self._kept)

    def kept(self, key: K) -> V | None:
        """A value kept (seen at least twice)."""
        return self._kept.get(key)

    def tried(self, key: K) -> V | None:
        """A value on trial, which is kept from now on."""
        found = self._trial.pop(key, None)
        if found is not None:
            self._keep(key, found)
        return found

    def get(self, key: K) -> V | None:
        found = self._kept.get(key)
        return found if found is not None else self.tried(key)

    def put(self, key: K, value: V, *, trial: bool = True) -> None:
        """Keep ``value`` if ``key`` was seen before, else put it on trial (``trial`` False: only
        remember that the key was seen)."""
        if key in self._kept or self._seen.again(key):
            self._keep(key, value)
            return
        if not trial:
            return
        if len(self._trial) >= self._trial_size:
            del self._trial[next(iter(self._trial))]  # the oldest
        self._trial[key] = value

    def _keep(self, key: K, value: V) -> None:
        self._kept.pop(key, None)
        if len(self._kept) >= self._size:
            del self._kept[next(iter(self._kept))]  # the oldest
        self._kept[key] = value


_worker: _Worker | None = None  # one per worker process, set by init_worker
_ROW_FIELDS = tuple(f.name for f in dataclasses.fields(IndexRows))


def _flat(prepared: Prepared | None) -> Any:
    return tuple([getattr(prepared, n) for n in _ROW_FIELDS]) if isinstance(prepared, IndexRows) else prepared


def _rows(flat: Any) -> Prepared | None:
    return IndexRows(*flat) if isinstance(flat, tuple) else flat


def _pack(result: Any) -> Any:
    """A call's result as it crosses the pipe (rule 7)."""
    if isinstance(result, Mapped):
        return ("m", [(url, content, _flat(p)) for url, content, p in result.entries], result.failure)
    if isinstance(result, list):
        return ("p", [_flat(p) for p in result])
    return ("r", result)


def _unpack(packed: Any) -> Any:
    kind = packed[0]
    if kind == "m":
        return Mapped([(url, content, _rows(flat)) for url, content, flat in packed[1]], packed[2])
    if kind == "p":
        return [_rows(flat) for flat in packed[1]]
    return packed[1]


def init_worker(build: Callable[[], Parts]) -> None:
    global _worker
    validate, indexer = build()
    tenants = {flag: Tenant(0, "", {"validate_profiles": flag}) for flag in (False, True)}
    _worker = _Worker(validate, indexer, tenants, Recent())
    gc.freeze()  # rule 5


def prepare_resources(items: Sequence[bytes], validate_profiles: bool) -> list[Prepared]:
    """Rule 2: index rows, or the issues when a resource is refused (errors and warnings)."""
    assert _worker is not None, "init_worker was not run"
    tenant = _worker.tenants[validate_profiles]
    out: list[Prepared] = []
    for raw in items:
        resource = orjson.loads(raw)
        issues = _worker.validate(resource, tenant)
        if any(i.is_error for i in issues):
            out.append(issues)
        else:
            out.append(_worker.indexer.index(resource))
    return out


def map_and_prepare(raw: bytes, options: MapOptions, validate_profiles: bool) -> Mapped:
    """Rule 4: parse, map, validate and index one message."""
    assert _worker is not None, "init_worker was not run"
    try:
        bundle = map_message(parse(raw), options)
    except Hl7v2Error as exc:
        return Mapped([], (exc.diagnostics, exc.code, exc.category, exc.location))
    except Exception as exc:  # a mapper bug: the message goes to the error queue, not lost
        log.error("mapping raised %s", type(exc).__name__)
        return Mapped([], (type(exc).__name__, "207", Category.FAULT, None))
    tenant = _worker.tenants[validate_profiles]
    recent = _worker.recent
    entries: list[tuple[str, bytes, Prepared | None]] = []
    here: dict[bytes, Prepared] = {}  # this message's contents: their rows are sent once
    for entry in bundle["entry"]:
        resource = entry["resource"]
        url = entry["request"]["url"]
        content = orjson.dumps(resource, option=orjson.OPT_SORT_KEYS)
        known = here.get(content)
        if known is None:
            known = recent.kept((validate_profiles, content))
        if known is not None:  # sent before: the parent has the rows
            entries.append((url, content, known if isinstance(known, list) else None))
            continue
        prepared = recent.tried((validate_profiles, content))  # sent once: send the rows again
        if prepared is None:
            issues = _worker.validate(resource, tenant)
            prepared = issues if any(i.is_error for i in issues) else _worker.indexer.index(resource)
            recent.put((validate_profiles, content), prepared)
        here[content] = prepared
        entries.append((url, content, prepared))
    return Mapped(entries)


def _serve(conn: Connection, build: Callable[[], Parts]) -> None:
    """A worker process's loop (rule 6): requests in, results out, until the pipe closes."""
    init_worker(build)
    conn.send_bytes(b"ready")
    options: dict[bytes, MapOptions] = {}

    def map_packed(raw: bytes, packed: bytes, validate_profiles: bool) -> Mapped:
        found = options.get(packed)
        if found is None:
            found = options[packed] = pickle.loads(packed)
        return map_and_prepare(raw, found, validate_profiles)

    calls: dict[str, Callable[..., Any]] = {"map": map_packed, "prepare": prepare_resources}
    held: list[tuple[int, bool, Any]] = []  # finished, not sent yet (rule 8)
    since = 0.0
    while True:
        if held and (len(held) >= _IN_FLIGHT or time.monotonic() - since >= _HOLD or not conn.poll(0)):
            try:
                conn.send_bytes(pickle.dumps(held, protocol=pickle.HIGHEST_PROTOCOL))
            except OSError:
                return
            held = []
        try:
            seq, name, args = pickle.loads(conn.recv_bytes())
        except (EOFError, OSError):
            return
        try:
            reply = (seq, True, _pack(calls[name](*args)))
        except Exception as exc:  # a bug: the caller gets an error, the worker goes on
            reply = (seq, False, type(exc).__name__)
        if not held:
            since = time.monotonic()
        held.append(reply)


@dataclass(slots=True)
class _Link:
    """The parent's end of one worker."""

    process: BaseProcess
    conn: Connection
    slots: asyncio.Semaphore
    futures: dict[int, asyncio.Future[Any]]
    alive: bool = True


class WorkerGone(RuntimeError):
    """No worker can take the request (they died or were closed): do the work in-process."""


class PreparePool:
    """``workers`` spawned processes running :func:`map_and_prepare` and :func:`prepare_resources`
    (rule 6: one pipe each, read by the event loop; no executor threads)."""

    MAX_REQUEST = 24 * 1024  # larger messages are mapped in the parent (a pipe never fills up)

    def __init__(self, workers: int, build: Callable[[], Parts]) -> None:
        """``build`` runs in each worker (a module-level function: it is pickled by name)."""
        self.workers = workers
        self._build = build
        self._links: list[_Link] = []
        self._seq = itertools.count()
        self._options: dict[MapOptions, bytes] = {}

    async def start(self) -> None:
        """Start every worker now (each loads the definitions) rather than on the first message."""
        context = multiprocessing.get_context("spawn")
        loop = asyncio.get_running_loop()
        for _ in range(self.workers):
            parent, child = context.Pipe(duplex=True)
            process = context.Process(target=_serve, args=(child, self._build), daemon=True)
            process.start()
            child.close()
            self._links.append(_Link(process, parent, asyncio.Semaphore(_IN_FLIGHT), {}))
        for link in self._links:
            ready = await loop.run_in_executor(None, link.conn.recv_bytes)
            if ready != b"ready":  # pragma: no cover - a worker that cannot start raises earlier
                raise WorkerGone("a gateway worker did not start")
            loop.add_reader(link.conn.fileno(), self._readable, link)

    async def prepare(self, items: Sequence[bytes], validate_profiles: bool) -> list[Prepared]:
        result: list[Prepared] = await self._call("prepare", (list(items), validate_profiles))
        return result

    async def map_and_prepare(self, raw: bytes, options: MapOptions, validate_profiles: bool) -> Mapped:
        packed = self._options.get(options)
        if packed is None:  # pickled once: a time zone costs more to pickle than the message
            packed = self._options[options] = pickle.dumps(options, protocol=pickle.HIGHEST_PROTOCOL)
        result: Mapped = await self._call("map", (raw, packed, validate_profiles))
        return result

    async def _call(self, name: str, args: tuple[Any, ...]) -> Any:
        live = [link for link in self._links if link.alive]
        if not live:
            raise WorkerGone("no gateway worker is running")
        link = min(live, key=lambda k: len(k.futures))
        async with link.slots:
            if not link.alive:
                raise WorkerGone("the gateway worker stopped")
            seq = next(self._seq)
            future = asyncio.get_running_loop().create_future()
            link.futures[seq] = future
            try:
                link.conn.send_bytes(pickle.dumps((seq, name, args), protocol=pickle.HIGHEST_PROTOCOL))
                return await future
            except OSError as exc:
                self._lost(link)
                raise WorkerGone("the gateway worker stopped") from exc
            finally:
                link.futures.pop(seq, None)

    def _readable(self, link: _Link) -> None:
        try:
            replies = pickle.loads(link.conn.recv_bytes())
        except (EOFError, OSError):
            self._lost(link)
            return
        for seq, ok, result in replies:
            future = link.futures.pop(seq, None)
            if future is None or future.done():
                continue
            if ok:
                future.set_result(_unpack(result))
            else:
                future.set_exception(RuntimeError(f"gateway worker: {result}"))

    def _lost(self, link: _Link) -> None:
        if not link.alive:
            return
        link.alive = False
        log.error("a gateway worker process stopped (exit code %s)", link.process.exitcode)
        with contextlib.suppress(Exception):
            asyncio.get_running_loop().remove_reader(link.conn.fileno())
        for future in link.futures.values():
            if not future.done():
                future.set_exception(WorkerGone("the gateway worker stopped"))

    def close(self) -> None:
        for link in self._links:
            if link.alive:
                link.alive = False
                with contextlib.suppress(Exception):
                    asyncio.get_running_loop().remove_reader(link.conn.fileno())
            link.conn.close()  # the worker reads EOF and ends
        for link in self._links:
            link.process.join(5)
            if link.process.is_alive():
                link.process.terminate()
                link.process.join(5)
        self._links = []
