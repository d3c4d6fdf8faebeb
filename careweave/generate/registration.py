"""Where each person is registered: a GP practice, local and distant trusts, and duplicates.

Rules:
1. Nearly everyone (96%) is registered with a GP practice in their region, usually the one the
   rest of their household uses. A trust registration
   is likelier with age (and nearly certain for a newborn, registered at birth); a few people also
   have a record at a trust in another region. Everyone has at least one registration.
2. A duplicate is a second record at the same trust, created because matching failed: it always
   carries another discrepancy too (a typo, a missing NHS number or a swapped birth date). Some
   duplicates have been merged by the trust (``replaced-by`` on the duplicate).
3. MRNs are unique within an organisation: each organisation's numbers climb by small random
   steps from a random start, like real hospital-number sequences.
"""

from __future__ import annotations

import random
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, timedelta

from careweave.generate.discrepancy import RecordContext, record
from careweave.generate.model import Discrepancy, Organisation, OrgKind, Person, Registration
from careweave.generate.randomness import new_id

__all__ = ["MrnAllocator", "Sites", "register"]

_DUPLICATE_CAUSES = (Discrepancy.NAME_TYPO, Discrepancy.NHS_MISSING, Discrepancy.DOB_SWAPPED)


@dataclass(frozen=True, slots=True)
class Sites:
    """The organisations by kind and region."""

    practices: Mapping[str, tuple[Organisation, ...]]
    trusts: Mapping[str, tuple[Organisation, ...]]
    all_trusts: tuple[Organisation, ...]

    @classmethod
    def of(cls, orgs: Sequence[Organisation]) -> Sites:
        practices: dict[str, list[Organisation]] = {}
        trusts: dict[str, list[Organisation]] = {}
        for org in orgs:
            (practices if org.kind is OrgKind.GP else trusts).setdefault(org.region, []).append(org)
        return cls(
            practices={k: tuple(v) for k, v in practices.items()},
            trusts={k: tuple(v) for k, v in trusts.items()},
            all_trusts=tuple(o for o in orgs if o.kind is OrgKind.TRUST),
        )


@dataclass(slots=True)
class MrnAllocator:
    """Per-organisation MRN sequences (rule 3). Owned by one generator run."""

    rng: random.Random
    last: dict[str, int] = field(default_factory=dict)

    def next(self, org: Organisation) -> str:
        if org.id not in self.last:
            self.last[org.id] = self.rng.randrange(10 ** (org.mrn_digits - 1))
        self.last[org.id] += self.rng.randint(1, 29)
        return f"{org.mrn_prefix}{self.last[org.id]:0{org.mrn_digits}d}"


def _age(person: Person, on: date) -> float:
    return (on - person.birth_date).days / 365.2425


def _last_day(person: Person, as_of: date) -> date:
    return min(as_of, person.deceased) if person.deceased else as_of


def _first_contact(rng: random.Random, person: Person, as_of: date, gp: bool) -> date:
    end = _last_day(person, as_of)
    start = person.birth_date + timedelta(days=42 if gp else 0)
    if person.moved_on is not None and gp and rng.random() < 0.7:
        start = max(start, person.moved_on)  # re-registered with a practice after moving
    window = max(0, min((end - start).days, 15 * 365))
    return end - timedelta(days=rng.randint(0, window)) if window else min(start, end)


def _plan(rng: random.Random, person: Person, sites: Sites, as_of: date) -> list[Organisation]:
    age = _age(person, as_of)
    chosen: list[Organisation] = []
    practices = sites.practices.get(person.region) or next(iter(sites.practices.values()))
    if rng.random() < 0.96:  # most households share a practice
        shared = practices[zlib.crc32(person.household_id.encode()) % len(practices)]
        chosen.append(shared if rng.random() < 0.85 else rng.choice(practices))
    local = sites.trusts.get(person.region, sites.all_trusts)
    trust_chance = 0.9 if age < 1 else 0.3 if age < 18 else 0.4 if age < 65 else 0.75
    if rng.random() < trust_chance or not chosen:
        chosen.append(rng.choice(local))
    elsewhere = [t for t in sites.all_trusts if t not in local]
    if elsewhere and rng.random() < 0.08:
        chosen.append(rng.choice(elsewhere))
    return chosen


def register(
    rng: random.Random,
    person: Person,
    sites: Sites,
    as_of: date,
    ctx: RecordContext,
    mrns: MrnAllocator,
) -> list[Registration]:
    """Every registration of one person (rules 1-2), duplicates included."""
    orgs = _plan(rng, person, sites, as_of)
    gp = next((o for o in orgs if o.kind is OrgKind.GP), None)
    out: list[Registration] = []
    for org in orgs:
        newborn = person.mother_name is not None and org.kind is OrgKind.TRUST
        since = person.birth_date if newborn else _first_contact(rng, person, as_of, org is gp)
        reg = Registration(
            patient_id=new_id(rng),
            person=person,
            org=org,
            mrn=mrns.next(org),
            recorded=record(rng, person, org, since, ctx),
            since=since,
            gp=gp,
        )
        out.append(reg)
        if org.kind is OrgKind.TRUST and rng.random() < ctx.rates.duplicate:
            out[-1:] = _duplicate(rng, reg, as_of, ctx, mrns)
    return out


def _duplicate(
    rng: random.Random, original: Registration, as_of: date, ctx: RecordContext, mrns: MrnAllocator
) -> list[Registration]:
    person, org = original.person, original.org
    end = _last_day(person, as_of)
    since = min(end, original.since + timedelta(days=rng.randint(60, 3 * 365)))
    cause = rng.choice(_DUPLICATE_CAUSES)
    if cause is Discrepancy.DOB_SWAPPED and (
        person.birth_date.day > 12 or person.birth_date.day == person.birth_date.month
    ):
        cause = Discrepancy.NAME_TYPO
    merged = rng.random() < ctx.rates.merged
    forced = {Discrepancy.DUPLICATE, cause} | ({Discrepancy.MERGED} if merged else set())
    recorded = record(rng, person, org, since, ctx, frozenset(forced))
    recorded = replace(recorded, discrepancies=_with(recorded.discrepancies, forced))
    dup = Registration(
        patient_id=new_id(rng),
        person=person,
        org=org,
        mrn=mrns.next(org),
        recorded=recorded,
        since=since,
        gp=original.gp,
    )
    if merged:
        survivor = replace(original, replaces=dup.patient_id)
        return [survivor, replace(dup, replaced_by=original.patient_id, merged_into=survivor)]
    return [original, dup]


def _with(
    applied: tuple[Discrepancy, ...], forced: set[Discrepancy] | frozenset[Discrepancy]
) -> tuple[Discrepancy, ...]:
    """The applied discrepancies plus the bookkeeping ones (duplicate, merged), in enum order."""
    return tuple(
        d for d in Discrepancy if d in applied or d in forced & {Discrepancy.DUPLICATE, Discrepancy.MERGED}
    )
