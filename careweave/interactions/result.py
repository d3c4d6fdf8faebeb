"""The transport-free result of an interaction, and OperationOutcome building.

Rules:
1. ``status`` is the FHIR REST status of the interaction (FHIR defines these codes for REST and for
   batch/transaction entries alike); :data:`STATUS` maps error categories to it, in one place.
2. ``body`` is a resource as a dict, or its JSON bytes exactly as stored (read fast path), or None.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass, field
from typing import Any

from careweave.errors import CareweaveError, Category, Issue

__all__ = ["STATUS", "Result", "error_result", "operation_outcome"]

STATUS: dict[Category, int] = {
    Category.INVALID: 400,
    Category.UNPROCESSABLE: 422,
    Category.NOT_FOUND: 404,
    Category.GONE: 410,
    Category.CONFLICT: 409,
    Category.PRECONDITION_FAILED: 412,
    Category.NOT_ALLOWED: 405,
    Category.NOT_ACCEPTABLE: 406,
    Category.UNSUPPORTED_MEDIA: 415,
    Category.TOO_LARGE: 413,
    Category.UNAUTHORIZED: 401,
    Category.FORBIDDEN: 403,
    Category.BUSY: 503,
    Category.FAULT: 500,
}


@dataclass(slots=True)
class Result:
    status: int
    body: dict[str, Any] | bytes | None = None
    etag: str | None = None  # W/"3"
    last_modified_ms: int | None = None
    location: str | None = None
    content_location: str | None = None
    headers: dict[str, str] = field(default_factory=dict)
    media_type: str | None = None  # when not FHIR JSON (a Bulk Data manifest, NDJSON)
    stream: AsyncIterator[bytes] | None = None  # a body sent in chunks (export files)


def operation_outcome(issues: Iterable[Issue]) -> dict[str, Any]:
    out = []
    for issue in issues:
        item: dict[str, Any] = {"severity": issue.severity, "code": issue.code}
        if issue.details:
            item["details"] = {
                "coding": [{"system": "https://careweave.org/fhir/CodeSystem/issue", "code": issue.details}]
            }
        if issue.diagnostics:
            item["diagnostics"] = issue.diagnostics
        if issue.expression:
            item["expression"] = list(issue.expression)
        out.append(item)
    if not out:
        out.append({"severity": "information", "code": "informational", "diagnostics": "All OK"})
    return {"resourceType": "OperationOutcome", "issue": out}


def error_result(exc: CareweaveError) -> Result:
    return Result(STATUS[exc.category], operation_outcome(exc.all_issues()))


def information(message: str) -> dict[str, Any]:
    return operation_outcome([Issue("information", "informational", message)])
