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
6. A Person holds together by evidence, never through a record that left it (:meth:`Linker.resettle`,
   run whenever a record leaves a Person or a member's identifying elements change): the remaining
   members are clustered as :func:`careweave.mpi.cluster` does, from their certain scores with each
   other and the human decisions (a manually linked record is tied to the members it was linked
   with, which the link note lists), every join checked against every member for cannot-link
   rules and "not the same person" decisions. The part holding the manual links (else the largest)
   keeps the Person; every other part gets a Person of its own (a lone record is placed again, as
   in rule 2), and parts that still score possible with each other get review items.
7. Events (rule 4 and docs/mpi.md "Events"): ``linked`` when a record joins a Person (every
   organisation holding a record of it), ``unlinked`` when one leaves (the organisations of the
   Person it left, and its own when it now stands alone), ``merged`` / ``unmerged`` for the
   operators' merges (every organisation of the Persons involved). Events carry no demographics.
8. Survivorship (:func:`survivor_order`): the Person's name, gender and birth date come, element by
   element, from the first member holding one in this order: a verified NHS number (01, Modulus 11
   valid) first, then the most recent change of identifying elements, then the newest record;
   placeholder names ("Baby of ...") only when no member has another. ``Person.identifier`` holds
   every member's NHS numbers (``use`` official when verified by a member, old when only superseded).
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson

from careweave.identity.records import Prepared, patient_url, record_id, record_of
from careweave.mpi import (
    Band,
    Link,
    MatchModel,
    NicknameIndex,
    PatientRecord,
    Score,
    cluster,
    conflicts,
    decide,
    score,
)
from careweave.mpi.blocking import MAX_BLOCK
from careweave.search.indexer import Indexer
from careweave.store import writes
from careweave.store.base import Transaction
from careweave.store.sql import mpi as db
from careweave.store.sql.components import Sql

__all__ = [
    "DEMOGRAPHICS_CHANGED",
    "LEVEL_AUTO",
    "LEVEL_MANUAL",
    "LEVEL_POSSIBLE",
    "LINKED",
    "MERGED",
    "UNLINKED",
    "UNMERGED",
    "Linker",
    "Placement",
    "manual_note",
    "score_detail",
    "survivor_order",
]

LEVEL_MANUAL = "level4"
LEVEL_AUTO = "level3"
LEVEL_POSSIBLE = "level2"
NHS_SYSTEM = "https://fhir.nhs.uk/Id/nhs-number"
DEMOGRAPHICS_CHANGED = "demographics-changed"
LINKED = "linked"
UNLINKED = "unlinked"
MERGED = "merged"
UNMERGED = "unmerged"
_KEPT_APART = "decided-not-same"
_NAME_ORDER: dict[str | None, int] = {"official": 0, "usual": 1, None: 2, "temp": 3, "nickname": 4}


def manual_note(actor: str, reason: str, with_rids: Iterable[int]) -> str:
    """The detail of a manual link: who, why, and the records it was linked with (rule 6)."""
    return orjson.dumps({"actor": actor, "reason": reason, "with": sorted(set(with_rids))}).decode()


def _linked_with(row: db.RecordRow) -> set[int] | None:
    """The records a manual link was made with; None when the note does not say (older links:
    tied to every member)."""
    try:
        found = orjson.loads(row.detail).get("with")
    except (orjson.JSONDecodeError, AttributeError):
        return None
    return {int(r) for r in found} if isinstance(found, list) else None


def survivor_order(rows: Iterable[db.RecordRow], records: Mapping[int, PatientRecord]) -> list[db.RecordRow]:
    """Members in survivorship order (rule 8): verified NHS number first, then the most recent
    change of identifying elements, then the newest record."""
    return sorted(rows, key=lambda r: (not records[r.rid].nhs_verified, -r.changed_ms, -r.rid))


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
                self.notify(UNLINKED, existing.person, tid, f"Patient/{patient}")
                self.resettle(existing.person)
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
        if existing.origin != "manual":  # rule 3: a manually linked record stays where a human put it
            if not self.still_fits(existing.rid, prepared.record, existing.person):
                self.dirty.update(db.close_reviews(self.sql, rid=existing.rid, now_ms=self.now_ms))
                alone = all(m.rid == existing.rid for m in db.members(self.sql, existing.person))
                fresh = existing.person if alone else self.new_person_id()  # a lone record keeps its Person
                self.place(existing.rid, prepared.record, prepared.keys, fresh)
                return  # place re-checks the Person it left (rule 6)
            self.refresh_reviews(existing.rid, prepared.record, prepared.keys, existing.person)
        self.resettle(existing.person)  # rule 6: the old elements may have been the only evidence

    def notify_change(self, person: str, source_tid: int, patient: str) -> None:
        """Rule 4: every other organisation holding a record of ``person``."""
        self.notify(DEMOGRAPHICS_CHANGED, person, source_tid, f"Patient/{patient}", skip_source=True)

    def notify(
        self, kind: str, person: str, source_tid: int, source_ref: str, *, skip_source: bool = False
    ) -> None:
        """Rule 7: one outbox row for each organisation holding a record of ``person`` now."""
        targets = {m.tid for m in db.members(self.sql, person)}
        if skip_source:
            targets.discard(source_tid)
        for target in sorted(targets):
            db.add_outbox(self.sql, target, person, source_tid, source_ref, kind, self.now_ms)
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
        if current is not None:
            ref = f"Patient/{current.patient}"
            if old_person is not None and old_person != target:
                self.dirty.add(old_person)
                self.notify(UNLINKED, old_person, current.tid, ref)
                if not certain:
                    self.notify(UNLINKED, target, current.tid, ref)  # now alone: its own organisation
            if certain:
                self.notify(LINKED, target, current.tid, ref)
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
        if old_person is not None and old_person != target:
            self.resettle(old_person)
        return Placement(target, weight, len(review))

    # -- holding together (rule 6) --------------------------------------------------------------
    def parts(self, rows: list[db.RecordRow]) -> list[list[db.RecordRow]]:
        """The members of one Person grouped by evidence (rule 6): certain scores between them and
        the human decisions, joined as :func:`careweave.mpi.cluster` joins, never across a
        cannot-link rule or a "not the same person" decision."""
        recs = {r.rid: self.record(r) for r in rows}
        by_id = {recs[r.rid].id: r for r in rows}
        present = set(recs)
        human: set[frozenset[int]] = set()
        for r in rows:
            if r.origin == "manual":
                with_rids = _linked_with(r)
                partners = present if with_rids is None else with_rids & present
                human.update(frozenset((r.rid, x)) for x in partners if x != r.rid)
        refused = {r.rid: db.decided_against(self.sql, r.rid) & present for r in rows}
        links: list[Link] = []
        ordered = sorted(rows, key=lambda r: r.rid)
        for i, a in enumerate(ordered):
            for b in ordered[i + 1 :]:
                if frozenset((a.rid, b.rid)) in human:
                    links.append(Link(recs[a.rid].id, recs[b.rid].id, math.inf))
                    continue
                s = score(recs[a.rid], recs[b.rid], self.model)
                if decide(s, self.model.thresholds) is Band.CERTAIN:
                    links.append(Link(recs[a.rid].id, recs[b.rid].id, s.weight))

        def check(x: PatientRecord, y: PatientRecord) -> tuple[str, ...]:
            ra, rb = by_id[x.id], by_id[y.id]
            if frozenset((ra.rid, rb.rid)) in human:
                return ()
            if rb.rid in refused[ra.rid]:
                return (_KEPT_APART,)
            return conflicts(x, y)

        found = cluster({recs[r.rid].id: recs[r.rid] for r in rows}, links, check)
        return [[by_id[m] for m in members] for members in found.clusters]

    def resettle(self, person: str) -> None:
        """Rule 6: split ``person`` when its remaining members no longer hold together."""
        rows = db.members(self.sql, person)
        if len(rows) < 2:
            return
        parts = self.parts(rows)
        if len(parts) < 2:
            return
        keep = max(
            parts,
            key=lambda part: (sum(r.origin == "manual" for r in part), len(part), -min(r.rid for r in part)),
        )
        placed: list[tuple[str, list[db.RecordRow]]] = [(person, keep)]
        for part in parts:
            if part is not keep:
                fresh = self.new_person_id()
                for r in part:
                    db.move_record(self.sql, r.rid, fresh, self.now_ms)
                self.dirty.add(fresh)
                placed.append((fresh, part))
        self.dirty.add(person)
        for fresh, part in placed[1:]:
            for r in part:
                self.notify(UNLINKED, person, r.tid, f"Patient/{r.patient}")
                self.notify(UNLINKED, fresh, r.tid, f"Patient/{r.patient}")
        for index, (fresh, part) in enumerate(placed[1:], start=1):
            if len(part) == 1:
                (r,) = part
                self.place(r.rid, self.record(r), db.keys_of(self.sql, r.rid), fresh)
                continue
            for other, other_part in placed[:index]:
                self._review_between(part, other, other_part)

    def _review_between(self, part: list[db.RecordRow], other: str, other_part: list[db.RecordRow]) -> None:
        """A review item "this part may be ``other``" for the best pair that still scores (rule 6)."""
        best: tuple[Score, db.RecordRow, db.RecordRow] | None = None
        for a in part:
            refused = db.decided_against(self.sql, a.rid)
            for b in other_part:
                if b.rid in refused:
                    return
                if conflicts(self.record(a), self.record(b)):
                    return  # these two cannot be one person: nothing to review
                s = score(self.record(a), self.record(b), self.model)
                if decide(s, self.model.thresholds) is not Band.NO_MATCH and (
                    best is None or s.weight > best[0].weight
                ):
                    best = (s, a, b)
        if best is not None:
            s, a, b = best
            detail = score_detail(s, record_id(b.tid, b.patient))
            db.open_review(
                self.sql, a.tid, a.rid, other, b.rid, s.weight, detail, s.model_version, self.now_ms
            )
            self.dirty.add(other)

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
        records = {r.rid: self.record(r) for r in rows}
        ordered = survivor_order(rows, records)
        identifiers = _nhs_identifiers(records[r.rid] for r in ordered)
        if identifiers:
            body["identifier"] = identifiers
        facts = [orjson.loads(r.demographics) for r in ordered]
        named = [f for r, f in zip(ordered, facts, strict=True) if not records[r.rid].placeholder]
        for candidate in (*named, *facts):  # rule 8: placeholder names only when nothing else
            names = _current_names(candidate)
            if names:
                body["name"] = names[:1]
                break
        for element in ("gender", "birthDate"):
            value = next((f[element] for f in facts if isinstance(f.get(element), str)), None)
            if value is not None:
                body[element] = value
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


def _current_names(facts: Mapping[str, Any]) -> list[dict[str, Any]]:
    names = facts.get("name")
    if not isinstance(names, list):
        return []
    current = [
        n
        for n in names
        if isinstance(n, dict)
        and n.get("use") in _NAME_ORDER
        and not (isinstance(n.get("period"), dict) and n["period"].get("end"))
    ]
    return sorted(current, key=lambda n: _NAME_ORDER[n.get("use")])  # stable: first of each use first


def _nhs_identifiers(records: Iterable[PatientRecord]) -> list[dict[str, Any]]:
    """Every member's NHS numbers (rule 8), in survivorship order: ``official`` when a member holds
    it verified, no ``use`` when only unverified, ``old`` when only superseded."""
    verified: list[str] = []
    current: list[str] = []
    old: list[str] = []
    for rec in records:
        if rec.nhs_number is not None:
            (verified if rec.nhs_verified else current).append(rec.nhs_number)
        old.extend(sorted(rec.nhs_history))
    out: list[dict[str, Any]] = []
    seen: set[str] = set()
    for numbers, use in ((verified, "official"), (current, None), (old, "old")):
        for number in numbers:
            if number in seen:
                continue
            seen.add(number)
            identifier: dict[str, Any] = {"system": NHS_SYSTEM, "value": number}
            if use is not None:
                identifier["use"] = use
            out.append(identifier)
    return out


def _same_content(stored: dict[str, Any], body: dict[str, Any]) -> bool:
    return {k: v for k, v in stored.items() if k != "meta"} == body
