"""Subscriptions checked when they are written: what careweave cannot serve is refused at once.

Rules:
1. A Subscription write is validated like any resource, and then read as a subscription
   (:func:`~careweave.events.subscription.read_subscription`): its errors (CW-6001) are the
   write's errors, so a malformed channel, an unsafe header or an unknown payload content is a 400
   with every issue, never a subscription that silently does nothing.
2. Classic criteria are compiled against the R4 search parameters (chains and ``_has`` in
   ``previous`` criteria or filters are refused there); a channel careweave does not deliver on
   (email, sms, message) is refused. A topic-based subscription's topic is checked by the
   dispatcher, which knows the tenant's topics; an unknown one puts the Subscription in ``error``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from careweave.errors import Issue
from careweave.events.dispatch import channel_kind
from careweave.events.subscription import read_subscription
from careweave.events.trigger import compile_subscription
from careweave.search.params import SearchContext

__all__ = ["check_subscription", "with_subscription_checks"]

T = TypeVar("T")


def check_subscription(resource: dict[str, Any], ctx: SearchContext) -> list[Issue]:
    """The issues that stop careweave from serving this Subscription (rules 1-2)."""
    spec, issues = read_subscription(resource)
    if spec is None:
        return issues
    if channel_kind(spec) is None:
        text = f"careweave does not deliver on the channel {spec.channel.type!r}"
        issues.append(Issue("error", "not-supported", text, ("Subscription.channel.type",), "CW-6001"))
    if spec.criteria is not None:
        _, found = compile_subscription(spec, None, ctx)
        issues.extend(found)
    return issues


def with_subscription_checks(
    validate: Callable[[dict[str, Any], T], list[Issue]], ctx: SearchContext
) -> Callable[[dict[str, Any], T], list[Issue]]:
    """``validate`` plus :func:`check_subscription` for Subscription resources."""

    def checked(resource: dict[str, Any], tenant: T) -> list[Issue]:
        issues = validate(resource, tenant)
        if resource.get("resourceType") == "Subscription" and not any(i.is_error for i in issues):
            issues = issues + check_subscription(resource, ctx)
        return issues

    return checked
