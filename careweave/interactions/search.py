"""search: type level (GET and POST _search). Interim scope; the search issue completes it."""

from __future__ import annotations

from typing import Any

from careweave.errors import Issue, error
from careweave.interactions.bundle import link, search_entry
from careweave.interactions.common import check_type
from careweave.interactions.context import Services
from careweave.interactions.request import Request
from careweave.interactions.result import Result, operation_outcome
from careweave.search.params import parse_search

__all__ = ["search_type"]


async def search_type(services: Services, request: Request) -> Result:
    type_ = check_type(services, request.type)
    parsed = parse_search(
        [type_],
        request.params,
        services.search_params,
        count=services.default_count,
        max_count=services.max_count,
    )
    if parsed.ignored and request.prefer("handling") == "strict":
        raise error("CW-5001", f"unknown or unsupported parameters: {', '.join(parsed.ignored)}")
    page = await services.store.search(request.tenant, parsed.plan)
    entries: list[dict[str, Any]] = [search_entry(request.base_url, s) for s in page.matches]
    if parsed.ignored:
        outcome = operation_outcome(
            [
                Issue("warning", "not-supported", f"parameter {name!r} is not supported; ignored")
                for name in parsed.ignored
            ]
        )
        entries.append({"resource": outcome, "search": {"mode": "outcome"}})
    bundle: dict[str, Any] = {
        "resourceType": "Bundle",
        "type": "searchset",
        "link": [link("self", request.base_url, type_, list(parsed.used))],
        "entry": entries,
    }
    if page.total is not None:
        bundle["total"] = page.total
    return Result(200, bundle)
