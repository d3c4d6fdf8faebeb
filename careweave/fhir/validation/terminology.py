"""Terminology: the expansions of the value sets the validator binds codes against.

Rules:
1. Built once by a caller (:meth:`Terminology.from_definitions`) and passed in; it holds the
   source ValueSets and CodeSystems by canonical URL and the precomputed expansions of every
   value set bound with strength ``required`` in the base definitions.
2. :meth:`Terminology.extended` returns a new Terminology with more ValueSets and CodeSystems (a
   profile package's); nothing is mutated.
3. :meth:`Terminology.expansion` returns a precomputed expansion, or expands on the spot (no
   cache: callers compile it into their plans once). None means the value set is unknown.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from careweave.fhir import definitions
from careweave.fhir.elements import ElementModel
from careweave.fhir.validation.contexts import model_contexts
from careweave.fhir.validation.expansion import Expansion, expand_value_set

__all__ = ["Terminology", "required_value_sets"]


@dataclass(frozen=True)
class Terminology:
    """Value sets and code systems by URL, and the expansions computed from them."""

    value_sets: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    code_systems: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    expansions: Mapping[str, Expansion] = field(default_factory=dict)

    @classmethod
    def from_definitions(cls, model: ElementModel | None = None) -> Terminology:
        """The R4 value sets and code systems, with every required-bound value set expanded.

        ``model`` supplies the bindings; without it they are read from the packaged
        StructureDefinitions.
        """
        sources = definitions.resources_of("valuesets") + definitions.resources_of("v3-codesystems")
        if model is None:
            model = ElementModel.from_structure_definitions(
                definitions.resources_of("profiles-types") + definitions.resources_of("profiles-resources")
            )
        return cls.from_resources(sources, required_value_sets(model))

    @classmethod
    def from_resources(
        cls, resources: Iterable[Mapping[str, Any]], expand: Iterable[str] = ()
    ) -> Terminology:
        """A Terminology over ``resources`` (ValueSets and CodeSystems; others are ignored)."""
        return cls().extended(resources, expand)

    def extended(self, resources: Iterable[Mapping[str, Any]], expand: Iterable[str] = ()) -> Terminology:
        """A new Terminology with ``resources`` added and the value sets ``expand`` expanded."""
        value_sets = dict(self.value_sets)
        code_systems = dict(self.code_systems)
        for resource in resources:
            url = resource.get("url")
            if not isinstance(url, str):
                continue
            if resource.get("resourceType") == "ValueSet":
                value_sets[url] = resource
            elif resource.get("resourceType") == "CodeSystem":
                code_systems[url] = resource
        expansions = dict(self.expansions)
        for url in expand:
            found = expand_value_set(url, value_sets, code_systems)
            if found is not None:
                expansions[url] = found
        return Terminology(value_sets, code_systems, expansions)

    def expansion(self, url: str) -> Expansion | None:
        """The expansion of ``url`` (``|version`` ignored), or None if the value set is unknown."""
        url = url.split("|", 1)[0]
        found = self.expansions.get(url)
        if found is not None:
            return found
        return expand_value_set(url, self.value_sets, self.code_systems)


def required_value_sets(model: ElementModel) -> frozenset[str]:
    """Every value set bound with strength ``required`` by an element of ``model``."""
    urls: set[str] = set()
    for context in model_contexts(model):
        for element in model.children(context).values():
            binding = element.binding
            if binding is not None and binding.strength == "required" and binding.value_set:
                urls.add(binding.value_set)
    return frozenset(urls)
