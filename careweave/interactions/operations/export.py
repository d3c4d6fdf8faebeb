"""FHIR Bulk Data Access 2.0 $export: kick-off, status, files, cancel (hl7.org/fhir/uv/bulkdata).

Rules:
1. Kick-off ``[base]/$export``, ``[base]/Patient/$export`` or ``[base]/Group/[id]/$export`` (GET,
   or POST with a Parameters body) needs ``Prefer: respond-async``; it queues an export job for the
   tenant and answers 202 with ``Content-Location`` naming the status URL.
2. ``[base]/$export-poll-status?_jobId=N``: 202 with ``X-Progress`` and ``Retry-After`` while the
   job runs; 200 with the JSON manifest when it is done; an OperationOutcome with 500 if it failed;
   DELETE cancels it (202) and removes its files.
3. ``[base]/$export-file?_jobId=N&file=Type.ndjson`` streams an output file as
   ``application/fhir+ndjson``. Jobs and files are per tenant and survive a restart.
4. Parameters: ``_outputFormat`` (``application/fhir+ndjson``, ``application/ndjson``, ``ndjson``),
   ``_since``, ``_type``, ``_typeFilter`` (``Type?criteria``, several allowed), and for POST
   ``patient`` (references limiting a Patient or Group export).
"""

from __future__ import annotations

from typing import Any

from careweave.errors import error
from careweave.fhir.model import format_instant, parse_instant, parse_reference
from careweave.interactions.common import check_id, check_type, parse_body
from careweave.interactions.context import Services
from careweave.interactions.request import Request
from careweave.interactions.result import Result, operation_outcome
from careweave.store.base import Job, Transaction

__all__ = ["export", "export_file", "export_status"]

_FORMATS = {"application/fhir+ndjson", "application/ndjson", "ndjson"}


def _parameters(request: Request) -> list[tuple[str, str]]:
    """The kick-off parameters: the query string, or a POST body's Parameters."""
    items = [(k, v) for k, v in request.params if not k.startswith("_format")]
    if request.method == "POST" and request.body:
        body = parse_body(request, "Parameters")
        for p in body.get("parameter", ()):
            name = p.get("name")
            value = next((v for k, v in p.items() if k.startswith("value")), None)
            if isinstance(value, dict) and name == "patient":
                value = value.get("reference")
            if isinstance(name, str) and isinstance(value, str):
                items.append((name, value))
    return items


async def export(services: Services, request: Request) -> Result:
    if request.prefer("respond-async") is None:
        raise error("CW-1014", "a Bulk Data export needs the header Prefer: respond-async")
    level = "system" if request.type is None else ("patient" if request.id is None else "group")
    if level == "patient" and request.type != "Patient":
        raise error("CW-1012", "$export at type level is Patient/$export")
    if level == "group":
        check_type(services, request.type)
        if request.type != "Group":
            raise error("CW-1012", "$export at instance level is Group/[id]/$export")
        group = await services.store.read(request.tenant, "Group", check_id(request.id))
        if group is None or group.deleted:
            raise error("CW-2001", f"Group/{request.id} is not known")
    types: list[str] = []
    filters: list[str] = []
    patients: list[str] = []
    since_ms: int | None = None
    for name, value in _parameters(request):
        if name == "_outputFormat" and value not in _FORMATS:
            raise error("CW-1011", f"_outputFormat {value!r} is not supported (ndjson only)")
        elif name == "_since":
            since_ms = parse_instant(value)
            if since_ms is None:
                raise error("CW-1011", f"_since must be an instant with a time zone, not {value!r}")
        elif name == "_type":
            types.extend(t.strip() for t in value.split(",") if t.strip())
        elif name == "_typeFilter":
            filters.extend(f.strip() for f in value.split(",") if f.strip())
        elif name == "patient":
            ref = parse_reference(value)
            if ref is None or ref.type != "Patient":
                raise error("CW-1011", f"patient must reference a Patient, not {value!r}")
            patients.append(ref.id)
    unknown = [t for t in types if t not in services.resource_types]
    if unknown:
        raise error("CW-1011", f"_type names unknown resource types: {', '.join(unknown)}")
    for f in filters:
        type_, _, query = f.partition("?")
        if type_ not in services.resource_types or not query:
            raise error("CW-1011", f"_typeFilter must be Type?criteria, not {f!r}")
    payload: dict[str, Any] = {
        "level": level,
        "group": request.id if level == "group" else None,
        "types": types,
        "since": since_ms,
        "filters": filters,
        "patients": patients,
        "request": f"{request.base_url}/{request.path}",
        "base": request.base_url,
        "done": [],
        "output": [],
    }

    def queue(tx: Transaction) -> int:
        payload["transactionTime"] = format_instant(tx.now_ms)
        return tx.add_job("export", payload)

    jid = await services.store.write(request.tenant, queue)
    services.wake_jobs()
    return Result(
        202, operation_outcome([]), content_location=f"{request.base_url}/$export-poll-status?_jobId={jid}"
    )


async def _job(services: Services, request: Request) -> Job:
    raw = request.param("_jobId")
    job = None
    if raw is not None and raw.isdigit():
        job = next(
            (j for j in await services.store.jobs(request.tenant, "export") if j.jid == int(raw)), None
        )
    if job is None or job.state == "cancelled":
        raise error("CW-2001", f"no export job {raw!r}")
    return job


async def export_status(services: Services, request: Request) -> Result:
    job = await _job(services, request)
    if request.method == "DELETE":
        await services.store.update_job(request.tenant, job.jid, state="cancelled")
        services.files.remove_job(request.tenant.key, job.jid)
        return Result(202, operation_outcome([]))
    if job.state in ("queued", "running"):
        progress = f"{job.done} resources exported"
        if job.total:
            progress += f" of about {job.total} ({100 * job.done // max(job.total, 1)}%)"
        return Result(202, None, headers={"X-Progress": progress, "Retry-After": "2"})
    if job.state == "failed":
        raise error("CW-1000", f"the export failed: {job.error or 'unknown error'}")
    base = request.base_url
    manifest = {
        "transactionTime": job.payload.get("transactionTime"),
        "request": job.payload.get("request"),
        "requiresAccessToken": False,
        "output": [
            {
                "type": o["type"],
                "url": f"{base}/$export-file?_jobId={job.jid}&file={o['file']}",
                "count": o["count"],
            }
            for o in job.payload.get("output", ())
        ],
        "error": [],
    }
    return Result(200, manifest, media_type="application/json")


async def export_file(services: Services, request: Request) -> Result:
    job = await _job(services, request)
    name = request.param("file") or ""
    if job.state != "done" or not services.files.exists(request.tenant.key, job.jid, name):
        raise error("CW-2001", f"no export file {name!r} in job {job.jid}")
    return Result(
        200,
        None,
        media_type="application/fhir+ndjson",
        stream=services.files.read(request.tenant.key, job.jid, name),
    )
