"""Subscriptions checked when they are written: what careweave cannot serve is refused at once.

Rules:
1. A Subscription write is validated like any resource, and then read as a subscription
   (:func:`~careweave.events.subscription.read_subscription`): its errors (CW-6001) are the
   write's errors, so a malformed channel, an unsafe header, an unknown payload content or a
   channel careweave does not deliver on (email, sms, message) is refused with every issue, never
   a subscription that silently does nothing (:func:`check_subscription`, no tenant needed).
2. What depends on the tenant is checked by :func:`check_servable`, given the tenant's search
   context (its custom search parameters included) and its topics: classic criteria and filters
   must compile, and a topic-based subscription must name a topic the tenant has. A Subscription
   written ``off`` is not checked against the tenant (turning off one whose topic is gone works).
3. Every error is CW-6001: the write answers 422 (unprocessable), unlike an invalid resource
   (CW-3001, 400). A topic removed later puts its subscriptions in ``error`` (the dispatcher).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from careweave.errors import Issue
from careweave.events.dispatch import channel_kind
from careweave.events.subscription import read_subscription
from careweave.events.trigger import CompiledTopic, compile_subscription
from careweave.search.params import SearchContext

__all__ = ["check_servable", "check_subscription", "with_subscription_checks"]

T = TypeVar("T")


def check_subscription(resource: dict[str, Any]) -> list[Issue]:
    """The issues that stop careweave from serving this Subscription anywhere (rule 1)."""
    spec, issues = read_subscription(resource)
    if spec is None:
        return issues
    if channel_kind(spec) is None:
        text = f"careweave does not deliver on the channel {spec.channel.type!r}"
        issues.append(Issue("error", "not-supported", text, ("Subscription.channel.type",), "CW-6001"))
    return issues


def check_servable(
    resource: dict[str, Any], ctx: SearchContext, topics: Mapping[str, CompiledTopic]
) -> list[Issue]:
    """The issues that stop this tenant's subscription from being served (rule 2)."""
    spec, _ = read_subscription(resource)
    if spec is None or spec.status == "off":
        return []
    topic = topics.get(spec.topic) if spec.topic is not None else None
    if spec.topic is not None and topic is None:
        text = f"unknown topic {spec.topic}: no SubscriptionTopic of this server has that url"
        return [Issue("error", "not-found", text, ("Subscription.criteria",), "CW-6001")]
    _, issues = compile_subscription(spec, topic, ctx)
    return [i for i in issues if i.is_error]


def with_subscription_checks(
    validate: Callable[[dict[str, Any], T], list[Issue]],
) -> Callable[[dict[str, Any], T], list[Issue]]:
    """``validate`` plus :func:`check_subscription` for Subscription resources."""

    def checked(resource: dict[str, Any], tenant: T) -> list[Issue]:
        issues = validate(resource, tenant)
        if resource.get("resourceType") == "Subscription" and not any(i.is_error for i in issues):
            issues = issues + check_subscription(resource)
        return issues

    return checked
