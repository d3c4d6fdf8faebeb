"""The MPI service: golden Person records, links, matching from the change log, \\$match, review.

The pure matching rules are in :mod:`careweave.mpi`; this package stores and serves them
(see docs/mpi.md). :func:`identity_service` builds the service from the settings.
"""

from __future__ import annotations

from pathlib import Path

from careweave.identity.models import load_model
from careweave.identity.records import IDENTITY_TENANT
from careweave.identity.service import IdentityService, Located, Match
from careweave.mpi import Thresholds
from careweave.search.indexer import Indexer
from careweave.settings import Settings
from careweave.store.base import Store

__all__ = ["IDENTITY_TENANT", "IdentityService", "Located", "Match", "identity_service"]


def identity_service(settings: Settings, store: Store, indexer: Indexer) -> IdentityService:
    """The MPI service for these settings: the model (packaged default or ``mpi_model``) with the
    thresholds of the settings, references built on ``base_url`` (or host and port)."""
    thresholds = Thresholds(settings.mpi_certain_threshold, settings.mpi_possible_threshold)
    model = load_model(Path(settings.mpi_model) if settings.mpi_model else None, thresholds)
    base = settings.base_url.rstrip("/") or f"http://{settings.host}:{settings.port}"
    return IdentityService(
        store, indexer, model, base, batch=settings.mpi_batch, poll_seconds=settings.mpi_poll_seconds
    )
