"""The search parameter registry, built from the spec's own SearchParameter definitions.

Rules:
1. Every SearchParameter in the packaged ``search-parameters`` bundle is registered for each of its
   ``base`` types, with the part of its FHIRPath expression that applies to that type.
2. Parameters on ``Resource`` and ``DomainResource`` (``_id``, ``_lastUpdated``, ``_tag``, ...) apply to
   every resource type; a type's own parameter of the same code wins.
3. A parameter's storage key is ``"<base>.<code>"``: stable while its definition is unchanged.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Component", "SearchParam", "SearchParamRegistry", "split_expression"]

_GENERIC_BASES = ("Resource", "DomainResource")

# Known errors in the R4 (4.0.1) definitions, corrected here (each one is tested):
# DocumentReference-relationship pairs its components' definitions with the wrong expressions
# (relatesto, a reference, with "code"; relation, a token, with "target"). Fixed in R4B/R5.
# Observation-code-value-date's second component says value.as(DateTime), the System type, where the
# FHIR type dateTime is meant (as() on a FHIR dateTime with System.DateTime is empty in FHIRPath).
_COMPONENT_ERRATA: dict[str, dict[str, str]] = {
    "http://hl7.org/fhir/SearchParameter/DocumentReference-relationship": {
        "http://hl7.org/fhir/SearchParameter/DocumentReference-relatesto": "target",
        "http://hl7.org/fhir/SearchParameter/DocumentReference-relation": "code",
    },
    "http://hl7.org/fhir/SearchParameter/Observation-code-value-date": {
        "http://hl7.org/fhir/SearchParameter/Observation-value-date": "value.as(dateTime) | value.as(Period)",
    },
}


@dataclass(frozen=True, slots=True)
class Component:
    definition: str  # canonical URL of the component's SearchParameter
    expression: str  # FHIRPath relative to the composite's element


@dataclass(frozen=True, slots=True)
class SearchParam:
    code: str
    base: str
    type: str  # number | date | string | token | reference | composite | quantity | uri | special
    expression: str | None
    url: str
    targets: tuple[str, ...] = ()
    components: tuple[Component, ...] = ()
    modifiers: tuple[str, ...] = ()
    comparators: tuple[str, ...] = ()
    chains: tuple[str, ...] = ()
    multiple_or: bool = True
    multiple_and: bool = True
    resource: Mapping[str, Any] = field(default_factory=dict, compare=False, repr=False)

    @property
    def key(self) -> str:
        return f"{self.base}.{self.code}"


def split_expression(expression: str) -> list[str]:
    """Split a FHIRPath expression at its top-level ``|`` unions."""
    parts: list[str] = []
    depth = 0
    quote = False
    start = 0
    for i, ch in enumerate(expression):
        if ch == "'" and (i == 0 or expression[i - 1] != "\\"):
            quote = not quote
        elif quote:
            continue
        elif ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        elif ch == "|" and depth == 0:
            parts.append(expression[start:i].strip())
            start = i + 1
    parts.append(expression[start:].strip())
    return [p for p in parts if p]


def _applies_to(part: str, base: str) -> bool:
    stripped = part.lstrip("(").strip()
    return stripped.startswith(base + ".") or stripped == base or stripped.startswith(base + " ")


def _expression_for(expression: str | None, base: str, bases: list[str]) -> str | None:
    if not expression:
        return None
    if len(bases) == 1:
        return expression
    parts = [p for p in split_expression(expression) if _applies_to(p, base)]
    return " | ".join(parts) if parts else None


class SearchParamRegistry:
    """Search parameters by resource type and code."""

    def __init__(self, params: Iterable[SearchParam] = ()) -> None:
        self._by_type: dict[str, dict[str, SearchParam]] = {}
        self._by_url: dict[str, SearchParam] = {}
        for p in params:
            self.add(p)

    @classmethod
    def from_definitions(cls, resources: Iterable[Mapping[str, Any]]) -> SearchParamRegistry:
        registry = cls()
        for sp in resources:
            if sp.get("resourceType") != "SearchParameter":
                continue
            for p in params_of(sp):
                registry.add(p)
        return registry

    def add(self, param: SearchParam) -> None:
        self._by_type.setdefault(param.base, {})[param.code] = param
        self._by_url.setdefault(param.url, param)

    def copy(self) -> SearchParamRegistry:
        """A registry with the same parameters, to which more can be added."""
        other = SearchParamRegistry()
        other._by_type = {t: dict(params) for t, params in self._by_type.items()}
        other._by_url = dict(self._by_url)
        return other

    def get(self, type: str, code: str) -> SearchParam | None:
        own = self._by_type.get(type)
        if own is not None and code in own:
            return own[code]
        for generic in _GENERIC_BASES:
            found = self._by_type.get(generic, {}).get(code)
            if found is not None and (
                generic == "Resource" or type not in ("Bundle", "Binary", "Parameters")
            ):
                return found
        return None

    def by_url(self, url: str) -> SearchParam | None:
        return self._by_url.get(url)

    def for_type(self, type: str) -> list[SearchParam]:
        """Every parameter searchable on ``type``, generic ones included."""
        merged: dict[str, SearchParam] = {}
        for generic in _GENERIC_BASES:
            if generic == "DomainResource" and type in ("Bundle", "Binary", "Parameters"):
                continue
            merged.update(self._by_type.get(generic, {}))
        merged.update(self._by_type.get(type, {}))
        return sorted(merged.values(), key=lambda p: p.code)

    def own(self, type: str) -> list[SearchParam]:
        """Parameters declared for ``type`` itself (not the generic ones)."""
        return sorted(self._by_type.get(type, {}).values(), key=lambda p: p.code)

    def types(self) -> list[str]:
        return sorted(t for t in self._by_type if t not in _GENERIC_BASES)


def params_of(sp: Mapping[str, Any]) -> list[SearchParam]:
    """One :class:`SearchParam` per base type of a SearchParameter resource."""
    bases: list[str] = list(sp.get("base", ()))
    errata = _COMPONENT_ERRATA.get(sp.get("url", ""), {})
    components = tuple(
        Component(c.get("definition", ""), errata.get(c.get("definition", ""), c.get("expression", "")))
        for c in sp.get("component", ())
    )
    return [
        SearchParam(
            code=sp["code"],
            base=base,
            type=sp["type"],
            expression=_expression_for(sp.get("expression"), base, bases),
            url=sp.get("url", ""),
            targets=tuple(sp.get("target", ())),
            components=components,
            modifiers=tuple(sp.get("modifier", ())),
            comparators=tuple(sp.get("comparator", ())),
            chains=tuple(sp.get("chain", ())),
            multiple_or=sp.get("multipleOr", True),
            multiple_and=sp.get("multipleAnd", True),
            resource=sp,
        )
        for base in bases
    ]
