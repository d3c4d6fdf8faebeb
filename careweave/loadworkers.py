"""Worker processes for bulk load: validation and index extraction in parallel with the writer.

A :class:`PoolPreparer` is what ``careweave load`` hands to
:func:`careweave.interactions.loading.load_paths` when it runs with workers.

Rules:
1. A worker is a spawned process (never forked: the parent runs threads). Its initializer builds
   the definitions, the validator and the tenant's indexer once (about a second); the parent sends
   chunks of resources as JSON bytes and gets back, per resource, either the resource with its
   index rows or the reason it was rejected.
2. Workers hold no state between chunks beyond what the initializer built; they never touch the
   store, so the parent's single writer keeps every write serial and durable.
"""

from __future__ import annotations

import asyncio
import multiprocessing
from collections.abc import Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from typing import Any

import orjson

from careweave.interactions.loading import Prepared, Rejected
from careweave.search.custom import registry_with
from careweave.search.indexer import Indexer
from careweave.store.base import Tenant
from careweave.system import _validate, load_definitions

__all__ = ["PoolPreparer", "WorkerConfig", "init_worker", "prepare_chunk"]


@dataclass(frozen=True, slots=True)
class WorkerConfig:
    settings: Mapping[str, Any]  # the tenant's settings (validate_profiles)
    custom: Sequence[tuple[str, Mapping[str, Any]]]  # the tenant's custom parameters, all states


class _Worker:
    def __init__(self, config: WorkerConfig) -> None:
        defs = load_definitions()
        registry = registry_with(defs.search_params, config.custom) if config.custom else (defs.search_params)
        self.indexer = Indexer(registry, defs.engine, defs.code_systems)
        self.validate = _validate(defs)
        self.tenant = Tenant(0, "", dict(config.settings))


_worker: _Worker | None = None  # one per worker process, set by init_worker


def init_worker(config: WorkerConfig) -> None:
    global _worker
    _worker = _Worker(config)


def prepare_chunk(items: list[tuple[str, bytes]]) -> list[Prepared | Rejected]:
    """Validate and index each (source, resource JSON) of a chunk."""
    assert _worker is not None, "init_worker was not run"
    out: list[Prepared | Rejected] = []
    for source, raw in items:
        resource = orjson.loads(raw)
        type_ = resource.get("resourceType")
        issues = [i for i in _worker.validate(resource, _worker.tenant) if i.is_error]
        if issues:
            reason = "; ".join(f"{', '.join(i.expression) or type_}: {i.diagnostics}" for i in issues[:5])
            out.append(Rejected(source, reason, type_, resource.get("id")))
            continue
        out.append(Prepared(type_, raw, _worker.indexer.index(resource)))
    return out


class PoolPreparer:
    """Validates and indexes chunks in ``workers`` spawned processes."""

    def __init__(self, workers: int, config: WorkerConfig) -> None:
        self._pool = ProcessPoolExecutor(
            max_workers=workers,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=init_worker,
            initargs=(config,),
        )
        self.workers = workers

    async def prepare(self, items: list[tuple[str, bytes]]) -> list[Prepared | Rejected]:
        return await asyncio.get_running_loop().run_in_executor(self._pool, prepare_chunk, items)

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)
