"""Value set expansion to (system, code) sets, from ValueSet and CodeSystem resources.

Rules:
1. ``compose.include`` items are unioned; within one include, the system part (concept list,
   filters, or the whole code system) and each listed ``valueSet`` are intersected (the spec's
   rule). ``compose.exclude`` items are subtracted the same way.
2. Filters supported over a code system's hierarchy (nested ``concept`` plus ``subsumedBy`` /
   ``parent`` properties): ``is-a``, ``descendent-of``, ``is-not-a``, ``generalizes``, ``in``,
   ``not-in``, ``=`` (on ``concept``/``code`` or a concept property), ``regex``, ``exists``.
3. A code system that is not available or not ``complete``, or a filter not listed above, is
   recorded as unexpanded: membership in it is then decided by the external system's syntax when
   :mod:`.external` has one, else unknown (never an error). An unknown included value set makes
   the expansion opaque: codes outside the known ones are then unknown.
4. A value set with no ``compose`` but an ``expansion`` uses the expansion's ``contains``.
5. Pure: takes lookups, returns a frozen :class:`Expansion`; cycles between value sets are cut.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from careweave.fhir.validation.external import SYNTAX

__all__ = ["Expansion", "expand_value_set"]

Json = Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class Expansion:
    """The codes of one value set.

    ``unexpanded`` names code systems included whole but not available here (decided by their
    syntax, when :data:`SYNTAX` has one); ``opaque`` is set when some other part is unknown.
    """

    url: str
    codes: frozenset[tuple[str, str]]
    code_values: frozenset[str]
    unexpanded: frozenset[str] = frozenset()
    opaque: bool = False

    @property
    def complete(self) -> bool:
        return not self.unexpanded and not self.opaque

    def has_code(self, code: str) -> bool | None:
        """A bare code (a ``code`` element): True/False, or None when it cannot be decided."""
        if code in self.code_values:
            return True
        if self.opaque:
            return None
        undecided = False
        for system in self.unexpanded:
            rule = SYNTAX.get(system)
            if rule is None:
                undecided = True
            elif rule(code):
                return True
        return None if undecided else False

    def has_coding(self, system: str | None, code: str | None) -> bool | None:
        """A (system, code) pair: True/False, or None when it cannot be decided."""
        if system is None or code is None:
            return False
        if (system, code) in self.codes:
            return True
        if system in self.unexpanded:
            rule = SYNTAX.get(system)
            return rule(code) if rule is not None else None
        return None if self.opaque else False


@dataclass(slots=True)
class _Part:
    codes: set[tuple[str, str]]
    unexpanded: set[str] = field(default_factory=set)
    opaque: bool = False


def expand_value_set(
    url: str, value_sets: Mapping[str, Json], code_systems: Mapping[str, Json]
) -> Expansion | None:
    """The expansion of the value set ``url`` (version suffix ignored), or None if it is unknown."""
    part = _expand(url.split("|", 1)[0], value_sets, code_systems, frozenset())
    if part is None:
        return None
    return Expansion(
        url=url,
        codes=frozenset(part.codes),
        code_values=frozenset(code for _, code in part.codes),
        unexpanded=frozenset(part.unexpanded),
        opaque=part.opaque,
    )


def _expand(
    url: str, value_sets: Mapping[str, Json], code_systems: Mapping[str, Json], seen: frozenset[str]
) -> _Part | None:
    vs = value_sets.get(url)
    if vs is None or url in seen:
        return None
    seen = seen | {url}
    compose = vs.get("compose")
    if compose is None:
        contains = vs.get("expansion", {}).get("contains")
        if contains is None:
            return _Part(set(), opaque=True)
        return _Part(set(_contains_codes(contains)))
    result = _Part(set())
    for include in compose.get("include", ()):
        _merge(result, _include(include, value_sets, code_systems, seen), add=True)
    for exclude in compose.get("exclude", ()):
        _merge(result, _include(exclude, value_sets, code_systems, seen), add=False)
    return result


def _merge(into: _Part, part: _Part, *, add: bool) -> None:
    if add:
        into.codes |= part.codes
        into.unexpanded |= part.unexpanded
        into.opaque = into.opaque or part.opaque
    else:
        into.codes -= part.codes
        # an exclusion we could not expand may remove codes we cannot name
        into.opaque = into.opaque or part.opaque or bool(part.unexpanded)


def _intersect(a: _Part, b: _Part) -> _Part:
    if a.opaque or b.opaque:
        return _Part(a.codes | b.codes, a.unexpanded | b.unexpanded, opaque=True)
    codes = {c for c in a.codes if c in b.codes or c[0] in b.unexpanded}
    codes |= {c for c in b.codes if c[0] in a.unexpanded}
    return _Part(codes, a.unexpanded & b.unexpanded)


def _include(
    inc: Json, value_sets: Mapping[str, Json], code_systems: Mapping[str, Json], seen: frozenset[str]
) -> _Part:
    parts: list[_Part] = []
    system = inc.get("system")
    if system is not None:
        parts.append(_system_part(system, inc, code_systems))
    for vs_url in inc.get("valueSet", ()):
        sub = _expand(vs_url.split("|", 1)[0], value_sets, code_systems, seen)
        parts.append(sub if sub is not None else _Part(set(), opaque=True))
    if not parts:
        return _Part(set())
    result = parts[0]
    for other in parts[1:]:
        result = _intersect(result, other)
    return result


def _system_part(system: str, inc: Json, code_systems: Mapping[str, Json]) -> _Part:
    concepts = inc.get("concept")
    if concepts is not None:
        return _Part({(system, c["code"]) for c in concepts if isinstance(c.get("code"), str)})
    cs = code_systems.get(system)
    if cs is None or cs.get("content", "complete") != "complete":
        return _Part(set(), unexpanded={system})
    hierarchy = _Hierarchy(cs)
    codes = set(hierarchy.codes)
    for flt in inc.get("filter", ()):
        selected = _apply_filter(hierarchy, flt)
        if selected is None:
            return _Part(set(), unexpanded={system})
        codes &= selected
    return _Part({(system, code) for code in codes})


class _Hierarchy:
    """A code system's codes, parent links and concept properties."""

    def __init__(self, cs: Json) -> None:
        self.codes: list[str] = []
        self.children: dict[str, set[str]] = {}
        self.parents: dict[str, set[str]] = {}
        self.properties: dict[str, dict[str, set[str]]] = {}
        for concept, parent in _walk_concepts(cs.get("concept", ()), None):
            code = concept.get("code")
            if not isinstance(code, str):
                continue
            self.codes.append(code)
            if parent is not None:
                self._link(parent, code)
            for prop in concept.get("property", ()):
                value = _property_value(prop)
                if value is None:
                    continue
                self.properties.setdefault(code, {}).setdefault(prop.get("code", ""), set()).add(value)
                if prop.get("code") in ("subsumedBy", "parent"):
                    self._link(value, code)

    def _link(self, parent: str, child: str) -> None:
        self.children.setdefault(parent, set()).add(child)
        self.parents.setdefault(child, set()).add(parent)

    def closure(self, code: str, links: Mapping[str, set[str]]) -> set[str]:
        found: set[str] = set()
        stack = [code]
        while stack:
            for nxt in links.get(stack.pop(), ()):
                if nxt not in found:
                    found.add(nxt)
                    stack.append(nxt)
        return found


def _walk_concepts(concepts: Any, parent: str | None) -> Iterator[tuple[Json, str | None]]:
    for concept in concepts:
        yield concept, parent
        yield from _walk_concepts(concept.get("concept", ()), concept.get("code"))


def _property_value(prop: Json) -> str | None:
    for key in ("valueCode", "valueString", "valueBoolean", "valueInteger", "valueCoding"):
        if key in prop:
            value = prop[key]
            if key == "valueCoding":
                return str(value.get("code"))
            if key == "valueBoolean":
                return "true" if value else "false"
            return str(value)
    return None


def _apply_filter(h: _Hierarchy, flt: Json) -> set[str] | None:
    prop, op, value = str(flt.get("property")), flt.get("op"), str(flt.get("value", ""))
    if prop in ("concept", "code"):
        if op == "is-a":
            return {value} | h.closure(value, h.children) if value in h.codes else set()
        if op == "descendent-of":
            return h.closure(value, h.children)
        if op == "is-not-a":
            return set(h.codes) - ({value} | h.closure(value, h.children))
        if op == "generalizes":
            return {value} | h.closure(value, h.parents) if value in h.codes else set()
        if op == "in":
            return set(value.split(",")) & set(h.codes)
        if op == "not-in":
            return set(h.codes) - set(value.split(","))
        if op == "=":
            return {value} & set(h.codes)
        if op == "regex":
            pattern = re.compile(value)
            return {c for c in h.codes if pattern.fullmatch(c)}
        return None
    if op == "=":
        return {c for c in h.codes if value in h.properties.get(c, {}).get(prop, ())}
    if op == "exists":
        want = value == "true"
        return {c for c in h.codes if (prop in h.properties.get(c, {})) == want}
    if op == "regex":
        pattern = re.compile(value)
        return {
            c for c in h.codes if any(pattern.fullmatch(v) for v in h.properties.get(c, {}).get(prop, ()))
        }
    return None


def _contains_codes(contains: Any) -> Iterator[tuple[str, str]]:
    for item in contains:
        if isinstance(item.get("system"), str) and isinstance(item.get("code"), str):
            yield item["system"], item["code"]
        yield from _contains_codes(item.get("contains", ()))
