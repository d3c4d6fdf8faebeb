"""A stand-in FHIRPath engine over fhirpathpy, for testing the validator's invariant plumbing
until careweave's own engine lands (it follows the same compile/evaluate interface)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import fhirpathpy
from fhirpathpy.models import models


@dataclass(frozen=True)
class _Expression:
    fn: Any

    def evaluate(
        self, resource: Any, context: Any = None, variables: Mapping[str, Any] | None = None
    ) -> list[Any]:
        env = dict(variables or {})
        env.pop("context", None)
        return list(self.fn(resource if context is None else context, env))


class FhirpathpyEngine:
    def compile(self, expression: str) -> _Expression:
        return _Expression(fhirpathpy.compile(expression, models["r4"]))
