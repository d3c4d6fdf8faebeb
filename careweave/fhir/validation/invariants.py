"""Invariants (FHIRPath constraints) compiled once and evaluated through a FHIRPath engine.

Rules:
1. The engine is anything with ``compile(expression) -> expression`` whose result has
   ``evaluate(resource, context=node, variables={...}) -> list`` (:class:`FhirPathEngine`;
   careweave's own engine is ``careweave.fhir.fhirpath.FhirPathEngine``).
2. Keys checked natively by the walker, fast and for every element, are never given to the engine:
   :data:`NATIVE_KEYS` (ele-1, ext-1, txt-1, txt-2, dom-2..dom-6, ref-1).
3. An expression the engine cannot compile is *skipped*: it is listed in
   :attr:`InvariantTable.skipped` (with the reason) and never evaluated. An expression that raises
   while evaluating does not fail the resource: it yields an ``information`` issue
   (``not-supported``) naming the invariant.
4. Outcome of one evaluation: ``[True]`` or an empty result holds; ``[False]`` fails; any other
   non-empty result holds (FHIRPath's singleton truth). A failure is an issue with the
   constraint's severity, IssueType ``invariant`` and the key in ``details``.
5. With careweave's engine, an invariant whose first terms test whether elements are there has a
   :attr:`Invariant.shortcut` (:mod:`.shortcuts`): where it tells that the invariant holds, the
   engine is not asked; everywhere else it is, so the outcome is always the engine's.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from careweave.fhir.elements import Constraint
from careweave.fhir.validation.shortcuts import Shortcut, shortcut

__all__ = [
    "NATIVE_KEYS",
    "CompiledExpression",
    "FhirPathEngine",
    "Invariant",
    "InvariantTable",
    "SkippedInvariant",
    "holds",
]

NATIVE_KEYS = frozenset(
    {"ele-1", "ext-1", "txt-1", "txt-2", "dom-2", "dom-3", "dom-4", "dom-5", "dom-6", "ref-1"}
)


class CompiledExpression(Protocol):
    def evaluate(
        self, resource: Any, /, *, context: Any = ..., variables: Mapping[str, Any] | None = ...
    ) -> list[Any]: ...


class FhirPathEngine(Protocol):
    def compile(self, expression: str, /) -> CompiledExpression: ...


@dataclass(frozen=True, slots=True)
class Invariant:
    """One constraint ready to evaluate."""

    key: str
    severity: str  # error | warning
    human: str
    expression: str
    compiled: CompiledExpression
    shortcut: Shortcut | None = None  # True on a typed focus where it surely holds (rule 5)


@dataclass(frozen=True, slots=True)
class SkippedInvariant:
    """A constraint that is never evaluated, and why."""

    key: str
    expression: str
    where: str  # the element or type that declares it
    reason: str


@dataclass
class InvariantTable:
    """Compiles constraints once per distinct expression while plans are built.

    Used only during construction (it accumulates); the plans keep the :class:`Invariant`
    values and the validator keeps :attr:`skipped` as a tuple.
    """

    engine: FhirPathEngine | None
    skipped: list[SkippedInvariant] = field(default_factory=list)
    _compiled: dict[str, Invariant | str] = field(default_factory=dict)
    _skipped_keys: set[tuple[str, str]] = field(default_factory=set)

    def compile(self, constraints: Iterable[Constraint], where: str) -> tuple[Invariant, ...]:
        """The evaluable invariants among ``constraints`` (native keys left out)."""
        if self.engine is None:
            return ()
        found: list[Invariant] = []
        for constraint in constraints:
            if constraint.key in NATIVE_KEYS:
                continue
            invariant = self._one(constraint, where)
            if invariant is not None:
                found.append(invariant)
        return tuple(found)

    def _one(self, constraint: Constraint, where: str) -> Invariant | None:
        expression = constraint.expression
        if not expression:
            self._skip(constraint, where, "the constraint has no FHIRPath expression")
            return None
        cache_key = f"{constraint.key}\x00{constraint.severity}\x00{expression}"
        cached = self._compiled.get(cache_key)
        if cached is None:
            cached = self._compile(constraint, expression)
            self._compiled[cache_key] = cached
        if isinstance(cached, str):
            self._skip(constraint, where, cached)
            return None
        return cached

    def _compile(self, constraint: Constraint, expression: str) -> Invariant | str:
        assert self.engine is not None
        try:
            compiled = self.engine.compile(expression)
        except Exception as exc:  # any engine failure means "cannot evaluate", never a crash
            return f"the FHIRPath engine cannot compile it: {type(exc).__name__}: {exc}"
        return Invariant(
            key=constraint.key,
            severity=constraint.severity,
            human=constraint.human,
            expression=expression,
            compiled=compiled,
            shortcut=shortcut(self.engine, compiled),
        )

    def _skip(self, constraint: Constraint, where: str, reason: str) -> None:
        if (constraint.key, where) in self._skipped_keys:
            return
        self._skipped_keys.add((constraint.key, where))
        self.skipped.append(SkippedInvariant(constraint.key, constraint.expression or "", where, reason))


def holds(result: Sequence[Any]) -> bool:
    """Whether an invariant's evaluation result means the invariant is satisfied (rule 4)."""
    return not (len(result) == 1 and result[0] is False)
