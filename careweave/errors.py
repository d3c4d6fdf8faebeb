"""Errors with stable codes, and the issues they carry.

Rules:
1. Every error careweave reports has a stable code ``CW-nnnn`` listed in :data:`CATALOGUE`, with a
   :class:`Category` (what kind of failure, which the transports map to a status in one place each:
   ``rest/errors.py`` for HTTP, the HL7 v2 ACK builder for AE/AR) and a FHIR IssueType.
2. Validation never raises for user data: it returns a list of :class:`Issue`. An interaction that
   refuses data raises :class:`CareweaveError` carrying those issues.
3. This module imports nothing from careweave, so every layer may use it.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass, field

__all__ = ["CATALOGUE", "CareweaveError", "Category", "Issue", "error"]


class Category(enum.Enum):
    """What kind of failure, independent of transport (Blaze calls these anomaly categories)."""

    INVALID = "invalid"  # the request cannot be understood (HTTP 400)
    UNPROCESSABLE = "unprocessable"  # understood but breaks a profile or business rule (422)
    NOT_FOUND = "not-found"  # 404
    GONE = "gone"  # deleted (410)
    CONFLICT = "conflict"  # 409
    PRECONDITION_FAILED = "precondition-failed"  # 412
    NOT_ALLOWED = "not-allowed"  # method not allowed on this URL (405)
    NOT_ACCEPTABLE = "not-acceptable"  # no representation the client accepts (406)
    UNSUPPORTED_MEDIA = "unsupported-media"  # 415
    TOO_LARGE = "too-large"  # 413
    UNAUTHORIZED = "unauthorized"  # 401
    FORBIDDEN = "forbidden"  # 403
    BUSY = "busy"  # try again later (503)
    FAULT = "fault"  # our own bug (500); never for anything a client sent


@dataclass(frozen=True, slots=True)
class Issue:
    """One OperationOutcome.issue: severity, IssueType code, diagnostics, FHIRPath locations."""

    severity: str  # fatal | error | warning | information
    code: str  # FHIR IssueType (invalid, structure, required, value, invariant, ...)
    diagnostics: str
    expression: tuple[str, ...] = ()
    details: str | None = None  # a careweave code (CW-nnnn) or an invariant key (pat-1)

    @property
    def is_error(self) -> bool:
        return self.severity in ("fatal", "error")


# code: (category, IssueType, meaning). Documented in docs/errors.md (a test keeps them in step).
CATALOGUE: dict[str, tuple[Category, str, str]] = {
    "CW-1000": (Category.FAULT, "exception", "Internal error"),
    "CW-1001": (Category.INVALID, "structure", "The body is not valid JSON"),
    "CW-1002": (Category.UNSUPPORTED_MEDIA, "not-supported", "Unsupported content type"),
    "CW-1003": (Category.TOO_LARGE, "too-costly", "The body is larger than the server accepts"),
    "CW-1004": (Category.NOT_FOUND, "not-supported", "Unknown resource type"),
    "CW-1005": (Category.INVALID, "value", "The id breaks the FHIR id rules"),
    "CW-1006": (Category.INVALID, "invalid", "The resourceType does not match the URL"),
    "CW-1007": (Category.INVALID, "required", "A body is required"),
    "CW-1008": (Category.INVALID, "invalid", "The id in the body does not match the URL"),
    "CW-1009": (Category.INVALID, "required", "An update needs the resource id in the body"),
    "CW-1010": (Category.NOT_ACCEPTABLE, "not-supported", "No acceptable representation"),
    "CW-1011": (Category.INVALID, "invalid", "Invalid request parameter"),
    "CW-1012": (Category.NOT_FOUND, "not-found", "No such endpoint or operation"),
    "CW-1013": (Category.NOT_ALLOWED, "not-supported", "Method not allowed here"),
    "CW-1014": (Category.INVALID, "invalid", "Invalid header"),
    "CW-1015": (Category.INVALID, "structure", "The body is not a FHIR resource"),
    "CW-2001": (Category.NOT_FOUND, "not-found", "Resource not found"),
    "CW-2002": (Category.GONE, "deleted", "Resource deleted"),
    "CW-2003": (Category.NOT_FOUND, "not-found", "Version not found"),
    "CW-2004": (Category.PRECONDITION_FAILED, "conflict", "Version conflict (If-Match)"),
    "CW-2005": (Category.PRECONDITION_FAILED, "multiple-matches", "Conditional: several matches"),
    "CW-2006": (Category.INVALID, "invalid", "Conditional operation needs search criteria"),
    "CW-2007": (Category.CONFLICT, "conflict", "Conflicting write"),
    "CW-2008": (Category.INVALID, "invalid", "Conditional update: the match has another id"),
    "CW-2009": (Category.UNPROCESSABLE, "processing", "The patch cannot be applied"),
    "CW-2010": (Category.INVALID, "invalid", "The patch document is invalid"),
    "CW-2011": (
        Category.CONFLICT,
        "conflict",
        "Version conflict: If-Match needs the current version",
    ),
    "CW-3001": (Category.INVALID, "invalid", "The resource is not valid FHIR R4"),
    "CW-3002": (Category.UNPROCESSABLE, "processing", "The resource does not meet its profiles"),
    "CW-4001": (Category.NOT_FOUND, "not-found", "Unknown tenant"),
    "CW-4002": (Category.CONFLICT, "duplicate", "The tenant exists already"),
    "CW-4003": (Category.INVALID, "value", "Invalid tenant name"),
    "CW-5001": (Category.INVALID, "not-supported", "Unknown or unsupported search parameter"),
    "CW-5002": (Category.INVALID, "invalid", "Invalid search parameter value"),
    "CW-5003": (Category.INVALID, "invalid", "Invalid or expired paging cursor"),
    "CW-5004": (Category.UNPROCESSABLE, "too-costly", "The search is too costly"),
    # CW-6xxx: events and subscriptions; CW-7xxx: HL7 v2 gateway; CW-8xxx: MPI; CW-91xx: PostgreSQL
    "CW-6001": (Category.UNPROCESSABLE, "processing", "The Subscription cannot be served"),
    "CW-6002": (Category.FORBIDDEN, "security", "Invalid or expired websocket binding token"),
    "CW-6003": (Category.UNPROCESSABLE, "not-supported", "The operation does not fit this subscription"),
    "CW-7001": (Category.INVALID, "structure", "The HL7 v2 message cannot be parsed or mapped"),
    "CW-7002": (
        Category.UNSUPPORTED_MEDIA,
        "not-supported",
        "Unsupported HL7 v2 message type, version, processing id or character set",
    ),
    "CW-7003": (Category.NOT_FOUND, "not-found", "No such HL7 v2 message"),
    "CW-7004": (Category.CONFLICT, "business-rule", "No application ACK or no return address to send it to"),
    "CW-8001": (Category.NOT_FOUND, "not-found", "Unknown or merged Person in the identity space"),
    "CW-8002": (Category.NOT_FOUND, "not-found", "The Patient is not known to the MPI here"),
    "CW-8003": (Category.CONFLICT, "business-rule", "Different verified NHS numbers: never linked"),
    "CW-8004": (Category.PRECONDITION_FAILED, "conflict", "The Person changed since the If-Match version"),
    "CW-8005": (Category.INVALID, "invalid", "Invalid MPI operation parameters"),
    "CW-8006": (Category.NOT_FOUND, "not-found", "No such review item"),
    "CW-8007": (Category.CONFLICT, "conflict", "Review item decided, or Person merged"),
    "CW-8008": (Category.CONFLICT, "conflict", "Nothing to undo, or the records have changed since"),
    "CW-8009": (Category.NOT_ALLOWED, "not-supported", "The identity space is read-only here"),
    "CW-8010": (Category.BUSY, "transient", "The master patient index is not available"),
    "CW-9001": (Category.BUSY, "transient", "The server is busy; try again"),
    "CW-9101": (Category.BUSY, "transient", "The database (PostgreSQL) is not reachable"),
    "CW-9102": (Category.BUSY, "transient", "The write kept conflicting with concurrent writes; try again"),
    "CW-9103": (Category.BUSY, "not-supported", "The database schema needs migrating (careweave migrate)"),
}


@dataclass
class CareweaveError(Exception):
    """An error with a stable code; ``issues`` lists every problem found (validation reports all)."""

    code: str
    diagnostics: str = ""
    issues: Sequence[Issue] = field(default_factory=tuple)
    expression: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.code not in CATALOGUE:
            raise KeyError(f"unknown careweave error code {self.code}")
        super().__init__(self.code, self.diagnostics)

    def __str__(self) -> str:
        return f"{self.code}: {self.diagnostics or self.meaning}"

    @property
    def category(self) -> Category:
        return CATALOGUE[self.code][0]

    @property
    def issue_type(self) -> str:
        return CATALOGUE[self.code][1]

    @property
    def meaning(self) -> str:
        return CATALOGUE[self.code][2]

    def all_issues(self) -> tuple[Issue, ...]:
        """The issues to report: the carried ones, or one made from the code and diagnostics."""
        if self.issues:
            return tuple(self.issues)
        return (
            Issue(
                severity="error",
                code=self.issue_type,
                diagnostics=self.diagnostics or self.meaning,
                expression=self.expression,
                details=self.code,
            ),
        )


def error(code: str, diagnostics: str = "", *, expression: Sequence[str] = ()) -> CareweaveError:
    """Build a :class:`CareweaveError`: ``raise error("CW-2001", "Patient/1 is not known")``."""
    return CareweaveError(code=code, diagnostics=diagnostics, expression=tuple(expression))
