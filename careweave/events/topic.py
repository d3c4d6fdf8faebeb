"""Subscription topics: what the Subscriptions R5 Backport IG (v1.1.0) calls a SubscriptionTopic.

FHIR R4 has no SubscriptionTopic resource. careweave accepts a topic in either of the two forms
the IG uses, read into one :class:`Topic`:

* an R4 ``Basic`` resource whose ``code`` is ``http://hl7.org/fhir/fhir-types#SubscriptionTopic``,
  carrying the R4B/R5 elements as cross-version extensions
  (``http://hl7.org/fhir/5.0/StructureDefinition/extension-SubscriptionTopic.url`` and so on;
  the IG's own R4 examples mix the ``4.3`` and ``5.0`` prefixes, and both are read for every
  element). These are stored in a tenant like any resource;
* R4B/R5 ``SubscriptionTopic`` JSON, which an R4 server cannot store but can be given as a
  built-in topic (configuration).

Rules:
1. Read: ``url``, ``version``, ``title``, ``status``, ``resourceTrigger`` (resource,
   supportedInteraction, queryCriteria with previous / current / resultForCreate /
   resultForDelete / requireBoth, fhirPathCriteria), ``canFilterBy`` (resource, filterParameter,
   the R4B ``modifier`` codes and the R5 ``comparator`` and ``modifier`` codes) and
   ``notificationShape`` (resource, include, revInclude). ``eventTrigger`` (non-FHIR events) is
   not supported and reported as a warning.
2. A trigger's ``resource`` may be a type name or its StructureDefinition URL; it is kept as the
   type name. A trigger without ``supportedInteraction`` fires on create, update and delete.
3. Reading never raises for user data: it returns the topic (None when it cannot be used) and
   the list of :class:`~careweave.errors.Issue` found.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from careweave.errors import Issue

__all__ = [
    "FHIR_TYPES",
    "INTERACTIONS",
    "FilterBy",
    "NotificationShape",
    "QueryCriteria",
    "ResourceTrigger",
    "Topic",
    "read_topic",
]

FHIR_TYPES = "http://hl7.org/fhir/fhir-types"
INTERACTIONS = frozenset({"create", "update", "delete"})
_XVER = (
    "http://hl7.org/fhir/5.0/StructureDefinition/extension-SubscriptionTopic.",
    "http://hl7.org/fhir/4.3/StructureDefinition/extension-SubscriptionTopic.",
)
_RESULTS = frozenset({"test-passes", "test-fails"})
_STRUCTURE = "http://hl7.org/fhir/StructureDefinition/"


@dataclass(frozen=True, slots=True)
class QueryCriteria:
    """``previous`` / ``current``: search queries (no type) on the version before / after the change.

    ``result_for_create``: the previous test's result when there is no previous version;
    ``result_for_delete``: the current test's result when there is no current version (both
    ``test-passes`` or ``test-fails``; absent, a test with nothing to test fails).
    ``require_both``: both tests must pass, else either one."""

    previous: str | None = None
    current: str | None = None
    result_for_create: str = "test-fails"
    result_for_delete: str = "test-fails"
    require_both: bool = False


@dataclass(frozen=True, slots=True)
class ResourceTrigger:
    resource: str
    interactions: frozenset[str] = INTERACTIONS
    query: QueryCriteria | None = None
    fhirpath: str | None = None
    description: str = ""


@dataclass(frozen=True, slots=True)
class FilterBy:
    """A parameter subscribers may filter on; ``resource`` None means any trigger resource.
    ``modifiers`` and ``comparators`` empty: any is allowed."""

    parameter: str
    resource: str | None = None
    modifiers: tuple[str, ...] = ()
    comparators: tuple[str, ...] = ()
    description: str = ""


@dataclass(frozen=True, slots=True)
class NotificationShape:
    resource: str
    includes: tuple[str, ...] = ()
    rev_includes: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Topic:
    url: str
    triggers: tuple[ResourceTrigger, ...]
    can_filter_by: tuple[FilterBy, ...] = ()
    shapes: tuple[NotificationShape, ...] = ()
    version: str | None = None
    title: str | None = None
    status: str = "active"

    @property
    def resource_types(self) -> frozenset[str]:
        return frozenset(t.resource for t in self.triggers)


def read_topic(resource: Mapping[str, Any]) -> tuple[Topic | None, list[Issue]]:
    """A topic from a Basic-wrapped topic or SubscriptionTopic JSON (see the module docstring)."""
    kind = resource.get("resourceType")
    if kind == "SubscriptionTopic":
        return _build(_Native(resource), "SubscriptionTopic")
    if kind == "Basic" and _is_topic_basic(resource):
        return _build(_CrossVersion(resource), "Basic")
    return None, [_issue("error", "not a SubscriptionTopic nor a Basic resource coded SubscriptionTopic")]


def _is_topic_basic(resource: Mapping[str, Any]) -> bool:
    code = resource.get("code")
    codings = code.get("coding", []) if isinstance(code, Mapping) else []
    return any(
        isinstance(c, Mapping) and c.get("code") == "SubscriptionTopic" and c.get("system") == FHIR_TYPES
        for c in codings
    )


def _issue(severity: str, text: str, where: str = "") -> Issue:
    code = "invalid" if severity == "error" else "informational"
    return Issue(severity, code, text, (where,) if where else ())


# -- two views of the same elements --------------------------------------------------------------
class _View(Protocol):
    def values(self, name: str) -> list[Any]: ...

    def value(self, name: str) -> Any: ...

    def children(self, name: str) -> list[_View]: ...


class _Native:
    """SubscriptionTopic JSON: elements are keys."""

    def __init__(self, node: Mapping[str, Any]) -> None:
        self.node = node

    def values(self, name: str) -> list[Any]:
        value = self.node.get(name)
        if value is None:
            return []
        return list(value) if isinstance(value, list) else [value]

    def value(self, name: str) -> Any:
        found = self.values(name)
        return found[0] if found else None

    def children(self, name: str) -> list[_View]:
        return [_Native(v) for v in self.values(name) if isinstance(v, Mapping)]


class _CrossVersion:
    """Basic with cross-version extensions: top-level elements by extension URL (``status`` is a
    modifierExtension), nested elements by the sub-extension's relative URL."""

    def __init__(self, node: Mapping[str, Any], top: bool = True) -> None:
        self.node = node
        self.top = top

    def _extensions(self, name: str) -> list[Mapping[str, Any]]:
        found = []
        for key in ("extension", "modifierExtension"):
            for ext in self.node.get(key, ()) if isinstance(self.node.get(key), list) else ():
                if isinstance(ext, Mapping) and _named(ext.get("url"), name, self.top):
                    found.append(ext)
        return found

    def values(self, name: str) -> list[Any]:
        out: list[Any] = []
        for ext in self._extensions(name):
            out.extend(v for k, v in ext.items() if k.startswith("value"))
        return out

    def value(self, name: str) -> Any:
        found = self.values(name)
        return found[0] if found else None

    def children(self, name: str) -> list[_View]:
        return [_CrossVersion(ext, top=False) for ext in self._extensions(name)]


def _named(url: Any, name: str, top: bool) -> bool:
    if not isinstance(url, str):
        return False
    if not top:
        return url == name
    return any(url == prefix + name for prefix in _XVER)


# -- building ----------------------------------------------------------------------------------
def _build(view: _View, source: str) -> tuple[Topic | None, list[Issue]]:
    issues: list[Issue] = []
    url = view.value("url")
    if not isinstance(url, str) or not url:
        issues.append(_issue("error", f"the topic has no url ({source})", "url"))
    if view.children("eventTrigger"):
        issues.append(_issue("warning", "eventTrigger is not supported; only resource triggers fire"))
    triggers = [_trigger(t, i, issues) for i, t in enumerate(view.children("resourceTrigger"))]
    live = tuple(t for t in triggers if t is not None)
    if not live:
        issues.append(_issue("error", "the topic has no usable resourceTrigger", "resourceTrigger"))
    filters = tuple(f for f in (_filter_by(c, issues) for c in view.children("canFilterBy")) if f)
    shapes = tuple(s for s in (_shape(c) for c in view.children("notificationShape")) if s)
    if any(i.is_error for i in issues) or not isinstance(url, str):
        return None, issues
    topic = Topic(
        url=url,
        triggers=live,
        can_filter_by=filters,
        shapes=shapes,
        version=_text(view.value("version")),
        title=_text(view.value("title")),
        status=_text(view.value("status")) or "active",
    )
    return topic, issues


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _type_name(value: Any) -> str | None:
    if not isinstance(value, str) or not value:
        return None
    name = value[len(_STRUCTURE) :] if value.startswith(_STRUCTURE) else value
    return name if name.isidentifier() and name[0].isupper() else None


def _trigger(view: _View, index: int, issues: list[Issue]) -> ResourceTrigger | None:
    where = f"resourceTrigger[{index}]"
    resource = _type_name(view.value("resource"))
    if resource is None:
        issues.append(_issue("error", f"{where}: resource must name a resource type", where))
        return None
    codes = [c for c in view.values("supportedInteraction") if isinstance(c, str)]
    unknown = sorted(set(codes) - INTERACTIONS)
    if unknown:
        issues.append(_issue("error", f"{where}: unknown supportedInteraction {unknown}", where))
        return None
    query = None
    for criteria in view.children("queryCriteria")[:1]:
        query = _query(criteria, where, issues)
    return ResourceTrigger(
        resource=resource,
        interactions=frozenset(codes) or INTERACTIONS,
        query=query,
        fhirpath=_text(view.value("fhirPathCriteria")),
        description=_text(view.value("description")) or "",
    )


def _query(view: _View, where: str, issues: list[Issue]) -> QueryCriteria:
    results = {}
    for name in ("resultForCreate", "resultForDelete"):
        value = view.value(name)
        if value is not None and value not in _RESULTS:
            issues.append(_issue("error", f"{where}.queryCriteria.{name} must be test-passes or test-fails"))
        results[name] = value if value in _RESULTS else "test-fails"
    return QueryCriteria(
        previous=_text(view.value("previous")),
        current=_text(view.value("current")),
        result_for_create=results["resultForCreate"],
        result_for_delete=results["resultForDelete"],
        require_both=view.value("requireBoth") is True,
    )


def _filter_by(view: _View, issues: list[Issue]) -> FilterBy | None:
    parameter = _text(view.value("filterParameter"))
    if not parameter:
        issues.append(_issue("warning", "a canFilterBy without filterParameter is ignored", "canFilterBy"))
        return None
    resource = view.value("resource")
    return FilterBy(
        parameter=parameter,
        resource=_type_name(resource) if resource is not None else None,
        modifiers=_codes(view.values("modifier")),
        comparators=_codes(view.values("comparator")),
        description=_text(view.value("description")) or "",
    )


def _codes(values: Iterable[Any]) -> tuple[str, ...]:
    return tuple(v for v in values if isinstance(v, str))


def _shape(view: _View) -> NotificationShape | None:
    resource = _type_name(view.value("resource"))
    if resource is None:
        return None
    return NotificationShape(resource, _codes(view.values("include")), _codes(view.values("revInclude")))
