"""The generator's entry point: configuration in, output directory and summary out.

Rules:
1. Deterministic: the same configuration writes the same bytes. Organisations come from one
   derived stream, each household from its own, NHS numbers and MRNs from run-wide sequences.
2. Streaming: households are generated, written and dropped one at a time.
3. ``resources_per_patient`` is met by scaling the visit rates: the mean number of resources a
   person gets splits into a fixed part (Patients, problem lists, prescriptions, allergies,
   immunisations) and a part proportional to the visit rates, both measured on large runs.
"""

from __future__ import annotations

import itertools
import random
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from careweave.generate import hl7v2
from careweave.generate.config import GeneratorConfig
from careweave.generate.discrepancy import RecordContext
from careweave.generate.episodes import HistoryContext, build_chart
from careweave.generate.model import Discrepancy, Organisation, OrgKind, Person, Registration
from careweave.generate.organisations import make_organisations, organisation_resources
from careweave.generate.output import Sink
from careweave.generate.patient import patient_resource
from careweave.generate.people import HouseholdContext, make_household
from careweave.generate.randomness import Weighted, derive
from careweave.generate.registration import MrnAllocator, Sites, register
from careweave.mpi import nhs_number

__all__ = ["Progress", "Summary", "generate"]

Progress = Callable[[int, int], None]  # (persons done, persons in total)

# rule 3: mean resources per person = _FIXED + _PER_ACTIVITY * activity
_FIXED = 14.3
_PER_ACTIVITY = 64.1


@dataclass(frozen=True, slots=True)
class Summary:
    """What a run wrote (also saved as ``summary.json``)."""

    out_dir: Path
    persons: int
    patients: int
    organisations: int
    practitioners: int
    resources: dict[str, int]
    bundles: int
    hl7_messages: dict[str, int]
    discrepancies: dict[str, int]

    @property
    def total_resources(self) -> int:
        return sum(self.resources.values())

    def as_json(self, config: GeneratorConfig) -> dict[str, Any]:
        return {
            "config": {
                "patients": config.patients,
                "organisations": config.organisations,
                "seed": config.seed,
                "difficulty": config.difficulty,
                "formats": sorted(config.formats),
                "resources_per_patient": config.resources_per_patient,
                "bundle_size": config.bundle_size,
                "as_of": config.as_of.isoformat(),
            },
            "persons": self.persons,
            "patients": self.patients,
            "organisations": self.organisations,
            "practitioners": self.practitioners,
            "resources": self.resources,
            "total_resources": self.total_resources,
            "bundles": self.bundles,
            "hl7_messages": self.hl7_messages,
            "discrepancies": self.discrepancies,
        }


def _activity(config: GeneratorConfig) -> float:
    return max(0.05, (config.resources_per_patient - _FIXED) / _PER_ACTIVITY)


def _truth_row(reg: Registration) -> list[str]:
    person, rec = reg.person, reg.recorded
    return [
        reg.patient_id,
        reg.org.code,
        reg.org.kind.value,
        reg.mrn,
        person.person_id,
        person.household_id,
        person.sex,
        person.birth_date.isoformat(),
        person.ethnicity,
        person.nhs_number,
        rec.nhs_number or "",
        rec.verification or "",
        str(person.multiple_birth or ""),
        ";".join(d.value for d in rec.discrepancies),
    ]


@dataclass(slots=True)
class _Run:
    """The state of one generate() call: the sequences shared by all households."""

    config: GeneratorConfig
    sink: Sink
    sites: Sites
    numbers: Iterator[str]
    mrns: MrnAllocator
    history: HistoryContext
    control: Iterator[int]
    discrepancies: Counter[str]
    patients: int = 0

    def control_id(self) -> int:
        return next(self.control)

    def spare_number(self) -> str:
        return next(self.numbers)

    def person(self, rng: random.Random, person: Person, household: list[Person]) -> None:
        relatives = tuple(p.nhs_number for p in household if p is not person)
        ctx = RecordContext(self.config.discrepancy_rates, relatives, self.spare_number)
        for reg in register(rng, person, self.sites, self.config.as_of, ctx, self.mrns):
            chart = build_chart(rng, reg, self.history)
            self.sink.add([patient_resource(rng, reg), *chart.resources])
            self.sink.hl7("adt", hl7v2.adt_messages(rng, reg, chart, self.control_id))
            self.sink.hl7("oru", hl7v2.oru_messages(reg, chart, self.control_id))
            self.sink.truth(_truth_row(reg))
            self.discrepancies.update(d.value for d in reg.recorded.discrepancies)
            self.patients += 1
        self.sink.end_person()


def _regions(orgs: tuple[Organisation, ...]) -> Weighted[str]:
    """People live where the GP practices are, in proportion to their number."""
    counts = Counter(o.region for o in orgs if o.kind is OrgKind.GP)
    return Weighted.of(sorted(counts.items()))


def generate(config: GeneratorConfig, out_dir: Path, progress: Progress | None = None) -> Summary:
    """Generate the population ``config`` describes into ``out_dir`` (see ``output`` for the
    layout) and return what was written. Raises OSError if the directory cannot be written."""
    out_dir = Path(out_dir)
    orgs = make_organisations(derive(config.seed, "organisations"), config.organisations)
    numbers = nhs_number.iter_test_numbers(derive(config.seed, "nhs-numbers"))
    households = HouseholdContext(config.as_of, _regions(orgs), numbers)
    with Sink(out_dir, config.formats, config.bundle_size) as sink:
        for org in orgs:
            sink.add(organisation_resources(org))
        sink.close_bundle()
        run = _Run(
            config,
            sink,
            Sites.of(orgs),
            numbers,
            MrnAllocator(derive(config.seed, "mrn")),
            HistoryContext(config.as_of, _activity(config)),
            itertools.count(1),
            Counter(),
        )
        done = 0
        for index in itertools.count():
            if done >= config.patients:
                break
            rng = derive(config.seed, "household", index)
            people = make_household(rng, index, done, households, config.patients - done)
            for person in people:
                run.person(rng, person, people)
            done += len(people)
            if progress is not None:
                progress(done, config.patients)
        sink.close_bundle()
        summary = Summary(
            out_dir=out_dir,
            persons=done,
            patients=run.patients,
            organisations=len(orgs),
            practitioners=sum(len(o.practitioners) for o in orgs),
            resources=dict(sorted(sink.counts.items())),
            bundles=sink.bundles,
            hl7_messages=dict(sorted(sink.messages.items())),
            discrepancies={d.value: run.discrepancies[d.value] for d in Discrepancy},
        )
        sink.summary(summary.as_json(config))
    return summary
