"""search: type level (GET and POST _search), system level, and compartments (search.html).

Rules:
1. Parameters we do not know or support are ignored and reported in an OperationOutcome entry
   (search.mode = outcome), unless the client sent ``Prefer: handling=strict`` (then 400).
2. Links: ``self`` (the parameters applied), ``next`` and ``previous`` (signed keyset cursors bound to
   the tenant and the query), so paging stays correct while others write.
3. ``Bundle.total`` is given when asked (``_total=accurate|estimate``), and whenever the whole result
   fits in the first page (then it costs nothing).
"""

from __future__ import annotations

import hashlib
from dataclasses import replace
from typing import Any

import orjson

from careweave.errors import Issue, error
from careweave.interactions.bundle import link
from careweave.interactions.common import check_id, check_type
from careweave.interactions.context import Services
from careweave.interactions.paging import open_cursor, seal_cursor
from careweave.interactions.request import Request
from careweave.interactions.result import Result, operation_outcome
from careweave.search.params import ParsedSearch, SearchContext, parse_search
from careweave.search.plan import And, Or, Predicate, RefMatch, TypeIn
from careweave.search.summary import subset
from careweave.store.base import SearchPage, StoredResource

__all__ = ["search_compartment", "search_system", "search_type"]


async def _context(services: Services, request: Request) -> SearchContext:
    registry = (await services.search.of(request.tenant)).registry
    return SearchContext(registry, services.resource_types, request.base_url, services.expand)


async def _parse(services: Services, request: Request, types: tuple[str, ...]) -> ParsedSearch:
    return parse_search(
        types,
        request.params,
        await _context(services, request),
        count=services.default_count,
        max_count=services.max_count,
        strict=request.prefer("handling") == "strict",
    )


def _query_hash(types: tuple[str, ...], used: tuple[tuple[str, str], ...], path: str) -> str:
    return hashlib.sha256(orjson.dumps([types, used, path])).hexdigest()[:16]


async def _run(
    services: Services,
    request: Request,
    parsed: ParsedSearch,
    path: str,
    extra: Predicate | None = None,
) -> Result:
    plan = parsed.plan
    if extra is not None:
        plan = replace(plan, where=extra if plan.where is None else And((extra, plan.where)))
    digest = _query_hash(plan.types, parsed.used, path)
    if parsed.results.cursor is not None:
        cursor = open_cursor(services.cursor_secret, request.tenant.name, parsed.results.cursor)
        if not isinstance(cursor, dict) or cursor.get("q") != digest:
            raise error("CW-5003", "the paging cursor belongs to another search")
        keys = tuple(cursor["k"])
        plan = replace(plan, after=keys) if cursor.get("d") == "n" else replace(plan, before=keys)
    page = await services.store.search(request.tenant, plan)
    return Result(200, _bundle(services, request, parsed, page, path, digest))


def _bundle(
    services: Services,
    request: Request,
    parsed: ParsedSearch,
    page: SearchPage,
    path: str,
    digest: str,
) -> dict[str, Any]:
    used = list(parsed.used)
    links = [link("self", request.base_url, path, used + _cursor_param(request))]
    for relation, keys, direction in (("next", page.next_after, "n"), ("previous", page.prev_before, "p")):
        if keys is not None:
            token = seal_cursor(
                services.cursor_secret, request.tenant.name, {"q": digest, "k": list(keys), "d": direction}
            )
            links.append(link(relation, request.base_url, path, [*used, ("_cursor", token)]))
    results = parsed.results
    entries = [_entry(services, request, r, "match", results.summary, results.elements) for r in page.matches]
    entries += [
        _entry(services, request, r, "include", results.summary, results.elements) for r in page.includes
    ]
    if parsed.ignored:
        outcome = operation_outcome(
            [
                Issue(
                    "warning",
                    "not-supported",
                    f"search parameter {name!r} is unknown or not supported here; it was ignored",
                )
                for name in parsed.ignored
            ]
        )
        entries.append({"resource": outcome, "search": {"mode": "outcome"}})
    bundle: dict[str, Any] = {"resourceType": "Bundle", "type": "searchset"}
    if page.total is not None:
        bundle["total"] = page.total
    bundle["link"] = links
    if results.summary != "count":
        bundle["entry"] = entries
    return bundle


def _cursor_param(request: Request) -> list[tuple[str, str]]:
    token = request.param("_cursor")
    return [("_cursor", token)] if token else []


def _entry(
    services: Services,
    request: Request,
    stored: StoredResource,
    mode: str,
    summary: str | None,
    elements: tuple[str, ...],
) -> dict[str, Any]:
    body: Any
    if summary in (None, "false") and not elements:
        body = orjson.Fragment(stored.body or b"{}")
    else:
        body = subset(services.model, orjson.loads(stored.body or b"{}"), summary, elements)
    return {
        "fullUrl": f"{request.base_url}/{stored.type}/{stored.id}",
        "resource": body,
        "search": {"mode": mode},
    }


async def search_type(services: Services, request: Request) -> Result:
    type_ = check_type(services, request.type)
    return await _run(services, request, await _parse(services, request, (type_,)), type_)


async def search_system(services: Services, request: Request) -> Result:
    parsed = await _parse(services, request, ())
    return await _run(services, request, parsed, "")


async def search_compartment(services: Services, request: Request) -> Result:
    """``[base]/Patient/123/Observation``: Observations in Patient 123's compartment."""
    owner = check_type(services, request.type)
    owner_id = check_id(request.id)
    compartment = services.compartments.get(owner)
    if compartment is None:
        raise error("CW-1012", f"{owner} has no compartment")
    wanted = request.compartment or ""
    types = tuple(sorted(compartment)) if wanted == "*" else (check_type(services, wanted),)
    members: list[Predicate] = []
    for type_ in types:
        for code in compartment.get(type_, ()):
            param = services.search_params.get(type_, code)
            if param is not None:
                member: Predicate = RefMatch(param.key, owner, owner_id)
                members.append(member if len(types) == 1 else And((_type_is(type_), member)))
    if not members:
        raise error("CW-1012", f"{wanted} is not in the {owner} compartment")
    parsed = await _parse(services, request, types)
    path = f"{owner}/{owner_id}/{wanted}"
    return await _run(services, request, parsed, path, Or(tuple(members)))


def _type_is(type_: str) -> Predicate:
    return TypeIn((type_,))
