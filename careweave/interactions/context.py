"""What interactions are given to work with: built once by system.py, passed explicitly."""

from __future__ import annotations

import os
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from careweave.errors import Issue
from careweave.fhir.elements import ElementModel
from careweave.fhir.fhirpath import FhirPathEngine
from careweave.identity.service import IdentityService
from careweave.interactions.tenants import TenantDirectory, TenantSearch
from careweave.search.registry import SearchParamRegistry
from careweave.store.base import Store, Tenant
from careweave.store.files import ExportFiles

__all__ = ["Services", "Validate", "new_id"]

Validate = Callable[[dict[str, Any], Tenant], list[Issue]]


@dataclass(frozen=True, slots=True)
class Services:
    store: Store
    model: ElementModel
    search_params: SearchParamRegistry
    validate: Validate
    tenants: TenantDirectory
    search: TenantSearch
    new_id: Callable[[], str]
    cursor_secret: bytes
    engine: FhirPathEngine
    files: ExportFiles  # Bulk Data export output
    default_count: int = 20
    max_count: int = 1000
    compartments: Mapping[str, Mapping[str, tuple[str, ...]]] = field(default_factory=dict)
    # owner type -> member type -> parameters (CompartmentDefinition)
    expand: Callable[[str], list[tuple[str | None, str]] | None] | None = None  # :in value sets
    wake_jobs: Callable[[], None] = lambda: None  # tells the job runner there is work
    wake_events: Callable[[], None] = lambda: None  # [events] a write committed: dispatch its events now
    events_secret: bytes = b""  # [events] signs websocket binding tokens
    # [events] a Subscription about to be written: what stops the tenant's subscription being served
    check_subscription: Callable[[dict[str, Any], Tenant], Awaitable[list[Issue]]] | None = None
    software_version: str = "0"
    started_at: str = "2026-01-01T00:00:00+00:00"  # CapabilityStatement.date
    identity: IdentityService | None = None  # [mpi] the master patient index ($match, /mpi/fhir)

    @property
    def resource_types(self) -> frozenset[str]:
        return self.model.resource_types


def new_id() -> str:
    """A time-ordered UUID (version 7 layout): new ids land at the end of the id index."""
    ms = time.time_ns() // 1_000_000
    rand = int.from_bytes(os.urandom(10), "big")
    value = (ms & ((1 << 48) - 1)) << 80 | 0x7 << 76 | (rand >> 68 & 0xFFF) << 64
    value |= 0b10 << 62 | (rand & ((1 << 62) - 1))
    h = f"{value:032x}"
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"
