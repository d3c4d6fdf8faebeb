"""The real population: households of people with UK-realistic ages, names, families and twins.

Rules:
1. People come in households (single adults, couples, families with children, single parents,
   three generations, house-sharers). Members share an address and often a landline; family
   members share a surname unless marriage customs or naming traditions say otherwise.
2. Adult ages follow the England and Wales age pyramid (ONS mid-2021 five-year bands); children
   are born to their parents between the parents' ages of 19 and 45.
3. Married couples: most often the wife takes the husband's surname (her ``birth_family`` keeps
   the old one); sometimes the husband takes the wife's, both double-barrel, or both keep theirs.
4. Twins share surname, birth date and address and have different given names (they are the
   same sex where the surname has male and female forms, so that the surname is shared).
5. Each person gets a unique NHS number from the caller's iterator of 999-block numbers.
"""

from __future__ import annotations

import random
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from datetime import date, timedelta

from careweave.generate import names, places
from careweave.generate.codes import ALLERGIES, CHRONIC
from careweave.generate.model import Address, Allergy, ChronicCondition, Person
from careweave.generate.randomness import Weighted

__all__ = ["HouseholdContext", "make_household"]

# ONS mid-2021 England and Wales, millions per five-year band from 18 (rule 2)
_BANDS = (
    ((18, 19), 1.4), ((20, 24), 3.6), ((25, 29), 3.9), ((30, 34), 4.1), ((35, 39), 4.0),
    ((40, 44), 3.8), ((45, 49), 3.9), ((50, 54), 4.2), ((55, 59), 4.1), ((60, 64), 3.6),
    ((65, 69), 3.1), ((70, 74), 3.1), ((75, 79), 2.2), ((80, 84), 1.5), ((85, 89), 0.9),
    ((90, 99), 0.5),
)  # fmt: skip
_ADULT_BANDS = Weighted.of(_BANDS)
# Families and house-sharers are young, so people living alone or as a couple are drawn older
# than the pyramid: that brings the whole population back to its shape (about 19% over 65).
_HEAD_BANDS = Weighted.of([(band, w * (2.6 if band[0] >= 60 else 1.0)) for band, w in _BANDS])
_ETHNICITY = (
    ("A", 74.4),
    ("B", 0.9),
    ("C", 6.2),
    ("H", 3.1),
    ("J", 2.7),
    ("K", 1.1),
    ("L", 1.6),
    ("R", 0.7),
    ("M", 1.0),
    ("N", 2.5),
    ("P", 0.5),
    ("S", 2.2),
)
_HOUSEHOLDS = Weighted.of(
    [
        ("single", 0.31),
        ("couple", 0.28),
        ("family", 0.2),
        ("single-parent", 0.07),
        ("three-generations", 0.04),
        ("sharers", 0.1),
    ]
)
_ASIAN = frozenset("HJKLR")


@dataclass(frozen=True, slots=True)
class HouseholdContext:
    """What every household needs: the date, where people live, the NHS numbers to hand out."""

    as_of: date
    regions: Weighted[str]  # keys of places.REGIONS where the organisations are
    nhs_numbers: Iterator[str]


@dataclass(slots=True)
class _Draft:
    """A person while the household is being assembled (surnames change on marriage)."""

    sex: str
    age: int
    ethnicity: str
    surname: tuple[str, str]
    birth_surname: tuple[str, str] | None = None
    birth_date: date | None = None
    twin_order: int | None = None
    is_child: bool = False


def make_household(
    rng: random.Random, index: int, first_person: int, ctx: HouseholdContext, limit: int
) -> list[Person]:
    """The people of household ``index`` (at most ``limit``), numbered from ``first_person``."""
    region = places.REGIONS[ctx.regions.pick(rng)]
    ethnicity = _ethnicity(rng, region)
    drafts = _compose(rng, _HOUSEHOLDS.pick(rng), ethnicity, region)[:limit]
    address = places.make_address(rng, region)
    previous, moved_on = _move(rng, ctx, region)
    landline = places.landline_number(rng, region) if rng.random() < 0.45 else None
    mother = next((d for d in drafts if d.sex == "female" and not d.is_child), None)
    people: list[Person] = []
    used_given: set[str] = set()
    mother_name: tuple[str, str] | None = None
    twins_born: date | None = None
    for offset, draft in enumerate(drafts):
        birth = draft.birth_date or _birth_date(rng, ctx.as_of, draft.age)
        if draft.twin_order is not None:  # rule 4: the second twin shares the first's birthday
            birth = twins_born = twins_born or birth
        given = _given_names(rng, draft, birth.year, used_given)
        family = _form(draft.surname, draft.sex)
        if draft is mother:
            mother_name = (given[0], family)
        people.append(
            Person(
                person_id=f"person-{first_person + offset:07d}",
                household_id=f"household-{index:07d}",
                given=given,
                family=family,
                birth_family=_form(draft.birth_surname, draft.sex) if draft.birth_surname else None,
                sex=draft.sex,
                birth_date=birth,
                ethnicity=draft.ethnicity,
                nhs_number=next(ctx.nhs_numbers),
                address=address,
                previous_address=previous if not _born_after(birth, moved_on) else None,
                moved_on=moved_on if not _born_after(birth, moved_on) else None,
                region=region.key,
                landline=landline,
                mobile=places.mobile_number(rng) if _has_mobile(rng, draft.age) else None,
                email=None,
                multiple_birth=draft.twin_order,
                mother_name=None,
                deceased=_deceased(rng, ctx.as_of, draft.age),
                conditions=_conditions(rng, ctx.as_of, birth, draft.sex),
                allergies=_allergies(rng, ctx.as_of, birth),
            )
        )
    return [_finish(rng, p, mother_name, ctx.as_of) for p in people]


def _finish(rng: random.Random, p: Person, mother: tuple[str, str] | None, as_of: date) -> Person:
    adult = (as_of - p.birth_date).days >= 18 * 365
    email = places.email_for(rng, p.given[0], p.family) if adult and rng.random() < 0.5 else None
    baby = (as_of - p.birth_date).days < 365
    return replace(p, email=email, mother_name=mother if baby else None)


def _born_after(birth: date, moved_on: date | None) -> bool:
    return moved_on is not None and birth >= moved_on


def _form(surname: tuple[str, str], sex: str) -> str:
    return surname[0] if sex == "male" else surname[1]


def _ethnicity(rng: random.Random, region: places.Region) -> str:
    scaled = [(code, w if code == "A" else w * region.diversity) for code, w in _ETHNICITY]
    return Weighted.of(scaled).pick(rng)


def _adult_age(
    rng: random.Random, low: int = 18, high: int = 99, bands: Weighted[tuple[int, int]] = _ADULT_BANDS
) -> int:
    for _ in range(100):
        band_low, band_high = bands.pick(rng)
        age = rng.randint(band_low, band_high)
        if low <= age <= high:
            return age
    return rng.randint(low, high)


def _compose(rng: random.Random, kind: str, ethnicity: str, region: places.Region) -> list[_Draft]:
    surname = names.pick_surname(rng, ethnicity)
    if kind == "single":
        return [
            _Draft(rng.choice(("male", "female")), _adult_age(rng, bands=_HEAD_BANDS), ethnicity, surname)
        ]
    if kind == "sharers":
        return [
            _Draft(rng.choice(("male", "female")), _adult_age(rng, 19, 35), e, names.pick_surname(rng, e))
            for e in (_ethnicity(rng, region) for _ in range(rng.randint(2, 4)))
        ]
    if kind == "single-parent":
        parent = _Draft(
            "female" if rng.random() < 0.9 else "male", _adult_age(rng, 20, 55), ethnicity, surname
        )
        return [parent, *_children(rng, parent.age, ethnicity, surname)]
    couple = _couple(rng, kind, ethnicity, surname, region)
    if kind == "couple":
        return couple
    kids_ethnicity = _child_ethnicity(couple[0].ethnicity, couple[1].ethnicity)
    kids = _children(rng, min(d.age for d in couple), kids_ethnicity, couple[0].surname)
    household = [*couple, *kids]
    if kind == "three-generations":
        elder_age = min(99, max(d.age for d in couple) + rng.randint(22, 35))
        household.append(_Draft("female", elder_age, couple[0].ethnicity, couple[0].surname))
    return household


def _couple(
    rng: random.Random, kind: str, ethnicity: str, surname: tuple[str, str], region: places.Region
) -> list[_Draft]:
    age = _adult_age(rng, 27, 55) if kind != "couple" else _adult_age(rng, 20, 99, _HEAD_BANDS)
    partner_age = max(18, min(99, age + round(rng.gauss(1.5, 3.5))))
    partner_ethnicity = _ethnicity(rng, region) if rng.random() < 0.08 else ethnicity
    same_sex = rng.random() < 0.03
    first = _Draft(
        "male" if not same_sex or rng.random() < 0.5 else "female", partner_age, ethnicity, surname
    )
    second_sex = first.sex if same_sex else ("female" if first.sex == "male" else "male")
    second = _Draft(second_sex, age, partner_ethnicity, names.pick_surname(rng, partner_ethnicity))
    if rng.random() < 0.7:
        _marry(rng, first, second)
    return [first, second]


def _marry(rng: random.Random, first: _Draft, second: _Draft) -> None:
    """Rule 3: the second partner usually takes the first's surname."""
    roll = rng.random()
    if roll < 0.85:
        second.birth_surname, second.surname = second.surname, first.surname
    elif roll < 0.88:
        first.birth_surname, first.surname = first.surname, second.surname
    elif roll < 0.93:
        joined = (f"{first.surname[0]}-{second.surname[0]}", f"{first.surname[1]}-{second.surname[1]}")
        first.birth_surname, second.birth_surname = first.surname, second.surname
        first.surname = second.surname = joined


def _child_ethnicity(first: str, second: str) -> str:
    if first == second:
        return first
    pair = {first, second}
    if "A" in pair:
        other = (pair - {"A"}).pop()
        if other == "M":
            return "D"
        if other == "N":
            return "E"
        if other in _ASIAN:
            return "F"
    return "G"


def _children(rng: random.Random, parent_age: int, ethnicity: str, surname: tuple[str, str]) -> list[_Draft]:
    oldest = min(17, parent_age - 19)
    if oldest < 0:
        return []
    count = Weighted.of([(1, 0.4), (2, 0.42), (3, 0.18)]).pick(rng)
    kids = [
        _Draft(rng.choice(("male", "female")), rng.randint(0, oldest), ethnicity, surname, is_child=True)
        for _ in range(count)
    ]
    if rng.random() < 0.04:  # twins (rule 4)
        sex = rng.choice(("male", "female")) if surname[0] == surname[1] else kids[0].sex
        twin = _Draft(sex, kids[0].age, ethnicity, surname, is_child=True)
        kids[0].twin_order, twin.twin_order = 1, 2
        kids.insert(1, twin)
    return kids


def _birth_date(rng: random.Random, as_of: date, age: int) -> date:
    return as_of - timedelta(days=int((age + rng.random()) * 365.2425))


def _given_names(rng: random.Random, draft: _Draft, birth_year: int, used: set[str]) -> tuple[str, ...]:
    first = names.pick_given(rng, draft.ethnicity, draft.sex, birth_year)
    for _ in range(20):  # siblings (and twins) get different first names
        if first not in used:
            break
        first = names.pick_given(rng, draft.ethnicity, draft.sex, birth_year)
    used.add(first)
    if rng.random() < 0.45:
        middle = names.pick_given(rng, draft.ethnicity, draft.sex, birth_year)
        if middle != first:
            return (first, middle)
    return (first,)


def _move(
    rng: random.Random, ctx: HouseholdContext, region: places.Region
) -> tuple[Address | None, date | None]:
    if rng.random() >= 0.35:
        return None, None
    origin = region if rng.random() < 0.8 else places.REGIONS[ctx.regions.pick(rng)]
    moved_on = ctx.as_of - timedelta(days=rng.randint(30, 8 * 365))
    return places.make_address(rng, origin), moved_on


def _has_mobile(rng: random.Random, age: int) -> bool:
    if age < 12:
        return False
    return rng.random() < (0.6 if age < 16 else 0.88 if age < 75 else 0.6)


def _deceased(rng: random.Random, as_of: date, age: int) -> date | None:
    risk = 0.08 if age >= 85 else 0.03 if age >= 75 else 0.008 if age >= 60 else 0.0
    if rng.random() >= risk:
        return None
    return as_of - timedelta(days=rng.randint(1, 3 * 365))


def _age_band(age: float) -> int:
    return 0 if age < 18 else 1 if age < 45 else 2 if age < 65 else 3


def _conditions(rng: random.Random, as_of: date, birth: date, sex: str) -> tuple[ChronicCondition, ...]:
    age = (as_of - birth).days / 365.2425
    found: list[ChronicCondition] = []
    for key, chronic in CHRONIC.items():
        prevalence = chronic.prevalence[_age_band(age)]
        if chronic.female_only and sex == "male":
            prevalence /= 5  # more common in women, not exclusive to them
        if rng.random() < prevalence:
            earliest = max(birth + timedelta(days=365 * 2), as_of - timedelta(days=365 * 20))
            span = max(1, (as_of - earliest).days)
            found.append(ChronicCondition(key, earliest + timedelta(days=rng.randrange(span))))
    return tuple(found)


def _allergies(rng: random.Random, as_of: date, birth: date) -> tuple[Allergy, ...]:
    count = 0 if rng.random() >= 0.18 else 1 if rng.random() < 0.8 else 2
    keys: Sequence[str] = rng.sample(sorted(ALLERGIES), count)
    span = max(1, (as_of - birth).days)
    return tuple(Allergy(k, birth + timedelta(days=rng.randrange(span))) for k in keys)
