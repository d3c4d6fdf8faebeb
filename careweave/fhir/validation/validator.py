"""The validator: base R4 rules (and profiles) for a resource, every problem in one pass.

Rules:
1. Built once from an :class:`ElementModel`, a :class:`Terminology` and optionally a FHIRPath
   engine; construction compiles every type into plans (see :mod:`.plan`), so a call does no model
   lookups by string and compiles no regex.
2. :meth:`Validator.validate` never raises on user data; it returns every :class:`Issue` found.
3. ``bindings=False`` / ``invariants=False`` switch those checks off (the benchmark measures the
   layers separately); without an engine no FHIRPath invariant is evaluated, and the natively
   checked ones (ele-1, ext-1, txt-1, txt-2, dom-2..dom-6, ref-1) always are.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from careweave.errors import Issue
from careweave.fhir.elements import ElementModel
from careweave.fhir.validation.conform import conform
from careweave.fhir.validation.invariants import FhirPathEngine, InvariantTable, SkippedInvariant
from careweave.fhir.validation.plan import Plans, build_plans
from careweave.fhir.validation.profile import Profile, ProfileLibrary
from careweave.fhir.validation.run import Run
from careweave.fhir.validation.terminology import Terminology
from careweave.fhir.validation.walk import validate_resource

__all__ = ["Validator"]


class Validator:
    """Validates FHIR R4 JSON resources (plain dicts as orjson parses them)."""

    __slots__ = ("_engine", "_invariants", "_plans", "model", "terminology")

    def __init__(
        self,
        model: ElementModel,
        terminology: Terminology,
        fhirpath: FhirPathEngine | None = None,
        *,
        bindings: bool = True,
        invariants: bool = True,
    ) -> None:
        self.model = model
        self.terminology = terminology
        self._engine = fhirpath if invariants else None
        self._invariants = invariants
        table = InvariantTable(self._engine)
        self._plans: Plans = build_plans(model, terminology, table, check_bindings=bindings)

    @property
    def plans(self) -> Plans:
        return self._plans

    @property
    def skipped_invariants(self) -> tuple[SkippedInvariant, ...]:
        """Invariants never evaluated because the engine cannot compile them (or none is set)."""
        return self._plans.skipped_invariants

    @property
    def unchecked_bindings(self) -> tuple[tuple[str, str], ...]:
        """Required bindings not checked because the value set is unknown: (element, url)."""
        return self._plans.unchecked_bindings

    def profile_library(self, resources: Iterable[Mapping[str, Any]]) -> ProfileLibrary:
        """Compile-on-demand profiles from a package: its StructureDefinitions (profiles and
        extension definitions), ValueSets and CodeSystems; build it once and keep it."""
        return ProfileLibrary.build(self.model, self.terminology, InvariantTable(self._engine), resources)

    def validate(self, resource: Any, profiles: Sequence[Profile | Mapping[str, Any]] = ()) -> list[Issue]:
        """Every problem with ``resource`` against the base rules and ``profiles``.

        A profile is a :class:`Profile` from :meth:`profile_library` (compiled once, with its
        package's extensions and value sets), or a StructureDefinition as JSON, compiled for this
        call alone without any package. Profile issues carry ``details == "CW-3002"``.
        """
        run = Run(
            self._plans,
            invariants=self._invariants and self._engine is not None,
            typed=getattr(self._engine, "node", None),
        )
        validate_resource(run, resource, None)
        if profiles and isinstance(resource, dict):
            for given in profiles:
                profile = given if isinstance(given, Profile) else self._compile(given)
                if profile is not None:
                    conform(run, resource, profile)
        return run.issues

    def _compile(self, sd: Mapping[str, Any]) -> Profile | None:
        return self.profile_library([sd]).profile(sd)
