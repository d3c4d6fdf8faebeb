"""Versioned writes, written once over the Transaction interface and shared by every backend.

Rules (FHIR R4 http.html, sections create, update, delete, conditional create/update/delete):
1. A stored version gets ``meta.versionId`` (1, 2, 3 ...) and ``meta.lastUpdated`` (the transaction's
   clock), whatever the client sent in them; the other meta elements are kept.
2. An update whose content equals the current version's (meta.versionId and meta.lastUpdated aside)
   stores nothing and returns the current version: reloading the same data changes nothing.
3. ``If-Match`` names the version the client last saw: any other current version fails with 412.
4. A deletion appends a version with no body; reading it answers 410. Deleting what is already
   deleted, or was never there, stores nothing.
5. Conditional operations search inside the same serialised transaction, so two conditional creates
   with the same criteria can never both create.
6. A resource can be serialised ahead of its transaction (:func:`serialise`, bulk load does it in
   worker processes): its body is then joined around the version stamp, byte for byte the body
   :func:`update` would store, and compared with the current version without parsing when both
   are the same bytes. A batch's resources are looked up at once (``tx.prefetch``) before the
   per-resource lookups.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from careweave.errors import error
from careweave.fhir.model import format_instant
from careweave.search.index import IndexRows
from careweave.search.plan import QueryPlan
from careweave.store.base import NewVersion, StoredResource, Transaction

__all__ = [
    "Outcome",
    "Prepared",
    "Serialised",
    "conditional_delete",
    "conditional_update",
    "create",
    "delete",
    "put_serialised",
    "serialise",
    "update",
    "update_serialised",
]


@dataclass(frozen=True, slots=True)
class Prepared:
    """A validated resource, with its index rows, ready to be stored."""

    type: str
    resource: dict[str, Any]
    index: IndexRows


@dataclass(frozen=True, slots=True)
class Outcome:
    """What a write did: ``stored`` is the resulting current version (None when nothing exists)."""

    stored: StoredResource | None
    created: bool = False
    changed: bool = True


@dataclass(frozen=True, slots=True)
class Serialised:
    """A validated resource serialised ahead of its write (rule 6): its stored body is ``head``,
    the version, ``","lastUpdated":"``, the instant and ``tail``."""

    type: str
    id: str
    head: bytes
    tail: bytes
    index: IndexRows


_BETWEEN = b'","lastUpdated":"'


def serialise(resource: dict[str, Any], index: IndexRows) -> Serialised:
    """``resource`` (with a valid ``id``) ready for :func:`update_serialised`."""
    body = _stamped(resource, "", "")
    # the stamp leads the body: resourceType, id (neither holds a quote), then meta with versionId
    # (empty here) and lastUpdated first
    cut = body.index(_BETWEEN)
    head = body[:cut]
    assert head.endswith(b'","meta":{"versionId":"'), head
    return Serialised(resource["resourceType"], resource["id"], head, body[cut + len(_BETWEEN) :], index)


def update_serialised(tx: Transaction, batch: Sequence[Serialised]) -> int:
    """:func:`update` of each resource (``PUT``); returns how many stored a new version."""
    tx.prefetch([(item.type, item.id) for item in batch])
    return sum(put_serialised(tx, item).changed for item in batch)


def put_serialised(tx: Transaction, item: Serialised) -> Outcome:
    """:func:`update` (``PUT``, no If-Match) of one serialised resource: the same versions and
    bodies, without serialising in the transaction."""
    current = tx.current(item.type, item.id)
    if current is not None and not current.deleted and current.body is not None:
        instant = format_instant(current.updated_ms).encode()
        if _same_content(current.body, item, current.version, instant):
            return Outcome(current, created=False, changed=False)
    version = 1 if current is None else current.version + 1
    body = _joined(item, version, format_instant(tx.now_ms).encode())
    stored = tx.append(NewVersion(item.type, item.id, version, tx.now_ms, False, body, "PUT", item.index))
    return Outcome(stored, created=current is None or current.deleted)


def _same_content(body: bytes, item: Serialised, version: int, instant: bytes) -> bool:
    """Rule 2 for a serialised resource: the same bytes as the current version (as this stamp
    would have stored it), else the same content as parsed."""
    if body == _joined(item, version, instant):
        return True
    return _content_key(orjson.loads(body)) == _content_key(orjson.loads(_joined(item, 0, b"")))


def _joined(item: Serialised, version: int, instant: bytes) -> bytes:
    return b"".join((item.head, str(version).encode(), _BETWEEN, instant, item.tail))


def _stamp(resource: dict[str, Any], version: int, now_ms: int) -> bytes:
    return _stamped(resource, str(version), format_instant(now_ms))


def _stamped(resource: dict[str, Any], version_id: str, last_updated: str) -> bytes:
    meta = {"versionId": version_id, "lastUpdated": last_updated}
    old_meta = resource.get("meta")
    if isinstance(old_meta, dict):
        meta.update((k, v) for k, v in old_meta.items() if k not in ("versionId", "lastUpdated"))
    # resourceType, id and meta first, then the other elements in their order (a key set again
    # keeps its place)
    out = {"resourceType": resource["resourceType"], "id": resource["id"], "meta": meta, **resource}
    out["meta"] = meta
    return orjson.dumps(out)


def _content_key(resource: dict[str, Any]) -> bytes:
    meta = resource.get("meta")
    if isinstance(meta, dict):
        meta = {k: v for k, v in meta.items() if k not in ("versionId", "lastUpdated")}
        resource = {**resource, "meta": meta} if meta else {k: v for k, v in resource.items() if k != "meta"}
    return orjson.dumps(resource, option=orjson.OPT_SORT_KEYS)


def _put(
    tx: Transaction, prepared: Prepared, id: str, current: StoredResource | None, method: str
) -> StoredResource:
    resource = dict(prepared.resource)
    resource["id"] = id
    version = 1 if current is None else current.version + 1
    body = _stamp(resource, version, tx.now_ms)
    return tx.append(NewVersion(prepared.type, id, version, tx.now_ms, False, body, method, prepared.index))


def create(tx: Transaction, prepared: Prepared, id: str, if_none_exist: QueryPlan | None = None) -> Outcome:
    """Create with a server-assigned ``id``; with ``if_none_exist``, only when nothing matches."""
    if if_none_exist is not None:
        found = tx.search_ids(if_none_exist, 2)
        if len(found) > 1:
            raise error("CW-2005", "If-None-Exist matches more than one resource; nothing was created")
        if found:
            existing = tx.current(*found[0])
            return Outcome(existing, created=False, changed=False)
    if tx.current(prepared.type, id) is not None:
        raise error("CW-2007", f"{prepared.type}/{id} exists already")
    return Outcome(_put(tx, prepared, id, None, "POST"), created=True)


def update(
    tx: Transaction,
    prepared: Prepared,
    id: str,
    if_match: int | None = None,
    method: str = "PUT",
) -> Outcome:
    """Update (or update-as-create) ``type/id``; ``if_match`` is the version the client holds."""
    current = tx.current(prepared.type, id)
    if if_match is not None and (current is None or current.deleted or current.version != if_match):
        have = "none" if current is None or current.deleted else str(current.version)
        raise error(
            "CW-2004",
            f"If-Match asks for version {if_match} of {prepared.type}/{id}; the current version is {have}",
        )
    if current is not None and not current.deleted and current.body is not None:
        resource = {**prepared.resource, "id": id}
        if _content_key(orjson.loads(current.body)) == _content_key(resource):
            return Outcome(current, created=False, changed=False)
    created = current is None or current.deleted
    return Outcome(_put(tx, prepared, id, current, method), created=created)


def delete(tx: Transaction, type: str, id: str) -> Outcome:
    current = tx.current(type, id)
    if current is None or current.deleted:
        return Outcome(current, changed=False)
    stored = tx.append(NewVersion(type, id, current.version + 1, tx.now_ms, True, None, "DELETE", None))
    return Outcome(stored)


def conditional_update(tx: Transaction, prepared: Prepared, criteria: QueryPlan, new_id: str) -> Outcome:
    """``PUT Type?criteria``: the spec's rules for zero, one or many matches."""
    found = tx.search_ids(criteria, 2)
    body_id = prepared.resource.get("id")
    if len(found) > 1:
        raise error("CW-2005", "the conditional update criteria match more than one resource")
    if len(found) == 1:
        match_id = found[0][1]
        if body_id is not None and body_id != match_id:
            raise error(
                "CW-2008",
                f"the criteria match {prepared.type}/{match_id} but the body has id {body_id}",
            )
        return update(tx, prepared, match_id)
    if body_id is not None:
        existing = tx.current(prepared.type, body_id)
        if existing is not None and not existing.deleted:
            raise error(
                "CW-2007",
                f"nothing matches the criteria, but {prepared.type}/{body_id} exists already",
            )
        return update(tx, prepared, body_id)
    return Outcome(_put(tx, prepared, new_id, None, "PUT"), created=True)


def conditional_delete(tx: Transaction, criteria: QueryPlan, multiple: bool) -> list[Outcome]:
    """``DELETE Type?criteria``: one match is deleted; several only when ``multiple`` is allowed."""
    limit = 1000 if multiple else 2
    found = tx.search_ids(criteria, limit + 1)
    if len(found) > 1 and not multiple:
        raise error("CW-2005", "the conditional delete criteria match more than one resource")
    if len(found) > limit:
        raise error("CW-2005", f"the criteria match more than {limit} resources")
    return [delete(tx, type, id) for type, id in found]
