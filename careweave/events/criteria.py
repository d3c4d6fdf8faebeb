"""Search-style criteria of subscriptions and topics -> query plans (search.html, subscription.html).

Rules:
1. Three shapes: R4 ``Subscription.criteria`` and the backport's filter criteria are
   ``Type?query`` (:func:`criteria_plan`); a topic's ``queryCriteria.previous``/``current`` are
   a bare ``query`` for the trigger's resource type (:func:`query_plan`).
2. The query is decoded as a URL query (``parse_qsl``, blank values kept) and parsed with
   :func:`~careweave.search.params.parse_search`, strictly: a parameter we do not know or support
   is an error (CW-5001), never ignored, since ignoring a filter would notify too much.
3. Result parameters (``_sort``, ``_count``, ``_include`` ...) say nothing about which resources
   match; they are refused (CW-5001) so that a subscriber is not misled into thinking they apply.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import parse_qsl

from careweave.errors import error
from careweave.search.params import SearchContext, parse_search
from careweave.search.plan import QueryPlan
from careweave.search.results import RESULT_PARAMS

__all__ = ["Criteria", "criteria_plan", "query_plan", "split_criteria"]


@dataclass(frozen=True, slots=True)
class Criteria:
    """A parsed ``Type?query``: the resource type, its search items and the plan they make."""

    type: str
    items: tuple[tuple[str, str], ...]
    plan: QueryPlan


def split_criteria(text: str) -> tuple[str, str]:
    """``Observation?code=x`` -> (``Observation``, ``code=x``); a leading base URL or ``/`` is
    dropped. Raises CW-5002 when there is no resource type."""
    head, _, query = text.strip().partition("?")
    type_ = head.rstrip("/").rsplit("/", 1)[-1]
    if not type_ or not type_[0].isupper():
        raise error("CW-5002", f"criteria must start with a resource type: {text!r}")
    return type_, query


def criteria_plan(text: str, ctx: SearchContext) -> Criteria:
    """A ``Type?query`` criteria string as a plan over that type (rule 1)."""
    type_, query = split_criteria(text)
    if type_ not in ctx.resource_types:
        raise error("CW-5002", f"criteria name an unknown resource type {type_!r}")
    items = _items(query)
    return Criteria(type_, items, _plan(type_, items, ctx))


def query_plan(type_: str, query: str, ctx: SearchContext) -> QueryPlan:
    """A bare query (``status:not=finished``) as a plan over ``type_`` (rule 1)."""
    return _plan(type_, _items(query), ctx)


def _items(query: str) -> tuple[tuple[str, str], ...]:
    items = tuple(parse_qsl(query.lstrip("?"), keep_blank_values=True))
    results = [name for name, _ in items if name.split(":", 1)[0] in RESULT_PARAMS]
    if results:
        raise error("CW-5001", f"criteria cannot use result parameters: {', '.join(results)}")
    return items


def _plan(type_: str, items: tuple[tuple[str, str], ...], ctx: SearchContext) -> QueryPlan:
    return parse_search((type_,), items, ctx, count=1, max_count=1, strict=True).plan
