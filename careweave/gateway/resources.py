"""What the gateway writes: the resources a message maps to, validated and indexed (here or by a
worker process), remembered by content, and PUT inside the message's transaction.

Rules:
1. Every resource is validated and indexed as the FHIR API would (``prepare``); a refusal is the
   error ``prepare`` raises. Feeds repeat most of what they say (the facility, the sending
   application, clinicians, locations, an unchanged patient): a resource seen recently with the
   same content, for the same tenant settings and search parameters, reuses its validated,
   indexed form (``_RECENT`` of them). Only content seen before is kept (:class:`Recent`, as in
   the workers): what a feed says once would push out what it repeats. When this process
   validates, what a feed said once just before is on trial, and coming again costs no second
   validation; a worker's results are not (the worker sends them again).
2. :func:`store` PUTs each resource (``writes.update``: versions, meta, index rows, the change
   log). A resource whose stored version is one this gateway wrote with the same mapped content
   is left alone without reading its body (``writes.update`` would find it unchanged too, at the
   cost of parsing it); :meth:`Resources.remember` keeps those versions after each commit
   (``_STORED`` of them). A change through the FHIR API changes the version, so the next message
   writes again (snapshot semantics).
3. A Patient is merged with its stored version first (``merge_patient``: links and retired
   records outlive later messages), and validated and indexed again, inside the write job, when
   that changed it.
4. Inside one transaction (a commit group holds several messages: commit.py) a resource checked
   or written once is not looked up again while the content to write is the same.
5. A resource is serialised when it is prepared, outside the write job (``writes.serialise``;
   the job joins the body around its version stamp, ``writes.put_serialised``): the writer, which
   every message waits for, does less. A Patient that merging changed is serialised in the job.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable, Mapping
from typing import Any

import orjson

from careweave.errors import CareweaveError
from careweave.gateway.workers import Mapped, Recent
from careweave.hl7v2.mapping import merge_patient
from careweave.interactions.common import check_id, check_type, prepare
from careweave.interactions.context import Services
from careweave.interactions.request import Request
from careweave.store import writes
from careweave.store.base import Tenant, Transaction

__all__ = ["Item", "Ready", "Remake", "Resources", "Written", "store"]

_RECENT = 4096  # validated, indexed resources remembered by content (rule 1)
_STORED = 50_000  # resources whose stored version and content are known (rule 2)
Key = tuple[int, str, str]  # tenant key, resource type, id
Ready = tuple[writes.Prepared, writes.Serialised]  # validated, indexed, serialised (rule 5)
Item = tuple[writes.Prepared, bytes, writes.Serialised]  # ... and its mapped content
Written = tuple[Key, int, bytes]  # a resource, its version now, its content
Remake = Callable[[dict[str, Any]], writes.Prepared]  # validate and index (in a write job)


class Resources:
    """The caches of rules 1 and 2, one per gateway."""

    def __init__(self, services: Services) -> None:
        self.services = services
        self._recent: Recent[tuple[tuple[int, int, bool], bytes], Ready] = Recent(_RECENT)
        self.stored: dict[Key, tuple[int, bytes]] = {}  # resource -> (version, mapped content)
        self._checked: weakref.WeakKeyDictionary[Transaction, dict[Key, tuple[int, bytes]]] = (
            weakref.WeakKeyDictionary()
        )

    async def prepared(
        self, tenant: Tenant, bundle: dict[str, Any] | None, mapped: Mapped | None
    ) -> list[Item]:
        """Rule 1: validate and index what a message maps to (its Bundle, or a worker's results)."""
        if mapped is not None:
            return await self._prepared_mapped(tenant, mapped)
        assert bundle is not None
        return await self._prepared_here(tenant, bundle)

    async def _prepared_mapped(self, tenant: Tenant, mapped: Mapped) -> list[Item]:
        """A worker's results: index rows, a refusal, or None where the worker sent the rows
        before (this process's cache has them, or the resource is prepared here)."""
        profiles = bool(tenant.setting("validate_profiles", False))
        scope = (tenant.key, tenant.params_generation, profiles)
        got: dict[bytes, Ready] = {}
        missing: list[bytes] = []
        for url, content, result in mapped.entries:
            if content in got:
                continue
            if isinstance(result, list):  # refused: the same error prepare() raises
                errors = [i for i in result if i.is_error]
                code = "CW-3002" if all(i.details == "CW-3002" for i in errors) else "CW-3001"
                raise CareweaveError(code, f"{len(errors)} validation error(s)", result)
            if result is None:
                known = self._recent.get((scope, content))
                if known is None:
                    missing.append(content)
                else:
                    got[content] = known
                continue
            resource = orjson.loads(content)
            check_id(resource.get("id"))
            got[content] = ready = _ready(writes.Prepared(url.partition("/")[0], resource, result))
            self._keep(scope, content, ready, trial=False)  # the worker sends it again if need be
        if missing:
            request = Request(tenant=tenant, method="PUT")
            for content in missing:
                ready = _ready(await prepare(self.services, request, orjson.loads(content)))
                got[content] = ready
                self._keep(scope, content, ready)
        return [(got[content][0], content, got[content][1]) for _, content, _ in mapped.entries]

    def _keep(
        self, scope: tuple[int, int, bool], content: bytes, ready: Ready, *, trial: bool = True
    ) -> None:
        self._recent.put((scope, content), ready, trial=trial)

    async def _prepared_here(self, tenant: Tenant, bundle: dict[str, Any]) -> list[Item]:
        """Validate and index every resource of the mapped Bundle (rule 5); raises CareweaveError.

        Feeds repeat most of what they say (the facility, the sending application, clinicians,
        locations, an unchanged patient): a resource seen recently with the same content, for the
        same tenant settings and search parameters, reuses its validated, indexed form."""
        profiles = bool(tenant.setting("validate_profiles", False))
        scope = (tenant.key, tenant.params_generation, profiles)
        got: dict[bytes, Ready] = {}  # held here: others may evict them meanwhile
        contents = []
        missing: dict[bytes, dict[str, Any]] = {}
        for entry in bundle["entry"]:
            resource = entry["resource"]
            content = orjson.dumps(resource, option=orjson.OPT_SORT_KEYS)
            contents.append(content)
            known = self._recent.get((scope, content))
            if known is not None:
                got[content] = known
            elif content not in missing:
                check_type(self.services, resource.get("resourceType"))
                check_id(resource.get("id"))
                missing[content] = resource
        if missing:
            request = Request(tenant=tenant, method="PUT")
            found = [_ready(await prepare(self.services, request, r)) for r in missing.values()]
            for content, ready in zip(missing, found, strict=True):
                got[content] = ready
                self._keep(scope, content, ready)
        return [(got[content][0], content, got[content][1]) for content in contents]

    async def remaker(self, tenant: Tenant) -> Remake:
        """Validation and indexing for a write job (a Patient merged with its stored version)."""
        indexer = (await self.services.search.of(tenant)).indexer
        validate = self.services.validate

        def remake(resource: dict[str, Any]) -> writes.Prepared:
            issues = validate(resource, tenant)
            errors = [i for i in issues if i.is_error]
            if errors:
                code = "CW-3002" if all(i.details == "CW-3002" for i in errors) else "CW-3001"
                raise CareweaveError(code, f"{len(errors)} validation error(s)", issues)
            return writes.Prepared(resource["resourceType"], resource, indexer.index(resource))

        return remake

    def checked(self, tx: Transaction) -> dict[Key, tuple[int, bytes]]:
        """Rule 4: the resources whose current version (and mapped content) ``tx`` knows. A
        transaction object lives for one run of one writer job (a rerun gets a new one), so what
        it knows is never carried past a rollback. Called in the writer only."""
        found = self._checked.get(tx)
        if found is None:
            found = self._checked[tx] = {}
        return found

    def remember(self, written: list[Written]) -> None:
        """After a commit: the versions this gateway now knows the content of (rule 2)."""
        for key, version, content in written:
            self.stored.pop(key, None)
            if len(self.stored) >= _STORED:
                del self.stored[next(iter(self.stored))]  # the oldest
            self.stored[key] = (version, content)


def store(
    tx: Transaction,
    items: list[Item],
    known: Mapping[Key, tuple[int, bytes]],
    remake: Remake,
    here: dict[Key, tuple[int, bytes]],
) -> list[Written]:
    """PUT each resource (``writes.update``: versions, meta, index rows, the change log); returns
    what now stands where. A resource whose stored version is one this gateway wrote or saw with
    the same content is left alone without reading its body (``writes.update`` would find it
    unchanged too, at the cost of parsing and re-serialising it). A Patient is merged with its
    stored version first (links and retired records outlive later messages: ``merge_patient``).

    What one transaction has checked or written (``here``: :meth:`Resources.checked`) is not
    looked up again in it (rule 4): the messages of a commit group share the facility, the
    application, clinicians and locations."""
    out = []
    for prepared, content, serialised in items:
        id = prepared.resource["id"]
        key = (tx.tenant.key, prepared.type, id)
        now = here.get(key)
        if now is not None and now[1] == content:
            continue  # checked or written in this transaction with this content
        seen = known.get(key) if now is None else None
        if seen is not None and seen[1] == content:
            current = tx.current(prepared.type, id)
            if current is not None and not current.deleted and current.version == seen[0]:
                here[key] = seen
                continue
        merged = _merged(tx, prepared, remake) if prepared.type == "Patient" else prepared
        if merged is prepared:
            outcome = writes.put_serialised(tx, serialised)
        else:
            outcome = writes.update(tx, merged, id)
        if outcome.stored is not None:
            out.append((key, outcome.stored.version, content))
            here[key] = (outcome.stored.version, content)
    return out


def _ready(prepared: writes.Prepared) -> Ready:
    return prepared, writes.serialise(prepared.resource, prepared.index)


def _merged(tx: Transaction, prepared: writes.Prepared, remake: Remake) -> writes.Prepared:
    """The mapped Patient merged with the stored one, validated and indexed again if it changed."""
    current = tx.current("Patient", prepared.resource["id"])
    if current is None or current.deleted or current.body is None:
        return prepared
    merged = merge_patient(prepared.resource, orjson.loads(current.body))
    return prepared if merged is prepared.resource else remake(merged)
