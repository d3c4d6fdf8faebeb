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
"""

from __future__ import annotations

import asyncio
import multiprocessing
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass

import orjson

from careweave.errors import Issue
from careweave.interactions.context import Validate
from careweave.search.index import IndexRows
from careweave.search.indexer import Indexer
from careweave.store.base import Tenant

__all__ = ["Parts", "PreparePool", "init_worker", "prepare_resources"]

Prepared = IndexRows | list[Issue]


Parts = tuple[Validate, Indexer]
"""What a worker builds once: the validator and the base indexer (the composition root says how)."""


@dataclass(slots=True)
class _Worker:
    validate: Validate
    indexer: Indexer
    tenants: dict[bool, Tenant]


_worker: _Worker | None = None  # one per worker process, set by init_worker


def init_worker(build: Callable[[], Parts]) -> None:
    global _worker
    validate, indexer = build()
    tenants = {flag: Tenant(0, "", {"validate_profiles": flag}) for flag in (False, True)}
    _worker = _Worker(validate, indexer, tenants)


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


class PreparePool:
    """``workers`` spawned processes running :func:`prepare_resources`."""

    def __init__(self, workers: int, build: Callable[[], Parts]) -> None:
        """``build`` runs in each worker (a module-level function: it is pickled by name)."""
        self._pool = ProcessPoolExecutor(
            max_workers=workers,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=init_worker,
            initargs=(build,),
        )
        self.workers = workers

    async def start(self) -> None:
        """Start every worker now (each loads the definitions) rather than on the first message."""
        loop = asyncio.get_running_loop()
        await asyncio.gather(
            *(loop.run_in_executor(self._pool, prepare_resources, [], False) for _ in range(self.workers))
        )

    async def prepare(self, items: Sequence[bytes], validate_profiles: bool) -> list[Prepared]:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._pool, prepare_resources, list(items), validate_profiles)

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)
