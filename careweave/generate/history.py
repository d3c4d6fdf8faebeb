"""The building blocks of a clinical history: visits, vital signs, lab reports, diagnoses.

Rules:
1. A :class:`Chart` collects the resources of one registration (one Patient) as they are made,
   plus the visits and lab reports the HL7 v2 writer needs. It belongs to one call; nothing here
   is shared between registrations.
2. Every resource references the registration's Patient, and only resources of the same
   registration or the organisations and practitioners.
3. Visit numbers are unique within an organisation's visit-number system
   (``https://fhir.<code>.nhs.uk/Id/visit-number``): ``V`` + the MRN digits + a sequence.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any

from careweave.generate import fhir_clinical as fc
from careweave.generate.codes import ACUTE, LABS, MEDICINES, PANELS, VITALS
from careweave.generate.measures import Body, body_of, lab_value, vitals
from careweave.generate.model import Practitioner, Registration
from careweave.generate.randomness import new_id

__all__ = ["Chart", "LabReport", "Result", "Visit", "poisson"]


@dataclass(frozen=True, slots=True)
class Visit:
    encounter_id: str
    visit_number: str
    cls: str  # AMB | EMER | IMP | VR
    start: datetime
    end: datetime
    practitioner: Practitioner
    reason: tuple[str, str] | None


@dataclass(frozen=True, slots=True)
class Result:
    observation_id: str
    lab: str  # a key of codes.LABS
    value: float
    flag: str  # H | L | N


@dataclass(frozen=True, slots=True)
class LabReport:
    report_id: str
    panel: str  # a key of codes.PANELS
    taken: datetime
    issued: datetime
    results: tuple[Result, ...]
    visit: Visit | None
    practitioner: Practitioner


def poisson(rng: random.Random, mean: float) -> int:
    """A Poisson draw (Knuth's method for small means, a normal approximation above 30)."""
    if mean <= 0:
        return 0
    if mean > 30:
        return max(0, round(rng.gauss(mean, math.sqrt(mean))))
    limit, k, p = math.exp(-mean), 0, 1.0
    while True:
        p *= rng.random()
        if p <= limit:
            return k
        k += 1


@dataclass(slots=True)
class Chart:
    """The resources of one registration, built up visit by visit (rule 1)."""

    rng: random.Random
    reg: Registration
    resources: list[dict[str, Any]] = field(default_factory=list)
    visits: list[Visit] = field(default_factory=list)
    reports: list[LabReport] = field(default_factory=list)
    body: Body | None = None
    _visit_seq: int = 0

    @property
    def patient(self) -> str:
        return self.reg.patient_id

    def doctor(self) -> Practitioner:
        return self.rng.choice(self.reg.org.practitioners)

    def visit(
        self,
        cls: str,
        kind: tuple[str, str],
        start: datetime,
        minutes: int,
        reason: tuple[str, str] | None = None,
    ) -> Visit:
        self._visit_seq += 1
        org = self.reg.org
        number = f"V{''.join(c for c in self.reg.mrn if c.isdigit())}{self._visit_seq:03d}"
        visit = Visit(
            new_id(self.rng), number, cls, start, start + timedelta(minutes=minutes), self.doctor(), reason
        )
        self.resources.append(
            fc.encounter(
                visit.encounter_id,
                patient=self.patient,
                org=org.id,
                practitioner=visit.practitioner.id,
                cls=cls,
                kind=kind,
                start=visit.start,
                end=visit.end,
                visit_system=f"https://fhir.{org.code.lower()}.nhs.uk/Id/visit-number",
                visit_number=number,
                reason=reason,
            )
        )
        self.visits.append(visit)
        return visit

    def vitals(self, visit: Visit, keys: tuple[str, ...], when: datetime, unwell: bool) -> None:
        """Observations for ``keys`` of codes.VITALS; ``bp`` makes one panel with components."""
        if self.body is None:
            self.body = body_of(self.reg.person)
        values = vitals(self.rng, self.reg.person, self.body, when.date(), unwell)
        for key in keys:
            code, display, unit = VITALS[key]
            common: dict[str, Any] = {
                "patient": self.patient,
                "encounter_id": visit.encounter_id,
                "when": when,
                "category": "vital-signs",
            }
            if key == "bp":
                parts = tuple(
                    ((VITALS[p][0], VITALS[p][1]), values[p], VITALS[p][2]) for p in ("systolic", "diastolic")
                )
                self.resources.append(
                    fc.observation(new_id(self.rng), code=(code, display), components=parts, **common)
                )
            else:
                self.resources.append(
                    fc.observation(
                        new_id(self.rng), code=(code, display), value=values[key], unit=unit, **common
                    )
                )

    def lab_report(self, panel_key: str, visit: Visit | None, taken: datetime, infection: bool) -> None:
        """A lab report: one Observation per test of the panel and the DiagnosticReport."""
        panel = PANELS[panel_key]
        issued = taken + timedelta(hours=self.rng.randint(2, 30), minutes=self.rng.randint(0, 59))
        encounter_id = visit.encounter_id if visit else None
        results = tuple(self._result(key, encounter_id, taken, issued, infection) for key in panel.tests)
        report = LabReport(
            new_id(self.rng),
            panel_key,
            taken,
            issued,
            results,
            visit,
            visit.practitioner if visit else self.doctor(),
        )
        self.reports.append(report)
        self.resources.append(
            fc.diagnostic_report(
                report.report_id,
                patient=self.patient,
                encounter_id=encounter_id,
                org=self.reg.org.id,
                code=(panel.code, panel.display),
                service=panel.service,
                when=taken,
                issued=issued,
                results=[r.observation_id for r in results],
            )
        )

    def _result(
        self, key: str, encounter_id: str | None, taken: datetime, issued: datetime, infection: bool
    ) -> Result:
        lab = LABS[key]
        value = lab_value(self.rng, key, self.reg.person, infection)
        result = Result(new_id(self.rng), key, value, fc.flag(value, lab.low, lab.high))
        self.resources.append(
            fc.observation(
                result.observation_id,
                patient=self.patient,
                encounter_id=encounter_id,
                when=taken,
                category="laboratory",
                code=(lab.code, lab.display),
                value=value,
                unit=lab.unit,
                low=lab.low,
                high=lab.high,
                issued=issued,
            )
        )
        return result

    def diagnosis(self, key: str, visit: Visit, prescribe: float) -> None:
        """An acute, resolved encounter diagnosis, and sometimes its medicine."""
        code, display, medicine = ACUTE[key]
        condition_id = new_id(self.rng)
        onset = visit.start.date() - timedelta(days=self.rng.randint(0, 5))
        self.resources.append(
            fc.condition(
                condition_id,
                patient=self.patient,
                encounter_id=visit.encounter_id,
                code=(code, display),
                onset=onset,
                recorded=visit.start.date(),
                abated=visit.start.date() + timedelta(days=self.rng.randint(5, 30)),
                category="encounter-diagnosis",
                asserter=visit.practitioner.id,
            )
        )
        if medicine is not None and self.rng.random() < prescribe:
            self.prescribe(medicine, visit.end, visit.practitioner, condition_id, active=False, visit=visit)

    def prescribe(
        self,
        key: str,
        when: datetime,
        doctor: Practitioner,
        reason: str | None,
        *,
        active: bool,
        visit: Visit | None = None,
    ) -> None:
        med = MEDICINES[key]
        self.resources.append(
            fc.medication_request(
                new_id(self.rng),
                patient=self.patient,
                encounter_id=visit.encounter_id if visit else None,
                medicine=(med.code, med.display, med.dosage),
                authored=when,
                requester=doctor.id,
                active=active,
                reason=reason,
            )
        )


def random_day(rng: random.Random, start: date, end: date, weekday: bool = False) -> date:
    """A day in [start, end]; with ``weekday``, moved off a weekend when the range allows."""
    span = max(0, (end - start).days)
    day = start + timedelta(days=rng.randint(0, span))
    if weekday and day.weekday() >= 5:
        later = day + timedelta(days=7 - day.weekday())
        earlier = day - timedelta(days=day.weekday() - 4)
        day = later if later <= end else earlier if earlier >= start else day
    return day


def at(rng: random.Random, day: date, first_hour: int, last_hour: int) -> datetime:
    """A time on ``day`` between the hours, on a five-minute grid."""
    minute = rng.randrange((last_hour - first_hour) * 12) * 5
    return datetime.combine(day, time(first_hour)) + timedelta(minutes=minute)
