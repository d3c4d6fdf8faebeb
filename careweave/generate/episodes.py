"""Clinical histories: what happens to a person at their GP practice and at a trust.

Rules:
1. A history covers the registration's window: from its first contact (at most ``lookback``
   years back) to the generator's date, or to death. Nothing happens after death.
2. Visit counts are Poisson draws whose means rise with age and the number of chronic
   conditions, times ``activity`` (the knob that sets the mean resources per person).
3. GP practices hold the long-term record: every chronic condition (problem list), a current
   repeat prescription and older completed ones, allergies, and immunisations on the UK schedule
   (primary-source only when given during the registration). Trusts hold what happened there:
   emergency attendances, outpatient follow-ups and admissions (newborns are admitted at birth),
   with observations, lab reports and diagnoses, plus part of the problem list and allergies.
4. Every trust registration has at least one visit, on its first-contact day.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from careweave.generate import fhir_clinical as fc
from careweave.generate.codes import (
    ACUTE,
    ALLERGIES,
    CHRONIC,
    ENCOUNTER_TYPES,
    MANIFESTATIONS,
    VACCINES,
)
from careweave.generate.history import Chart, at, poisson, random_day
from careweave.generate.model import OrgKind, Person, Registration
from careweave.generate.randomness import new_id

__all__ = ["HistoryContext", "build_chart"]

_GP_ACUTE = ("uti", "pharyngitis", "bronchitis", "sinusitis", "migraine", "covid")
_ED_ACUTE = ("fracture", "pneumonia", "uti", "covid", "mi", "stroke", "appendicitis", "migraine")
_SERIOUS = frozenset({"pneumonia", "mi", "stroke", "appendicitis"})
_INFECTIONS = frozenset({"uti", "pneumonia", "bronchitis", "covid", "appendicitis"})
_COVID_FROM = date(2020, 3, 1)


@dataclass(frozen=True, slots=True)
class HistoryContext:
    as_of: date
    activity: float
    lookback_days: int = 8 * 365


def _window(reg: Registration, ctx: HistoryContext) -> tuple[date, date, float]:
    end = min(ctx.as_of, reg.person.deceased) if reg.person.deceased else ctx.as_of
    start = min(end, max(reg.since, ctx.as_of - timedelta(days=ctx.lookback_days)))
    return start, end, max(0.0, (end - start).days / 365.25)


def _age(reg: Registration, on: date) -> float:
    return (on - reg.person.birth_date).days / 365.2425


def build_chart(rng: random.Random, reg: Registration, ctx: HistoryContext) -> Chart:
    """The clinical history of one registration (rules 1-4)."""
    chart = Chart(rng, reg)
    if reg.org.kind is OrgKind.GP:
        _gp(chart, ctx)
    else:
        _trust(chart, ctx)
    return chart


def _panels(person: Person) -> list[str]:
    """The lab panels that monitor the person's chronic conditions."""
    return [p for c in person.conditions if (p := CHRONIC[c.key].panel) is not None]


def _acute_key(rng: random.Random, keys: tuple[str, ...], day: date) -> str:
    key = rng.choice(keys)
    return key if key != "covid" or day >= _COVID_FROM else "pharyngitis"


def _gp(chart: Chart, ctx: HistoryContext) -> None:
    rng, reg = chart.rng, chart.reg
    start, end, years = _window(reg, ctx)
    age = _age(reg, end)
    base = 3.0 if age < 5 else 1.2 if age < 18 else 1.6 if age < 45 else 2.4 if age < 65 else 3.6
    mean = base * (1 + 0.3 * len(reg.person.conditions)) * years * ctx.activity
    panels = _panels(reg.person)
    for _ in range(poisson(rng, mean)):
        day = random_day(rng, start, end, weekday=True)
        virtual = rng.random() < 0.25
        when = at(rng, day, 8, 18)
        kind = "telephone" if virtual else rng.choice(("consultation", "checkup", "followup", "symptom"))
        visit = chart.visit("VR" if virtual else "AMB", ENCOUNTER_TYPES[kind], when, 10)
        if rng.random() < 0.25:
            chart.diagnosis(_acute_key(rng, _GP_ACUTE, day), visit, prescribe=0.6)
        if not virtual:
            adult = _age(reg, day) >= 18
            keys: tuple[str, ...] = ("bp", "hr") if adult and rng.random() < 0.5 else ()
            keys += ("weight", "bmi") if rng.random() < (0.25 if adult else 0.5) else ()
            keys += ("height",) if not adult and keys else ()
            if keys:
                chart.vitals(visit, keys, visit.start, unwell=False)
            if rng.random() < 0.08 + 0.08 * len(panels):
                chart.lab_report(rng.choice([*panels, "fbc", "renal"]), visit, visit.end, False)
    _long_term(chart, start, end, years)
    _immunisations(chart, start, end, ctx)


def _long_term(chart: Chart, start: date, end: date, years: float) -> None:
    """Rule 3: the problem list, repeat prescriptions and allergies at the practice."""
    rng, reg = chart.rng, chart.reg
    for chronic in reg.person.conditions:
        if chronic.onset > end:
            continue
        info = CHRONIC[chronic.key]
        condition_id = new_id(rng)
        doctor = chart.doctor()
        chart.resources.append(
            fc.condition(
                condition_id,
                patient=chart.patient,
                encounter_id=None,
                code=(info.code, info.display),
                onset=chronic.onset,
                recorded=max(chronic.onset, reg.since),
                abated=None,
                category="problem-list-item",
                asserter=doctor.id,
            )
        )
        if info.medicine is None:
            continue
        first = max(start, chronic.onset)
        for issue in range(min(3, 1 + int(years))):
            day = end - timedelta(days=rng.randint(0, 60) + 365 * issue)
            if day < first:
                break
            chart.prescribe(info.medicine, at(rng, day, 8, 18), doctor, condition_id, active=issue == 0)
    for allergy in reg.person.allergies:
        _allergy(chart, allergy.key, allergy.onset, max(allergy.onset, reg.since))


def _allergy(chart: Chart, key: str, onset: date, recorded: date) -> None:
    code, display, category, reaction = ALLERGIES[key]
    chart.resources.append(
        fc.allergy(
            new_id(chart.rng),
            patient=chart.patient,
            code=(code, display),
            category=category,
            manifestation=MANIFESTATIONS[reaction],
            onset=onset,
            recorded=recorded,
        )
    )


def _schedule(birth: date, end: date) -> Iterator[tuple[str, date, float]]:
    """The UK routine schedule: (vaccine key, due date, uptake) up to ``end``."""
    if birth.year >= 1992:  # Hib-containing primary course since 1992 (6-in-1 since 2017)
        for weeks in (8, 12, 16):
            yield "6in1", birth + timedelta(weeks=weeks), 0.92
    if birth.year >= 1987:  # MMR since 1988, a second dose since 1996
        yield "mmr", birth + timedelta(days=366), 0.9
        if birth.year >= 1993:
            yield "mmr", birth + timedelta(days=3 * 365 + 120), 0.85
    if birth.year >= 1996:
        yield "hpv", birth + timedelta(days=12 * 365 + 200), 0.7
    for year in range(max(birth.year + 2, 2014), end.year + 1):
        age = year - birth.year
        if age <= 10 or age >= 65:
            yield "flu", date(year, 10, 15), 0.6 if age <= 10 else 0.75
    yield "pneumo", birth + timedelta(days=65 * 365 + 100), 0.7
    yield "shingles", birth + timedelta(days=70 * 365 + 100), 0.5
    if end.year >= 2021 and (end - birth).days >= 18 * 365:
        yield "covid", date(2021, 3, 1), 0.85
        yield "covid", date(2021, 6, 1), 0.8
        for year in range(2021, end.year + 1):
            if year - birth.year >= 65:
                yield "covid", date(year, 10, 1), 0.6


def _immunisations(chart: Chart, start: date, end: date, ctx: HistoryContext) -> None:
    rng, reg = chart.rng, chart.reg
    earliest = ctx.as_of - timedelta(days=ctx.lookback_days)
    for key, due, uptake in _schedule(reg.person.birth_date, end):
        childhood = key in ("6in1", "mmr")
        if due > end or (due < earliest and not childhood) or rng.random() >= uptake:
            continue
        day = min(end, due + timedelta(days=rng.randint(0, 40)))
        here = day >= reg.since
        code, display, product = VACCINES[key]
        if key == "6in1" and day.year < 2017:
            product = "DTaP/IPV/Hib (5-in-1)" if day.year >= 2004 else "DTP/Hib"
        chart.resources.append(
            fc.immunization(
                new_id(rng),
                patient=chart.patient,
                vaccine=(code, display, product),
                when=at(rng, day, 9, 17),
                performer=chart.doctor().id if here else None,
            )
        )


def _trust(chart: Chart, ctx: HistoryContext) -> None:
    rng, reg = chart.rng, chart.reg
    start, end, years = _window(reg, ctx)
    age = _age(reg, end)
    chronic = len(reg.person.conditions)
    frail = age < 5 or age > 75
    if (reg.since - reg.person.birth_date).days < 3:
        _birth(chart)
    else:
        _first_visit(chart, reg.since)
    for _ in range(poisson(rng, (0.2 + (0.2 if frail else 0)) * years * ctx.activity)):
        _emergency(chart, random_day(rng, start, end), end)
    for _ in range(poisson(rng, (0.1 + 0.3 * chronic) * years * ctx.activity)):
        _outpatient(chart, random_day(rng, start, end, weekday=True))
    for _ in range(poisson(rng, (0.03 + (0.1 if age > 65 else 0) + 0.03 * chronic) * years * ctx.activity)):
        day = random_day(rng, start, end)
        _admission(chart, at(rng, day, 8, 12), end, rng.choice(_ED_ACUTE))
    for condition in reg.person.conditions:
        if condition.onset <= end and rng.random() < 0.5:
            info = CHRONIC[condition.key]
            chart.resources.append(
                fc.condition(
                    new_id(rng),
                    patient=chart.patient,
                    encounter_id=None,
                    code=(info.code, info.display),
                    onset=condition.onset,
                    recorded=max(condition.onset, reg.since),
                    abated=None,
                    category="problem-list-item",
                )
            )
    for allergy in reg.person.allergies:
        if rng.random() < 0.7:
            _allergy(chart, allergy.key, allergy.onset, max(allergy.onset, reg.since))


def _first_visit(chart: Chart, day: date) -> None:
    if chart.rng.random() < 0.5:
        _emergency(chart, day, day)
    else:
        _outpatient(chart, day)


def _birth(chart: Chart) -> None:
    rng, reg = chart.rng, chart.reg
    born = datetime.combine(reg.person.birth_date, time(0)) + timedelta(minutes=rng.randrange(1440))
    visit = chart.visit("IMP", ENCOUNTER_TYPES["admission"], born, rng.randint(1, 3) * 1440)
    chart.vitals(visit, ("weight", "hr"), born + timedelta(hours=1), unwell=False)


def _emergency(chart: Chart, day: date, end: date) -> None:
    rng = chart.rng
    hour = rng.choice((0, 2, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22))
    arrived = at(rng, day, hour, hour + 1)
    key = _acute_key(rng, _ED_ACUTE, day)
    unwell = rng.random() < 0.6
    visit = chart.visit("EMER", ENCOUNTER_TYPES["emergency"], arrived, rng.randint(90, 480))
    chart.vitals(visit, ("hr", "rr", "temp", "spo2", "bp"), arrived + timedelta(minutes=15), unwell)
    if rng.random() < 0.7:
        chart.diagnosis(key, visit, prescribe=0.5)
    if rng.random() < 0.5:
        chart.lab_report("fbc", visit, visit.start + timedelta(minutes=40), key in _INFECTIONS)
        chart.lab_report("crp", visit, visit.start + timedelta(minutes=40), key in _INFECTIONS)
    if key in _SERIOUS and visit.end.date() <= end:
        _admission(chart, visit.end, end, key)


def _outpatient(chart: Chart, day: date) -> None:
    rng, person = chart.rng, chart.reg.person
    visit = chart.visit("AMB", ENCOUNTER_TYPES["followup"], at(rng, day, 9, 17), rng.choice((20, 30, 45)))
    if rng.random() < 0.5:
        chart.vitals(visit, ("bp", "hr", "weight"), visit.start, unwell=False)
    panels = _panels(person)
    if panels and rng.random() < 0.4:
        chart.lab_report(rng.choice(panels), visit, visit.start, False)


def _admission(chart: Chart, admitted: datetime, end: date, key: str) -> None:
    rng = chart.rng
    code, display, _ = ACUTE[key]
    last = datetime.combine(end, time(12))
    stay = min(rng.randint(1, 10) * 1440, max(60, int((last - admitted).total_seconds() // 60)))
    visit = chart.visit("IMP", ENCOUNTER_TYPES["admission"], admitted, stay, (code, display))
    infection = key in _INFECTIONS
    chart.lab_report("fbc", visit, admitted + timedelta(hours=1), infection)
    chart.lab_report("renal", visit, admitted + timedelta(hours=1), infection)
    for day in range(max(1, stay // 1440)):
        chart.vitals(visit, ("hr", "bp", "temp"), admitted + timedelta(days=day, hours=2), infection)
    chart.diagnosis(key, visit, prescribe=0.9)
    chart.prescribe(
        "paracetamol", admitted + timedelta(hours=2), visit.practitioner, None, active=False, visit=visit
    )
