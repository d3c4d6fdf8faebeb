"""Per-call state of one validation: the issues found and the resource scopes being walked.

Rules:
1. A :class:`Run` is made by :meth:`Validator.validate` for one call and dropped after it; it
   is the only mutable state, and it never outlives the call.
2. A :class:`Scope` is one resource being walked. A contained resource's scope points at its
   container (``root``), which collects every local reference (``#id``) seen anywhere in it, for
   dom-3 and ref-1.
3. Issue text: ``diagnostics`` is "<FHIRPath location> <clause>." so every sentence names the
   element; ``expression`` holds the same location.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from careweave.errors import Issue
from careweave.fhir.validation.plan import Plans

__all__ = ["Run", "Scope"]


@dataclass(slots=True)
class Scope:
    resource: dict[str, Any]
    contained_ids: dict[str, str]  # contained id -> resourceType, of the root resource
    root: Scope | None = None  # the container, for a contained resource
    local_refs: set[str] = field(default_factory=set)  # root only: every "#..." seen
    referring: set[int] = field(default_factory=set)  # root only: contained that refer to "#"
    refers_to_container: bool = False  # contained only: has a reference "#"
    # the typed nodes invariants are given (the resource, %resource, %rootResource): built once
    # per resource rather than once per invariant
    nodes: tuple[Any, ...] | None = None

    @property
    def top(self) -> Scope:
        return self.root if self.root is not None else self

    @property
    def root_resource(self) -> dict[str, Any]:
        return self.top.resource


@dataclass(slots=True)
class Run:
    plans: Plans
    invariants: bool = True
    conditional_references: bool = False  # inside a transaction/batch Bundle entry
    profile_details: str | None = None  # set while checking a profile: the issues' details
    issues: list[Issue] = field(default_factory=list)
    typed: Callable[[Any, str | None, str | None], Any] | None = None  # the engine's node(value, type, path)
    depth: int = 0  # objects being walked, for the nesting limit

    def add(
        self,
        severity: str,
        code: str,
        path: str,
        clause: str,
        details: str | None = None,
    ) -> None:
        self.issues.append(
            Issue(
                severity=severity,
                code=code,
                diagnostics=f"{path} {clause}.",
                expression=(path,),
                details=self.profile_details or details,
            )
        )

    def error(self, code: str, path: str, clause: str, details: str | None = None) -> None:
        self.add("error", code, path, clause, details)
