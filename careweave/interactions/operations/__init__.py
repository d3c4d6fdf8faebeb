"""FHIR operations ($name), one module each, registered in :data:`OPERATIONS`."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from careweave.interactions.context import Services
from careweave.interactions.operations.everything import everything
from careweave.interactions.operations.export import export, export_file, export_status
from careweave.interactions.operations.match import match
from careweave.interactions.operations.reindex import reindex
from careweave.interactions.operations.subscription import SUBSCRIPTION_OPERATIONS  # [events]
from careweave.interactions.operations.validate import validate
from careweave.interactions.request import Request
from careweave.interactions.result import Result

__all__ = ["OPERATIONS", "Operation"]


@dataclass(frozen=True, slots=True)
class Operation:
    name: str  # without the $
    definition: str  # canonical URL of its OperationDefinition
    levels: frozenset[str]  # system | type | instance
    types: frozenset[str] | None  # None: every resource type
    methods: frozenset[str]
    handler: Callable[[Services, Request], Awaitable[Result]]


OPERATIONS: dict[str, Operation] = {
    op.name: op
    for op in (
        Operation(
            "validate",
            "http://hl7.org/fhir/OperationDefinition/Resource-validate",
            frozenset({"type", "instance"}),
            None,
            frozenset({"POST", "GET"}),
            validate,
        ),
        Operation(
            "everything",
            "http://hl7.org/fhir/OperationDefinition/Patient-everything",
            frozenset({"type", "instance"}),
            frozenset({"Patient"}),
            frozenset({"GET", "POST"}),
            everything,
        ),
        Operation(
            "export",
            "http://hl7.org/fhir/uv/bulkdata/OperationDefinition/export",
            frozenset({"system", "type", "instance"}),
            frozenset({"Patient", "Group"}),
            frozenset({"GET", "POST"}),
            export,
        ),
        Operation(
            "export-poll-status",
            "https://careweave.org/fhir/OperationDefinition/export-poll-status",
            frozenset({"system"}),
            None,
            frozenset({"GET", "DELETE"}),
            export_status,
        ),
        Operation(
            "export-file",
            "https://careweave.org/fhir/OperationDefinition/export-file",
            frozenset({"system"}),
            None,
            frozenset({"GET"}),
            export_file,
        ),
        Operation(  # [mpi]
            "match",
            "http://hl7.org/fhir/OperationDefinition/Patient-match",
            frozenset({"type"}),
            frozenset({"Patient"}),
            frozenset({"POST"}),
            match,
        ),
        Operation(
            "reindex",
            "https://careweave.org/fhir/OperationDefinition/reindex",
            frozenset({"system"}),
            None,
            frozenset({"POST", "GET"}),
            reindex,
        ),
        *(Operation(*row) for row in SUBSCRIPTION_OPERATIONS),  # [events]
    )
}
