"""A subscription's filters against its topic's ``canFilterBy`` (subscriptions-backport IG v1.1.0).

Rules:
1. A topic that declares no ``canFilterBy`` for a resource type lets subscribers filter that type
   on any of its search parameters; one that declares some allows only those (entries without a
   resource apply to every trigger type).
2. Allowed modifiers and comparators: R4B lists both in ``modifier`` (``=``, ``eq`` ... ``ap``,
   ``above``, ``below``, ``in``, ``not-in``, ``of-type``); R5 splits them into ``comparator`` and
   ``modifier``. An empty list allows everything of its kind. A value without a prefix is the
   comparator ``eq`` (``=`` in R4B), and is checked only for date, number and quantity
   parameters, where prefixes exist.
"""

from __future__ import annotations

from collections.abc import Sequence

from careweave.errors import Issue
from careweave.events.topic import FilterBy, Topic
from careweave.search.params import SearchContext
from careweave.search.values import PREFIXES, split_prefix

__all__ = ["check_filter_by"]

_PREFIXED = frozenset({"date", "number", "quantity"})


def check_filter_by(
    topic: Topic, type_: str, items: Sequence[tuple[str, str]], text: str, ctx: SearchContext
) -> list[Issue]:
    """Issues for the parameters of one filter (``text``, parsed as ``items`` on ``type_``)."""
    declared = [f for f in topic.can_filter_by if f.resource in (None, type_)]
    if not declared:
        return []
    issues = []
    for name, value in items:
        code, _, modifier = name.split(".", 1)[0].partition(":")
        allowed = [f for f in declared if f.parameter == code]
        if not allowed:
            issues.append(_issue(f"filter {text!r}: the topic does not allow filtering on {code!r}"))
            continue
        param = ctx.registry.get(type_, code)
        kind = param.type if param is not None else ""
        if not any(_permits(f, modifier, kind, value) for f in allowed):
            refused = "a modifier or comparator the topic does not allow"
            issues.append(_issue(f"filter {text!r}: {name}={value} uses {refused}"))
    return issues


def _permits(entry: FilterBy, modifier: str, kind: str, value: str) -> bool:
    codes = set(entry.modifiers) | set(entry.comparators)
    comparators = codes & (PREFIXES | {"="})
    modifiers = codes - comparators
    if modifier and modifiers and modifier not in modifiers:
        return False
    if kind in _PREFIXED and comparators:
        prefix = split_prefix(value)[0]
        explicit = value[:2] == prefix
        return prefix in comparators or (not explicit and "=" in comparators)
    return True


def _issue(text: str) -> Issue:
    return Issue("error", "invalid", text, ("Subscription.criteria.extension",), "CW-6001")
