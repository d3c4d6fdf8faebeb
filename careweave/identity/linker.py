"""Keeping records and Persons current, inside one write transaction of the identity space.

Rules:
1. Everything here runs synchronously on the store's writer (``store.sql_write_tenant`` with the
   identity tenant), so it sees a serial view: what it reads is what it changes, and the link rows,
   the Person resources, the outbox and the follower's cursor commit together or not at all.
2. Placing a record (:meth:`Linker.place`): score it against every record sharing a blocking key;
   group the scores by Person. A Person is *eligible* only when no member fires a cannot-link rule
   with the record (:func:`careweave.mpi.conflicts`, every member checked, as ``cluster`` does) and
   no member was declared "not the same person" by a human. The record joins the eligible Person
   with the strongest certain score (level3); otherwise it gets a Person of its own. Every other
   Person it scores certain or possible with (and is not manually kept from) gets a review item: a
   level2 link on that Person.
3. Manual decisions win: a manually linked record (level4) never moves on its own; an update keeps
   it where a human put it. An automatically linked record whose update no longer fits its Person
   (a conflict with a member, or no certain score with any member) is placed again.
4. A demographics change (a new digest) of a record writes one outbox event for every *other*
   organisation holding a record of the same Person (never back to the source).
5. Persons touched are rebuilt once, at the end (:meth:`Linker.flush`): members as level3/level4
   links, open review items as level2 links; a Person left with no members is deleted (a merged
   Person, inactive and pointing at the survivor, is kept).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson

from careweave.identity.records import Prepared, patient_url, record_id, record_of
from careweave.mpi import Band, MatchModel, NicknameIndex, PatientRecord, Score, conflicts, decide, score
from careweave.mpi.blocking import MAX_BLOCK
from careweave.search.indexer import Indexer
from careweave.store import writes
from careweave.store.base import Transaction
from careweave.store.sql import mpi as db
from careweave.store.sql.components import Sql

__all__ = ["LEVEL_AUTO", "LEVEL_MANUAL", "LEVEL_POSSIBLE", "Linker", "Placement", "score_detail"]

LEVEL_MANUAL = "level4"
LEVEL_AUTO = "level3"
LEVEL_POSSIBLE = "level2"
NHS_SYSTEM = "https://fhir.nhs.uk/Id/nhs-number"
DEMOGRAPHICS_CHANGED = "demographics-changed"


def score_detail(s: Score, matched: str | None) -> str:
    """The JSON kept with a link or review item: the member it scored against, every field's
    contribution and the rules that fired."""
    return orjson.dumps(
        {
            "matched": matched,
            "weight": round(s.weight, 3),
            "probability": s.probability,
            "contributions": [
                {"field": c.field, "level": c.level, "weight": round(c.weight, 3), "note": c.note}
                for c in s.contributions
            ],
            "rules": list(s.rules),
        }
    ).decode()


@dataclass(slots=True)
class Placement:
    """Where :meth:`Linker.place` put a record."""

    person: str
    weight: float | None
    reviews: int


@dataclass(slots=True)
class Linker:
    """One transaction's worth of identity work (module rules)."""

    sql: Sql
    tx: Transaction
    model: MatchModel
    nicknames: NicknameIndex
    indexer: Indexer
    base_url: str
    tenant_names: Mapping[int, str]
    cache: dict[tuple[int, str, int], PatientRecord]
    new_person_id: Callable[[], str] = lambda: str(uuid.uuid4())
    dirty: set[str] = field(default_factory=set)
    events: int = 0

    @property
    def now_ms(self) -> int:
        return self.tx.now_ms

    # -- records --------------------------------------------------------------------------------
    def record(self, row: db.RecordRow) -> PatientRecord:
        key = (row.tid, row.patient, row.version)
        found = self.cache.get(key)
        if found is None:
            if len(self.cache) > 500_000:
                self.cache.clear()
            found = record_of(row.tid, row.patient, row.demographics, self.nicknames)
            self.cache[key] = found
        return found

    def apply(self, tid: int, patient: str, version: int, prepared: Prepared | None) -> None:
        """A Patient version from the change log (``prepared`` None: deleted)."""
        existing = db.record(self.sql, tid, patient)
        if prepared is None:
            if existing is not None:
                self.dirty.add(existing.person)
                self.dirty.update(db.close_reviews(self.sql, rid=existing.rid, now_ms=self.now_ms))
                db.delete_record(self.sql, existing.rid)
            return
        if existing is None:
            person = self.new_person_id()
            rid = db.insert_record(
                self.sql,
                tid,
                patient,
                version,
                person,
                (LEVEL_AUTO, "auto", None, "{}", self.model.version),
                prepared.demographics,
                prepared.digest,
                self.now_ms,
            )
            db.replace_keys(self.sql, rid, tid, prepared.keys)
            self.cache[(tid, patient, version)] = prepared.record
            self.place(rid, prepared.record, prepared.keys, person)
            return
        if existing.version >= version:
            return  # seen already (the change log is replayed from the cursor)
        db.update_record(self.sql, existing.rid, version, prepared.demographics, prepared.digest, self.now_ms)
        self.cache[(tid, patient, version)] = prepared.record
        if existing.digest == prepared.digest:
            return
        db.replace_keys(self.sql, existing.rid, tid, prepared.keys)
        self.notify_change(existing.person, tid, patient)
        self.dirty.add(existing.person)
        if existing.origin == "manual":
            return  # rule 3: a human put it there
        if not self.still_fits(existing.rid, prepared.record, existing.person):
            self.dirty.update(db.close_reviews(self.sql, rid=existing.rid, now_ms=self.now_ms))
            alone = all(m.rid == existing.rid for m in db.members(self.sql, existing.person))
            fresh = existing.person if alone else self.new_person_id()  # a lone record keeps its Person
            self.place(existing.rid, prepared.record, prepared.keys, fresh)
        else:
            self.refresh_reviews(existing.rid, prepared.record, prepared.keys, existing.person)

    def notify_change(self, person: str, source_tid: int, patient: str) -> None:
        """Rule 4."""
        targets = sorted({m.tid for m in db.members(self.sql, person)} - {source_tid})
        for target in targets:
            db.add_outbox(
                self.sql, target, person, source_tid, f"Patient/{patient}", DEMOGRAPHICS_CHANGED, self.now_ms
            )
            self.events += 1

    def still_fits(self, rid: int, record: PatientRecord, person: str) -> bool:
        others = [m for m in db.members(self.sql, person) if m.rid != rid]
        if not others:
            return not self._has_certain_elsewhere(rid, record, person)
        refused = db.decided_against(self.sql, rid)
        certain = False
        for member in others:
            other = self.record(member)
            if member.rid in refused or conflicts(record, other):
                return False
            if decide(score(record, other, self.model), self.model.thresholds) is Band.CERTAIN:
                certain = True
        return certain

    def _has_certain_elsewhere(self, rid: int, record: PatientRecord, person: str) -> bool:
        """A record alone in its Person whose update now matches another Person certainly."""
        for row in self.candidates(rid, db.keys_of(self.sql, rid)):
            if row.person != person and self._band(record, row) is Band.CERTAIN:
                return True
        return False

    def _keys_of(self, rid: int) -> list[str]:
        return [
            str(r[0]) for r in self.sql.execute("SELECT key FROM mpi_block WHERE rid = ?", (rid,)).fetchall()
        ]

    def _band(self, record: PatientRecord, row: db.RecordRow) -> Band:
        return decide(score(record, self.record(row), self.model), self.model.thresholds)

    def candidates(self, rid: int | None, keys: Iterable[str]) -> list[db.RecordRow]:
        """Records sharing a blocking key with the record (oversized blocks skipped)."""
        return [row for row in db.blocks(self.sql, sorted(keys), MAX_BLOCK) if row.rid != rid]

    # -- placing --------------------------------------------------------------------------------
    def _by_person(
        self, rid: int, record: PatientRecord, keys: Iterable[str]
    ) -> dict[str, tuple[Score, db.RecordRow]]:
        """The best score of the record against each Person's members among the candidates."""
        best: dict[str, tuple[Score, db.RecordRow]] = {}
        for row in self.candidates(rid, keys):
            s = score(record, self.record(row), self.model)
            held = best.get(row.person)
            if held is None or s.weight > held[0].weight:
                best[row.person] = (s, row)
        return best

    def _eligible(self, rid: int, record: PatientRecord, person: str, refused: set[int]) -> tuple[bool, bool]:
        """(may join, manually kept apart) for a record and a Person (rule 2)."""
        for member in db.members(self.sql, person):
            if member.rid == rid:
                continue
            if member.rid in refused:
                return False, True
            if conflicts(record, self.record(member)):
                return False, False
        return True, False

    def place(self, rid: int, record: PatientRecord, keys: Iterable[str], fresh_person: str) -> Placement:
        """Rule 2: link the record to the best eligible Person, or to ``fresh_person``."""
        keys = frozenset(keys)
        current = db.record_by_rid(self.sql, rid)
        old_person = current.person if current is not None else None
        refused = db.decided_against(self.sql, rid)
        scored = self._by_person(rid, record, keys)
        certain: list[tuple[float, str, Score, db.RecordRow]] = []
        review: list[tuple[str, Score, db.RecordRow]] = []
        for person, (s, row) in sorted(scored.items()):
            if person == old_person:
                continue
            band = decide(s, self.model.thresholds)
            if band is Band.NO_MATCH:
                continue
            ok, kept_apart = self._eligible(rid, record, person, refused)
            if kept_apart:
                continue
            if band is Band.CERTAIN and ok:
                certain.append((s.weight, person, s, row))
            else:  # possible, or certain but a member of that Person cannot be this person
                review.append((person, s, row))
        certain.sort(key=lambda c: (-c[0], c[1]))
        link: tuple[str, str, float | None, str, str]
        if certain:
            _, target, s, row = certain[0]
            link = (
                LEVEL_AUTO,
                "auto",
                s.weight,
                score_detail(s, record_id(row.tid, row.patient)),
                s.model_version,
            )
            review.extend((p, sc, r) for _, p, sc, r in certain[1:])
            weight: float | None = s.weight
        else:
            target = fresh_person
            link = (LEVEL_AUTO, "auto", None, '{"matched": null}', self.model.version)
            weight = None
        db.set_link(self.sql, rid, target, link, self.now_ms)
        self.dirty.add(target)
        if old_person is not None and old_person != target:
            self.dirty.add(old_person)
        for person, s, row in review:
            if person == target:
                continue
            db.open_review(
                self.sql,
                current.tid if current is not None else row.tid,
                rid,
                person,
                row.rid,
                s.weight,
                score_detail(s, record_id(row.tid, row.patient)),
                s.model_version,
                self.now_ms,
            )
            self.dirty.add(person)
        return Placement(target, weight, len(review))

    def refresh_reviews(self, rid: int, record: PatientRecord, keys: Iterable[str], person: str) -> None:
        """After an update that keeps the record in its Person: re-open the review items it earns."""
        self.dirty.update(db.close_reviews(self.sql, rid=rid, now_ms=self.now_ms))
        refused = db.decided_against(self.sql, rid)
        row_tid = db.record_by_rid(self.sql, rid)
        for other_person, (s, row) in sorted(self._by_person(rid, record, keys).items()):
            if other_person == person or decide(s, self.model.thresholds) is Band.NO_MATCH:
                continue
            if self._eligible(rid, record, other_person, refused)[1]:
                continue
            db.open_review(
                self.sql,
                row_tid.tid if row_tid is not None else row.tid,
                rid,
                other_person,
                row.rid,
                s.weight,
                score_detail(s, record_id(row.tid, row.patient)),
                s.model_version,
                self.now_ms,
            )
            self.dirty.add(other_person)

    # -- Person resources -----------------------------------------------------------------------
    def reference(self, row: db.RecordRow) -> str:
        return patient_url(self.base_url, self.tenant_names.get(row.tid, str(row.tid)), row.patient)

    def person_body(
        self, person: str, rows: list[db.RecordRow], pending: list[db.ReviewRow]
    ) -> dict[str, Any]:
        """A Person resource from its members and its open review items (rule 5)."""
        body: dict[str, Any] = {"resourceType": "Person", "id": person}
        survivor = max(rows, key=lambda r: (r.assurance, r.updated_ms, r.rid))
        facts = orjson.loads(survivor.demographics)
        # verified numbers only: an unverified one may be a relative's (identity notes, 4.1)
        numbers = sorted({str(rec.nhs_number) for rec in map(self.record, rows) if rec.nhs_verified})
        if numbers:
            body["identifier"] = [{"system": NHS_SYSTEM, "value": n} for n in numbers]
        names = [
            n for n in facts.get("name", ()) if isinstance(n, dict) and n.get("use") not in ("old", "maiden")
        ]
        if names:
            body["name"] = names[:1]
        for element in ("gender", "birthDate"):
            if isinstance(facts.get(element), str):
                body[element] = facts[element]
        body["active"] = True
        links = [{"target": {"reference": self.reference(r)}, "assurance": r.assurance} for r in rows]
        seen = {r.rid for r in rows}
        for item in pending:
            if item.rid in seen:
                continue
            found = db.record_by_rid(self.sql, item.rid)
            if found is not None:
                seen.add(item.rid)
                links.append({"target": {"reference": self.reference(found)}, "assurance": LEVEL_POSSIBLE})
        body["link"] = links
        return body

    def write_person(self, body: dict[str, Any]) -> None:
        current = self.tx.current("Person", body["id"])
        unchanged = current is not None and current.body is not None and not current.deleted
        if unchanged and current is not None and current.body is not None:
            unchanged = _same_content(orjson.loads(current.body), body)
        if unchanged:
            return  # nothing changed: no new version, and no need to index it again
        prepared = writes.Prepared("Person", body, self.indexer.index(body))
        writes.update(self.tx, prepared, body["id"])

    def flush(self) -> None:
        """Rebuild every Person touched (rule 5)."""
        for person in sorted(self.dirty):
            rows = db.members(self.sql, person)
            if not rows:
                current = self.tx.current("Person", person)
                if current is not None and current.body is not None and not current.deleted:
                    if orjson.loads(current.body).get("active") is False:
                        continue  # merged into another Person: kept as the pointer
                    db.close_reviews(self.sql, person=person, now_ms=self.now_ms)
                    writes.delete(self.tx, "Person", person)
                continue
            self.write_person(self.person_body(person, rows, db.reviews_of_person(self.sql, person)))
        self.dirty.clear()


def _same_content(stored: dict[str, Any], body: dict[str, Any]) -> bool:
    return {k: v for k, v in stored.items() if k != "meta"} == body
