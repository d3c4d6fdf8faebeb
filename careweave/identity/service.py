"""The master patient index service: follows the change log, answers $match, and carries out the
operators' decisions (link, unlink, merge, unmerge, review), all audited.

Rules:
1. Persons live in the reserved identity tenant (:data:`IDENTITY_TENANT`), created on start; the
   link details live in the mpi tables (``store/sql/mpi.py``).
2. The follower (:meth:`IdentityService.follow`) reads ``Store.changes`` after its cursor, prepares
   the Patient versions (normalise, blocking keys) off the event loop, then applies a batch in one
   write transaction that also advances the cursor. The transaction first checks the cursor is still
   where the batch began, so two followers (two processes) never apply a batch twice.
   2a. A batch that fails is retried one change at a time; a single change that still fails is
   logged by its sequence number (never its content), counted in ``skipped`` and passed over, so
   one bad record never stops matching for everyone.
3. Manual operations run in one write transaction each; ``if_match`` is the Person version the
   operator saw (412 when stale). Every manual operation writes an audit row with actor, time,
   reason and what it changed; unlink is undone by link and merge by unmerge.
4. Two different verified NHS numbers are never linked, not even manually (409).
5. Nothing here logs patient data; log lines carry counts and ids only.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson

from careweave.errors import CareweaveError, error
from careweave.identity.linker import (
    LEVEL_MANUAL,
    LINKED,
    MERGED,
    UNLINKED,
    UNMERGED,
    Linker,
    manual_note,
)
from careweave.identity.records import IDENTITY_TENANT, Prepared, prepare, record_id, record_of
from careweave.mpi import (
    Band,
    MatchModel,
    NicknameIndex,
    PatientRecord,
    Score,
    conflicts,
    decide,
    normalise,
    score,
)
from careweave.mpi import blocking_keys as keys_of
from careweave.mpi.blocking import MAX_BLOCK
from careweave.search.indexer import Indexer
from careweave.store.base import Change, Store, StoredResource, Tenant, Transaction
from careweave.store.sql import mpi as db
from careweave.store.sql.components import Sql

__all__ = ["FOLLOWER", "IdentityService", "Located", "Match"]

log = logging.getLogger("careweave.identity")

FOLLOWER = "follower"
_VERIFIED_CONFLICT = "different-verified-nhs-numbers"
_PATIENT_URL = re.compile(
    r"(?:^|/)(?:t/(?P<tenant>[^/]+)/)?fhir/Patient/(?P<id>[A-Za-z0-9\-.]{1,64})(?:/_history/.*)?$"
)
_SHORT_REF = re.compile(r"^(?P<tenant>[a-z0-9][a-z0-9\-]{0,62})/Patient/(?P<id>[A-Za-z0-9\-.]{1,64})$")


@dataclass(frozen=True, slots=True)
class Match:
    """A $match result: a stored Patient, its Person, its score and the FHIR match grade."""

    tenant: int
    patient: str
    person: str
    score: Score
    grade: str  # certain | probable | possible


@dataclass(frozen=True, slots=True)
class Located:
    """Record locator: an organisation (tenant) holding records of a Person."""

    tenant: str
    patients: tuple[str, ...]
    assurance: tuple[str, ...]


@dataclass
class IdentityService:
    store: Store
    indexer: Indexer
    model: MatchModel
    base_url: str
    nicknames: NicknameIndex = field(default_factory=NicknameIndex.from_table)
    batch: int = 500
    poll_seconds: float = 0.25
    new_id: Callable[[], str] = lambda: str(uuid.uuid4())
    _space: Tenant | None = None
    _cache: dict[tuple[int, str, int], PatientRecord] = field(default_factory=dict)
    matched: int = 0  # Patient versions the follower has applied (for benchmarks and tests)
    skipped: list[int] = field(default_factory=list)  # change-log entries that could not be matched
    _solo: int = 0  # changes still to apply one at a time after a failed batch

    # -- the identity tenant ------------------------------------------------------------------
    async def space(self) -> Tenant:
        """The identity tenant, created on first use (rule 1)."""
        if self._space is None:
            found = await self.store.tenant(IDENTITY_TENANT)
            if found is None:
                try:
                    found = await self.store.create_tenant(IDENTITY_TENANT)
                except CareweaveError:  # another process created it first
                    found = await self.store.tenant(IDENTITY_TENANT)
            if found is None:
                raise error("CW-8010", "the identity space could not be created")
            self._space = found
        return self._space

    async def _names(self) -> dict[int, str]:
        return {t.key: t.name for t in await self.store.tenants()}

    def _linker(self, sql: Sql, tx: Transaction, names: Mapping[int, str]) -> Linker:
        return Linker(
            sql, tx, self.model, self.nicknames, self.indexer, self.base_url, names, self._cache, self.new_id
        )

    # -- the follower (rule 2) ------------------------------------------------------------------
    async def follow(self, stop: asyncio.Event) -> None:
        """Match every Patient write until ``stop`` is set."""
        await self.space()
        failures = 0
        while not stop.is_set():
            try:
                done = await self.step()
                failures = 0
            except Exception:
                failures += 1
                log.exception("the MPI follower failed on a batch; retrying")
                done = 0
            if done == 0 or failures:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), self.poll_seconds * (1 + min(failures, 20)))

    async def catch_up(self) -> int:
        """Apply every change written so far; returns how many change-log entries were read."""
        total = 0
        while True:
            done = await self.step()
            if done == 0:
                return total
            total += max(done, 0)

    async def step(self) -> int:
        """One batch: the number of change-log entries consumed (0: nothing new, -1: another
        follower moved the cursor first)."""
        space = await self.space()
        start = await self.store.sql_read(lambda sql: db.cursor(sql, FOLLOWER))
        changes = await self.store.changes(start, 1 if self._solo else self.batch)
        if not changes:
            return 0
        prepared = await asyncio.to_thread(self._prepare, changes, space.key)
        names = await self._names()
        last = changes[-1].seq

        def apply(sql: Sql, tx: Transaction) -> int:
            if db.cursor(sql, FOLLOWER) != start:
                return -1
            linker = self._linker(sql, tx, names)
            applied = 0
            for change, ready in prepared:
                linker.apply(change.tenant, change.id, change.version, ready)
                applied += 1
            linker.flush()
            db.set_cursor(sql, FOLLOWER, last)
            return applied

        try:
            applied = await self.store.sql_write_tenant(space, apply)
        except Exception:
            if len(changes) > 1:
                self._solo = len(changes)  # rule 2a: go through this stretch one change at a time
                raise
            log.exception("mpi: change-log entry %d could not be matched; skipped", last)
            self.skipped.append(last)
            await self.store.sql_write(lambda sql: _advance(sql, start, last))
            applied = 0
        if self._solo:
            self._solo -= 1
        if applied < 0:
            return -1
        self.matched += applied
        if applied:
            log.debug("mpi: %d Patient versions applied (change log at %d)", applied, last)
        return len(changes)

    def _prepare(self, changes: list[Change], space: int) -> list[tuple[Change, Prepared | None]]:
        out: list[tuple[Change, Prepared | None]] = []
        for change in changes:
            if change.type != "Patient" or change.tenant == space:
                continue
            if change.body is None or change.method == "DELETE":
                out.append((change, None))
                continue
            try:
                out.append((change, prepare(change.tenant, orjson.loads(change.body), self.nicknames)))
            except (ValueError, TypeError):
                log.warning("mpi: Patient version %d could not be read; skipped", change.seq)
        return out

    # -- $match ---------------------------------------------------------------------------------
    async def match(
        self, resource: Mapping[str, Any], tenant: int | None, only_certain: bool, count: int | None
    ) -> list[Match]:
        """Stored Patients that may be the person ``resource`` describes, best first: those of
        ``tenant`` (None: of every tenant)."""
        query = normalise({**resource, "resourceType": "Patient", "id": "query"}, self.nicknames)
        keys = sorted(keys_of(query))

        def read(sql: Sql) -> list[db.RecordRow]:
            return [r for r in db.blocks(sql, keys, MAX_BLOCK) if tenant is None or r.tid == tenant]

        rows = await self.store.sql_read(read)
        results: list[Match] = []
        for row in rows:
            other = self._record(row)
            s = score(query, other, self.model)
            band = decide(s, self.model.thresholds)
            if band is Band.NO_MATCH:
                continue
            grade = "certain" if band is Band.CERTAIN else "possible"
            if band is Band.POSSIBLE and s.weight >= self.model.thresholds.certain:
                grade = "probable"  # above the certain weight, held for review by a rule
            results.append(Match(row.tid, row.patient, row.person, s, grade))
        results.sort(key=lambda m: (-m.score.weight, m.tenant, m.patient))
        if only_certain:
            results = [m for m in results if m.grade == "certain"]
            if len({m.person for m in results}) > 1:
                return []  # several people: the spec asks for no result rather than a guess
        return results[:count] if count is not None else results

    def _record(self, row: db.RecordRow) -> PatientRecord:
        key = (row.tid, row.patient, row.version)
        found = self._cache.get(key)
        if found is None:
            found = record_of(row.tid, row.patient, row.demographics, self.nicknames)
            self._cache[key] = found
        return found

    # -- reading the identity space ---------------------------------------------------------------
    async def locate(self, person: str) -> list[Located]:
        """Record locator: which organisations hold records of ``person``."""
        rows = await self.store.sql_read(lambda sql: db.members(sql, person))
        if not rows:
            await self._active_person(person)
        names = await self._names()
        by_tenant: dict[str, list[db.RecordRow]] = {}
        for row in rows:
            by_tenant.setdefault(names.get(row.tid, str(row.tid)), []).append(row)
        return [
            Located(name, tuple(r.patient for r in found), tuple(r.assurance for r in found))
            for name, found in sorted(by_tenant.items())
        ]

    async def person_of(self, tenant: int, patient: str) -> str | None:
        row = await self.store.sql_read(lambda sql: db.record(sql, tenant, patient))
        return None if row is None else row.person

    async def members(self, person: str) -> list[db.RecordRow]:
        return await self.store.sql_read(lambda sql: db.members(sql, person))

    async def _active_person(self, person: str) -> StoredResource:
        space = await self.space()
        found = await self.store.read(space, "Person", person)
        if found is None or found.deleted or found.body is None:
            raise error("CW-8001", f"Person/{person} is not known")
        return found

    async def reviews(self, state: str = "open", after: int = 0, limit: int = 50) -> list[db.ReviewRow]:
        return await self.store.sql_read(lambda sql: db.reviews(sql, state, after, limit))

    async def review(self, item: int) -> tuple[db.ReviewRow, db.RecordRow | None, db.RecordRow | None]:
        """A review item with its two records (the one to place, the member it scored against)."""

        def read(sql: Sql) -> tuple[db.ReviewRow | None, db.RecordRow | None, db.RecordRow | None]:
            found = db.review(sql, item)
            if found is None:
                return None, None, None
            return found, db.record_by_rid(sql, found.rid), db.record_by_rid(sql, found.other)

        found, left, right = await self.store.sql_read(read)
        if found is None:
            raise error("CW-8006", f"no review item {item}")
        return found, left, right

    async def explain(self, left: db.RecordRow, right: db.RecordRow) -> Score:
        """The current score between two records, for a side-by-side comparison."""
        return score(self._record(left), self._record(right), self.model)

    async def history(self, person: str) -> list[db.AuditRow]:
        return await self.store.sql_read(lambda sql: db.audit_entries(sql, person))

    async def outbox_after(self, after_seq: int, limit: int) -> list[db.OutboxRow]:
        """Events for organisations, oldest first, after ``after_seq`` (see /tmp note)."""
        return await self.store.sql_read(lambda sql: db.outbox_after(sql, after_seq, limit))

    async def patient_ref(self, ref: str) -> tuple[int, str]:
        """(tenant key, Patient id) of a reference to a source Patient: its absolute URL (as in
        Person.link.target) or ``tenant/Patient/id``."""
        m = _PATIENT_URL.search(ref) or _SHORT_REF.match(ref)
        if m is None:
            raise error("CW-8005", f"{ref!r} is not a reference to a Patient of a tenant")
        name = m["tenant"] or "default"
        if name == IDENTITY_TENANT:
            raise error("CW-8005", "the identity space holds no Patients")
        found = await self.store.tenant(name)
        if found is None:
            raise error("CW-4001", f"unknown tenant {name!r}")
        return found.key, m["id"]

    # -- manual operations (rule 3) -----------------------------------------------------------
    async def _manual(self, fn: Callable[[Linker, Sql, Transaction], dict[str, Any]]) -> dict[str, Any]:
        space = await self.space()
        names = await self._names()

        def run(sql: Sql, tx: Transaction) -> dict[str, Any]:
            linker = self._linker(sql, tx, names)
            out = fn(linker, sql, tx)
            linker.flush()
            return out

        return await self.store.sql_write_tenant(space, run)

    @staticmethod
    def _check_person(tx: Transaction, person: str, if_match: int | None) -> None:
        current = tx.current("Person", person)
        if current is None or current.deleted or current.body is None:
            raise error("CW-8001", f"Person/{person} is not known")
        if orjson.loads(current.body).get("active") is False:
            raise error("CW-8007", f"Person/{person} was merged into another Person; act on that one")
        if if_match is not None and current.version != if_match:
            raise error(
                "CW-8004",
                f"If-Match asks for version {if_match} of Person/{person}; it is at {current.version}",
            )

    def _refuse_verified(
        self, linker: Linker, moving: list[db.RecordRow], staying: list[db.RecordRow]
    ) -> None:
        for a in moving:
            for b in staying:
                if a.rid != b.rid and _VERIFIED_CONFLICT in conflicts(linker.record(a), linker.record(b)):
                    raise error(
                        "CW-8003",
                        f"{record_id(a.tid, a.patient)} and {record_id(b.tid, b.patient)} carry different "
                        "verified NHS numbers: they are never linked",
                    )

    async def link(
        self, person: str, patient: tuple[int, str], actor: str, reason: str, if_match: int | None = None
    ) -> dict[str, Any]:
        """Put a record into ``person`` by hand (level4); reversed by :meth:`unlink`."""
        tid, pid = patient

        def run(linker: Linker, sql: Sql, tx: Transaction) -> dict[str, Any]:
            self._check_person(tx, person, if_match)
            row = db.record(sql, tid, pid)
            if row is None:
                raise error("CW-8002", f"Patient {pid} of that tenant is not known to the MPI")
            return self._link(linker, sql, row, person, actor, reason, "link")

        return await self._manual(run)

    def _link(
        self, linker: Linker, sql: Sql, row: db.RecordRow, person: str, actor: str, reason: str, action: str
    ) -> dict[str, Any]:
        staying = db.members(sql, person)
        self._refuse_verified(linker, [row], staying)
        others = [m.rid for m in staying if m.rid != row.rid]
        refused = db.decided_against(sql, row.rid) & set(others)
        db.remove_decisions(sql, row.rid, refused)
        previous = [row.person, row.assurance, row.origin, row.weight, row.detail, row.model_version]
        note = manual_note(actor, reason, others)
        db.set_link(
            sql, row.rid, person, (LEVEL_MANUAL, "manual", None, note, self.model.version), linker.now_ms
        )
        linker.dirty.update({person, row.person})
        linker.dirty.update(
            db.close_reviews(sql, rid=row.rid, now_ms=linker.now_ms, actor=actor, reason=reason)
        )
        detail = {"record": row.rid, "previous": previous, "decisions_removed": sorted(refused)}
        aid = db.add_audit(
            sql, linker.now_ms, actor, action, person, row.person, reason, orjson.dumps(detail).decode()
        )
        ref = f"Patient/{row.patient}"
        if row.person != person:
            linker.notify(UNLINKED, row.person, row.tid, ref)
            linker.notify(LINKED, person, row.tid, ref)
            linker.resettle(row.person)
        return {"audit": aid, "person": person, "from": row.person}

    async def unlink(
        self, person: str, patient: tuple[int, str], actor: str, reason: str, if_match: int | None = None
    ) -> dict[str, Any]:
        """Take a record out of ``person``: it gets a Person of its own (level4) and is kept apart
        from the remaining members ("not the same person"); reversed by :meth:`link`."""
        tid, pid = patient

        def run(linker: Linker, sql: Sql, tx: Transaction) -> dict[str, Any]:
            self._check_person(tx, person, if_match)
            row = db.record(sql, tid, pid)
            if row is None or row.person != person:
                raise error("CW-8002", f"Patient {pid} of that tenant is not linked to Person/{person}")
            fresh = self.new_id()
            note = manual_note(actor, reason, ())
            db.set_link(
                sql, row.rid, fresh, (LEVEL_MANUAL, "manual", None, note, self.model.version), linker.now_ms
            )
            apart = [m.rid for m in db.members(sql, person)]
            for other in apart:
                db.add_decision(sql, row.rid, other, row.tid, "not-same", actor, reason, linker.now_ms)
            linker.dirty.update({person, fresh})
            linker.dirty.update(
                db.close_reviews(sql, rid=row.rid, now_ms=linker.now_ms, actor=actor, reason=reason)
            )
            previous = [row.person, row.assurance, row.origin, row.weight, row.detail, row.model_version]
            detail = {"record": row.rid, "previous": previous, "new_person": fresh, "decisions_added": apart}
            aid = db.add_audit(
                sql, linker.now_ms, actor, "unlink", person, fresh, reason, orjson.dumps(detail).decode()
            )
            ref = f"Patient/{row.patient}"
            linker.notify(UNLINKED, person, row.tid, ref)
            linker.notify(UNLINKED, fresh, row.tid, ref)
            linker.resettle(person)  # the remaining members may have held together only through it
            return {"audit": aid, "person": person, "new_person": fresh}

        return await self._manual(run)

    async def merge(
        self, target: str, source: str, actor: str, reason: str, if_match: int | None = None
    ) -> dict[str, Any]:
        """Move every record of ``source`` into ``target`` (level4); ``source`` stays as an
        inactive Person pointing at ``target``. Reversed by :meth:`unmerge`."""
        if target == source:
            raise error("CW-8005", "a Person cannot be merged into itself")

        def run(linker: Linker, sql: Sql, tx: Transaction) -> dict[str, Any]:
            self._check_person(tx, target, if_match)
            self._check_person(tx, source, None)
            moving, staying = db.members(sql, source), db.members(sql, target)
            self._refuse_verified(linker, moving, staying)
            note = manual_note(actor, reason, [m.rid for m in (*moving, *staying)])
            moved: list[list[Any]] = []
            removed: list[list[int]] = []
            stay_ids = {m.rid for m in staying}
            for row in moving:
                gone = db.decided_against(sql, row.rid) & stay_ids
                db.remove_decisions(sql, row.rid, gone)
                removed.extend([row.rid, other] for other in sorted(gone))
                moved.append([row.rid, row.assurance, row.origin, row.weight, row.detail, row.model_version])
                link = (LEVEL_MANUAL, "manual", None, note, self.model.version)
                db.set_link(sql, row.rid, target, link, linker.now_ms)
                linker.dirty.update(db.close_reviews(sql, rid=row.rid, now_ms=linker.now_ms))
            for row in staying:
                linker.dirty.update(db.close_reviews(sql, rid=row.rid, person=source, now_ms=linker.now_ms))
            db.close_reviews(sql, person=source, now_ms=linker.now_ms)
            linker.dirty.add(target)
            linker.write_person(
                {
                    "resourceType": "Person",
                    "id": source,
                    "active": False,
                    "link": [{"target": {"reference": f"Person/{target}"}, "assurance": LEVEL_MANUAL}],
                }
            )
            detail = {"moved": moved, "decisions_removed": removed}
            aid = db.add_audit(
                sql, linker.now_ms, actor, "merge", target, source, reason, orjson.dumps(detail).decode()
            )
            linker.notify(MERGED, target, tx.tenant.key, f"Person/{source}")
            return {"audit": aid, "person": target, "merged": source, "records": len(moved)}

        return await self._manual(run)

    async def unmerge(
        self, target: str, source: str, actor: str, reason: str, if_match: int | None = None
    ) -> dict[str, Any]:
        """Undo the last merge of ``source`` into ``target``: its records go back, with their former
        links, and are kept apart from ``target``'s ("not the same person")."""

        def run(linker: Linker, sql: Sql, tx: Transaction) -> dict[str, Any]:
            self._check_person(tx, target, if_match)
            merges = [
                a
                for a in db.audit_entries(sql, target)
                if a.action == "merge" and a.person == target and a.other == source and a.undone_by is None
            ]
            if not merges:
                raise error("CW-8008", f"Person/{source} has no merge into Person/{target} to undo")
            last = merges[-1]
            detail = orjson.loads(last.detail)
            back = []
            for rid, assurance, origin, weight, link_detail, model_version in detail["moved"]:
                row = db.record_by_rid(sql, rid)
                if row is None:
                    continue  # the Patient was deleted since
                if row.person != target:
                    raise error("CW-8008", "a record of that merge has moved since; undo that change first")
                db.set_link(
                    sql, rid, source, (assurance, origin, weight, link_detail, model_version), linker.now_ms
                )
                back.append(row)
            for row in back:
                for other in db.members(sql, target):
                    db.add_decision(
                        sql, row.rid, other.rid, row.tid, "not-same", actor, reason, linker.now_ms
                    )
            linker.dirty.update({target, source})
            if not back:
                raise error("CW-8008", "none of the merged records is left to move back")
            record = {"undoes": last.aid, "records": [r.rid for r in back]}
            aid = db.add_audit(
                sql, linker.now_ms, actor, "unmerge", target, source, reason, orjson.dumps(record).decode()
            )
            db.mark_undone(sql, last.aid, aid)  # flush rebuilds the source Person, active again
            linker.notify(UNMERGED, source, tx.tenant.key, f"Person/{target}")
            linker.notify(UNMERGED, target, tx.tenant.key, f"Person/{source}")
            linker.resettle(target)
            linker.resettle(source)
            return {"audit": aid, "person": target, "restored": source, "records": len(back)}

        return await self._manual(run)

    async def decide(self, item: int, decision: str, actor: str, reason: str) -> dict[str, Any]:
        """Decide a review item: ``same`` (the record joins the Person, level4) or ``not-same``
        (kept apart from every member, for good)."""
        if decision not in ("same", "not-same"):
            raise error("CW-8005", "decision must be 'same' or 'not-same'")

        def run(linker: Linker, sql: Sql, tx: Transaction) -> dict[str, Any]:
            found = db.review(sql, item)
            if found is None:
                raise error("CW-8006", f"no review item {item}")
            if found.state != "open":
                raise error("CW-8007", f"review item {item} is decided already ({found.state})")
            row = db.record_by_rid(sql, found.rid)
            if row is None:
                raise error("CW-8002", "the record of that review item is no longer stored")
            db.close_reviews(
                sql,
                rid=row.rid,
                person=found.person,
                state=decision,
                actor=actor,
                reason=reason,
                now_ms=linker.now_ms,
            )
            if decision == "same":
                self._check_person(tx, found.person, None)
                out = self._link(linker, sql, row, found.person, actor, reason, "decide-same")
            else:
                for member in db.members(sql, found.person):
                    db.add_decision(
                        sql, row.rid, member.rid, row.tid, "not-same", actor, reason, linker.now_ms
                    )
                linker.dirty.add(found.person)
                detail = orjson.dumps({"record": row.rid, "item": item}).decode()
                aid = db.add_audit(
                    sql, linker.now_ms, actor, "decide-not-same", found.person, row.person, reason, detail
                )
                out = {"audit": aid, "person": found.person}
            return out

        return await self._manual(run)


def _advance(sql: Sql, start: int, to: int) -> None:
    if db.cursor(sql, FOLLOWER) == start:
        db.set_cursor(sql, FOLLOWER, to)
