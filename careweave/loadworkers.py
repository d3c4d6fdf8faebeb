"""Worker processes for bulk load: preparing chunks in parallel with the writer.

A :class:`PoolPreparer` is what ``careweave load`` hands to
:func:`careweave.interactions.loading.load_paths` when it runs with workers.

Rules:
1. A worker is a spawned process (never forked: the parent runs threads). Its initializer builds
   the definitions, the validator and the tenant's indexer once (about a second), then freezes
   them out of the garbage collector's way; the parent sends chunks of NDJSON lines and gets back
   each chunk prepared (careweave.interactions.loading.prepare_chunk): resources serialised with
   their index rows, ready for the writer, and the ones rejected or waiting for references.
2. Workers hold no state between chunks beyond what the initializer built; they never touch the
   store, so the parent's single writer keeps every write serial and durable.
3. Results travel compactly: index rows and serialised resources pickle as their constructor's
   arguments (a few C-level calls in the parent), not as dataclass state, and stay pickled in the
   parent until their write job unpickles them (``Prepared.pack``).
"""

from __future__ import annotations

import asyncio
import copyreg
import gc
import multiprocessing
import operator
from collections.abc import Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, fields
from typing import Any

from careweave.interactions.context import new_id
from careweave.interactions.loading import Chunk, Prepared, Tools, prepare_chunk
from careweave.search.custom import registry_with
from careweave.search.index import IndexRows
from careweave.search.indexer import Indexer
from careweave.store.base import Tenant
from careweave.store.writes import Serialised
from careweave.system import _validate, load_definitions

__all__ = ["PoolPreparer", "WorkerConfig", "freeze_heap", "init_worker", "prepare"]

# collect young objects every 20,000 allocations, not 700: a load allocates a lot, and nearly all
# of it dies young (freed by reference counting before a collection would look at it)
_GC_THRESHOLD = (20_000, 10, 10)


@dataclass(frozen=True, slots=True)
class WorkerConfig:
    settings: Mapping[str, Any]  # the tenant's settings (validate_profiles)
    custom: Sequence[tuple[str, Mapping[str, Any]]]  # the tenant's custom parameters, all states


def _tools(config: WorkerConfig) -> Tools:
    defs = load_definitions()
    registry = registry_with(defs.search_params, config.custom) if config.custom else (defs.search_params)
    indexer = Indexer(registry, defs.engine, defs.code_systems)
    validate = _validate(defs)
    tenant = Tenant(0, "", dict(config.settings))
    return Tools(lambda r: validate(r, tenant), indexer.index, defs.model.resource_types, new_id)


_row_fields = operator.attrgetter(*(f.name for f in fields(IndexRows)))  # in constructor order


def _reduce_rows(rows: IndexRows) -> tuple[type[IndexRows], tuple[Any, ...]]:
    return IndexRows, _row_fields(rows)


def _reduce_serialised(item: Serialised) -> tuple[type[Serialised], tuple[Any, ...]]:
    return Serialised, (item.type, item.id, item.head, item.tail, item.index)


def freeze_heap() -> None:
    """Move everything built so far (definitions, registries) out of the collector's way for good,
    collect less often, and turn collection on (a load process may build with it off)."""
    gc.freeze()
    gc.set_threshold(*_GC_THRESHOLD)
    gc.enable()


_tools_here: Tools | None = None  # one per worker process, set by init_worker


def init_worker(config: WorkerConfig) -> None:
    global _tools_here
    gc.disable()  # building: nothing to collect
    _tools_here = _tools(config)
    copyreg.pickle(IndexRows, _reduce_rows)  # rule 3
    copyreg.pickle(Serialised, _reduce_serialised)
    freeze_heap()  # rule 1


def prepare(chunk: Chunk) -> Prepared:
    assert _tools_here is not None, "init_worker was not run"
    prepared = prepare_chunk(chunk, _tools_here)
    prepared.pack()  # rule 3
    return prepared


class PoolPreparer:
    """Prepares chunks in ``workers`` spawned processes."""

    def __init__(self, workers: int, config: WorkerConfig) -> None:
        self._pool = ProcessPoolExecutor(
            max_workers=workers,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=init_worker,
            initargs=(config,),
        )
        self.workers = workers

    async def prepare(self, chunk: Chunk) -> Prepared:
        return await asyncio.get_running_loop().run_in_executor(self._pool, prepare, chunk)

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)
