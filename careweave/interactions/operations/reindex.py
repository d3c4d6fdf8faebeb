"""$reindex at system level: re-extract index rows for a tenant, in the background, with progress.

``POST [base]/$reindex`` queues a job (optionally limited by ``type`` and ``url`` parameters of a
Parameters body: resource types, SearchParameter URLs) and answers with its id; ``GET
[base]/$reindex?job=N`` reports one job's progress, ``GET [base]/$reindex`` every job of the tenant.
Custom SearchParameters are reindexed by themselves when created; this is the manual lever.
"""

from __future__ import annotations

from typing import Any

from careweave.errors import error
from careweave.interactions.common import parse_body
from careweave.interactions.context import Services
from careweave.interactions.request import Request
from careweave.interactions.result import Result
from careweave.store.base import Job, Transaction

__all__ = ["reindex"]


def _job_parameters(job: Job) -> list[dict[str, Any]]:
    progress = 100.0 if job.state == "done" else (100.0 * job.done / job.total if job.total else 0.0)
    parts: list[dict[str, Any]] = [
        {"name": "job", "valueInteger": job.jid},
        {"name": "state", "valueCode": job.state},
        {"name": "processed", "valueInteger": job.done},
        {"name": "total", "valueInteger": job.total},
        {"name": "progress", "valueDecimal": round(progress, 1)},
    ]
    if job.payload.get("keys"):
        parts.append({"name": "parameters", "valueString": ", ".join(job.payload["keys"])})
    if job.error:
        parts.append({"name": "error", "valueString": job.error})
    return parts


async def reindex(services: Services, request: Request) -> Result:
    store = services.store
    if request.method == "GET":
        wanted = request.param("job")
        jobs = [
            j for j in await store.jobs(request.tenant, "reindex") if wanted is None or str(j.jid) == wanted
        ]
        if wanted is not None and not jobs:
            raise error("CW-2001", f"no reindex job {wanted}")
        if wanted is not None:
            return Result(200, {"resourceType": "Parameters", "parameter": _job_parameters(jobs[0])})
        return Result(
            200,
            {
                "resourceType": "Parameters",
                "parameter": [{"name": "job", "part": _job_parameters(j)} for j in jobs],
            },
        )
    types: list[str] = []
    urls: list[str] = []
    if request.body:
        body = parse_body(request, "Parameters")
        for p in body.get("parameter", ()):
            if p.get("name") == "type" and isinstance(p.get("valueCode"), str):
                types.append(p["valueCode"])
            elif p.get("name") == "url" and isinstance(p.get("valueUri") or p.get("valueUrl"), str):
                urls.append(p.get("valueUri") or p["valueUrl"])
    unknown = [t for t in types if t not in services.resource_types]
    if unknown:
        raise error("CW-1011", f"unknown resource types: {', '.join(unknown)}")
    keys = await _keys_for(services, request, urls)
    if keys:
        types = types or sorted({k.split(".")[0] for k in keys})
    payload = {"keys": keys or None, "types": types}

    def queue(tx: Transaction) -> int:
        return tx.add_job("reindex", payload)

    jid = await store.write(request.tenant, queue)
    services.wake_jobs()
    job = next(j for j in await store.jobs(request.tenant, "reindex") if j.jid == jid)
    return Result(
        200,
        {"resourceType": "Parameters", "parameter": _job_parameters(job)},
        content_location=f"{request.base_url}/$reindex?job={jid}",
    )


async def _keys_for(services: Services, request: Request, urls: list[str]) -> list[str]:
    if not urls:
        return []
    registry = (await services.search.of(request.tenant)).registry
    custom = await services.store.custom_params(request.tenant)
    keys = []
    for url in urls:
        found = [c.key for c in custom if c.url == url]
        spec = registry.by_url(url)
        if spec is not None:
            found += [p.key for t in registry.types() for p in registry.own(t) if p.url == url]
        if not found:
            raise error("CW-1011", f"no search parameter {url}")
        keys.extend(found)
    return sorted(set(keys))
