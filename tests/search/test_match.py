"""The in-memory matcher (careweave.search.match) agrees with the SQL compiler, differentially.

A generated population (careweave.generate, the demo preset) plus a few hand-made resources that
carry what the generator does not (numbers, uris, Periods, Ranges, composites of every component
type, meta parameters, positions) is loaded into a real system. Queries of every predicate kind
are generated from the stored values themselves, on both sides of each boundary; for each one the
set of resources the matcher accepts must equal what Store.search returns.

Spec: https://hl7.org/fhir/R4/search.html (3.1.1.4 prefixes, 3.1.1.5 modifiers, 3.1.1.x types).
"""

from __future__ import annotations

import random
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest

from careweave.errors import CareweaveError
from careweave.generate import DEMO, generate
from careweave.interactions.loading import load_paths
from careweave.search.index import IndexRows
from careweave.search.match import Candidate, matches, matches_candidate, needs_database
from careweave.search.params import SearchContext, parse_search
from careweave.search.plan import (
    And,
    CompositeMatch,
    DateMatch,
    IdIn,
    Not,
    Or,
    Predicate,
    QueryPlan,
    RefIn,
    StringMatch,
    TokenMatch,
    UriMatch,
)
from careweave.search.values import NEG_INF, POS_INF
from careweave.settings import Settings
from careweave.system import build_system

pytestmark = pytest.mark.anyio

UCUM = "http://unitsofmeasure.org"
SNOMED = "http://snomed.info/sct"
LOINC = "http://loinc.org"
NHS = "https://fhir.nhs.uk/Id/nhs-number"


def _extras() -> list[dict[str, Any]]:
    """Resources with the value shapes the generator does not produce."""
    patient_meta = {"tag": [{"system": "urn:t", "code": "vip"}],
                    "security": [{"system": "http://terminology.hl7.org/CodeSystem/v3-Confidentiality",
                                  "code": "R"}],
                    "profile": ["http://example.org/fhir/StructureDefinition/my-patient"],
                    "source": "urn:source:pas#42"}
    code = {"coding": [{"system": LOINC, "code": "1234-5", "display": "Test, one"}], "text": "Test one"}
    return [
        {"resourceType": "Patient", "id": "x-p1", "meta": patient_meta,
         "name": [{"family": "Smith", "given": ["Ann"]}], "gender": "female", "birthDate": "1980-06-15",
         "active": True, "identifier": [{"system": NHS, "value": "9434765919", "type": {"coding": [
             {"system": "http://terminology.hl7.org/CodeSystem/v2-0203", "code": "NH"}]}}],
         "address": [{"city": "Leeds", "postalCode": "LS1 4AP", "line": ["1, The Row"]}],
         "telecom": [{"system": "email", "value": "ann@example.org"}],
         "managingOrganization": {"reference": "http://example.org/fhir/Organization/o1"},
         "link": [{"other": {"reference": "Patient/x-p2"}, "type": "seealso"}]},
        {"resourceType": "Patient", "id": "x-p2", "name": [{"family": "Smithson", "given": ["Bob"]}],
         "gender": "male", "birthDate": "1980", "active": False,
         "identifier": [{"system": "urn:mrn", "value": "9434765919"}]},
        {"resourceType": "Patient", "id": "x-p3", "name": [{"family": "Zoë Ñúñez-Smith"}],
         "gender": "other", "birthDate": "2001-02-03"},
        {"resourceType": "Patient", "id": "x-p4", "name": [{"family": "Jones"}]},
        {"resourceType": "Observation", "id": "x-o1", "status": "final", "code": code,
         "valueString": "Positive, confirmed $5 | done",
         "effectivePeriod": {"start": "2021-03-01T08:00:00Z", "end": "2021-03-05T08:00:00Z"}},
        {"resourceType": "Observation", "id": "x-o2", "status": "final", "code": code,
         "valueDateTime": "2021-03-04T10:30:00+01:00", "effectiveDateTime": "2021-03-04"},
        {"resourceType": "Observation", "id": "x-o3", "status": "amended", "code": code,
         "valuePeriod": {"start": "2020-01-01"}, "effectiveInstant": "2020-01-01T00:00:00.123Z"},
        {"resourceType": "Observation", "id": "x-o4", "status": "final", "code": code,
         "valueCodeableConcept": {"coding": [{"system": SNOMED, "code": "10828004"}], "text": "Positive"},
         "component": [
             {"code": {"coding": [{"system": LOINC, "code": "9-9"}]},
              "valueCodeableConcept": {"coding": [{"code": "local-x"}]}},
             {"code": {"coding": [{"system": LOINC, "code": "8-8"}]},
              "valueQuantity": {"value": 12, "unit": "widgets"}},
             {"code": {"coding": [{"system": LOINC, "code": "7-7"}]},
              "valueRange": {"low": {"value": 2.5, "system": UCUM, "code": "mg"},
                             "high": {"value": 4, "system": UCUM, "code": "mg"}}}]},
        {"resourceType": "Observation", "id": "x-o5", "status": "final", "code": code,
         "valueQuantity": {"value": 7.25, "unit": "mmol/L", "system": UCUM, "code": "mmol/L"}},
        {"resourceType": "Observation", "id": "x-o6", "status": "final", "code": code,
         "valueQuantity": {"value": -3.5, "unit": "Cel", "system": UCUM, "code": "Cel"}},
        {"resourceType": "Observation", "id": "x-o7", "status": "final", "code": code,
         "valueQuantity": {"value": 0, "unit": "Cel", "system": UCUM, "code": "Cel"}},
        {"resourceType": "RiskAssessment", "id": "x-r1", "status": "final",
         "subject": {"reference": "Patient/x-p1"},
         "prediction": [{"probabilityDecimal": 0.35},
                        {"probabilityRange": {"low": {"value": 10}, "high": {"value": 20}}}]},
        {"resourceType": "RiskAssessment", "id": "x-r2", "status": "final",
         "subject": {"reference": "Patient/x-p2"}, "prediction": [{"probabilityDecimal": 0.8}]},
        {"resourceType": "RiskAssessment", "id": "x-r3", "status": "final",
         "subject": {"reference": "Patient/x-p3"}, "prediction": [{"probabilityDecimal": 100}]},
        {"resourceType": "ChargeItem", "id": "x-c1", "status": "billable",
         "code": {"coding": [{"system": "urn:charges", "code": "A1"}]},
         "subject": {"reference": "Patient/x-p1"}, "factorOverride": 1.25},
        {"resourceType": "ValueSet", "id": "x-vs1", "status": "active", "version": "1.2",
         "url": "http://example.org/fhir/ValueSet/colours",
         "compose": {"include": [{"system": "http://example.org/fhir/CodeSystem/colours"}]}},
        {"resourceType": "ValueSet", "id": "x-vs2", "status": "draft",
         "url": "http://example.org/fhir/ValueSet/colours/extra",
         "compose": {"include": [{"system": "http://example.org/fhir/CodeSystem/shapes"}]}},
        {"resourceType": "ValueSet", "id": "x-vs3", "status": "active", "url": "urn:x"},
        {"resourceType": "CodeSystem", "id": "x-cs1", "status": "active", "content": "complete",
         "url": "http://example.org/fhir/CodeSystem/colours", "concept": [{"code": "red"}]},
        {"resourceType": "Questionnaire", "id": "x-q1", "status": "active",
         "url": "http://example.org/fhir/Questionnaire/intake",
         "useContext": [
             {"code": {"system": "http://terminology.hl7.org/CodeSystem/usage-context-type",
                       "code": "age"},
              "valueRange": {"low": {"value": 18, "system": UCUM, "code": "a"},
                             "high": {"value": 65, "system": UCUM, "code": "a"}}},
             {"code": {"system": "http://terminology.hl7.org/CodeSystem/usage-context-type",
                       "code": "focus"},
              "valueCodeableConcept": {"coding": [{"system": SNOMED, "code": "73211009"}]}}]},
        {"resourceType": "Group", "id": "x-g1", "type": "person", "actual": True,
         "characteristic": [
             {"code": {"coding": [{"system": "urn:c", "code": "smoker"}]}, "valueBoolean": True,
              "exclude": False},
             {"code": {"coding": [{"system": "urn:c", "code": "region"}]},
              "valueCodeableConcept": {"coding": [{"system": "urn:r", "code": "north"}]},
              "exclude": False}]},
        {"resourceType": "Location", "id": "x-l1", "name": "Leeds General",
         "position": {"latitude": 53.8008, "longitude": -1.5491}, "address": {"city": "Leeds"}},
        {"resourceType": "Encounter", "id": "x-e1", "status": "finished",
         "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "IMP"},
         "subject": {"reference": "Patient/x-p1"},
         "period": {"start": "2022-05-01T09:00:00Z", "end": "2022-05-03T17:30:00Z"},
         "length": {"value": 56.5, "unit": "h", "system": UCUM, "code": "h"}},
        {"resourceType": "Encounter", "id": "x-e2", "status": "in-progress",
         "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "AMB"},
         "subject": {"reference": "Patient/x-p2"}, "period": {"start": "2023-01-01T08:00:00+00:00"}},
        {"resourceType": "List", "id": "x-list", "status": "current", "mode": "working",
         "entry": [{"item": {"reference": "Patient/x-p1"}}, {"item": {"reference": "Patient/x-p3"}}]},
    ]


class Population:
    """The loaded system, and every stored resource as a matcher candidate, by type."""

    def __init__(self, system: Any, tenant: Any, ctx: SearchContext) -> None:
        self.system = system
        self.tenant = tenant
        self.ctx = ctx
        self.candidates: dict[str, list[Candidate]] = {}
        self.rows: dict[str, list[tuple[dict[str, Any], IndexRows]]] = {}

    async def sql_ids(self, plan: QueryPlan) -> set[tuple[str, str]]:
        page = await self.system.store.search(self.tenant, replace(plan, count=100_000, sort=(), includes=()))
        assert page.next_after is None
        return {(r.type, r.id) for r in page.matches}

    def memory(self, plan: QueryPlan, now_ms: int) -> tuple[set[tuple[str, str]], set[tuple[str, str]]]:
        """(accepted, unknown) candidates."""
        accepted, unknown = set(), set()
        types = plan.types or tuple(self.candidates)
        for type_ in types:
            for c in self.candidates.get(type_, ()):
                found = matches_candidate(plan, c, now_ms=now_ms)
                if found is None:
                    unknown.add((c.type, c.id))
                elif found:
                    accepted.add((c.type, c.id))
        return accepted, unknown

    def parse(self, types: tuple[str, ...], items: list[tuple[str, str]]) -> QueryPlan:
        return parse_search(types, items, self.ctx, count=100, max_count=1000, strict=True).plan


@pytest.fixture(scope="module")
async def population(definitions, tmp_path_factory) -> Population:
    root = tmp_path_factory.mktemp("match")
    generate(replace(DEMO, formats=frozenset({"ndjson"})), root / "gen")
    extras = root / "extras.ndjson"
    extras.write_bytes(b"\n".join(orjson.dumps(r) for r in _extras()))
    system = build_system(Settings(data_dir=root / "data", sqlite_synchronous="OFF"), definitions)
    tenant = await system.store.tenant("default")
    report = await load_paths(system.services, tenant, [root / "gen" / "ndjson", extras],
                              report_path=root / "rejected.ndjson")
    assert report.rejected == 0, (root / "rejected.ndjson").read_text()
    state = await system.services.search.of(tenant)
    ctx = SearchContext(state.registry, system.services.resource_types, "", system.services.expand)
    pop = Population(system, tenant, ctx)
    everything = await system.store.search(tenant, QueryPlan(types=(), count=100_000))
    for stored in everything.matches:
        resource = orjson.loads(stored.body)
        rows = state.indexer.index(resource)
        pop.candidates.setdefault(stored.type, []).append(Candidate.of(resource, rows, stored.updated_ms))
        pop.rows.setdefault(stored.type, []).append((resource, rows))
    yield pop
    await system.close()


# -- query generation ----------------------------------------------------------------------------
def esc(value: str) -> str:
    return (value.replace("\\", "\\\\").replace(",", "\\,").replace("|", "\\|")
            .replace("$", "\\$"))


PREFIXES = ("eq", "ne", "gt", "lt", "ge", "le", "sa", "eb", "ap")


def fmt_date(ms: int, precision: str) -> str | None:
    if ms <= NEG_INF or ms >= POS_INF:
        return None
    dt = datetime.fromtimestamp(ms / 1000, UTC)
    if precision == "year":
        return f"{dt.year:04d}"
    if precision == "month":
        return dt.strftime("%Y-%m")
    if precision == "day":
        return dt.strftime("%Y-%m-%d")
    if precision == "minute+1":
        return (dt + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M") + "+01:00"
    if precision == "ms":
        return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{dt.microsecond // 1000:03d}Z"
    return dt.strftime("%Y-%m-%dT%H:%M:%SZ")


DATE_PRECISIONS = ("year", "month", "day", "second", "minute+1", "ms")


def fmt_numbers(value: float) -> list[str]:
    if abs(value) > 1e300:
        return []
    out = {f"{value:g}", f"{value:.0f}", f"{value:.2f}", f"{value:.1e}"}
    return sorted(out)


def code_of(key: str) -> tuple[str, str]:
    """('code', modifier) of a parameter key: ``Patient.identifier:of-type`` -> identifier, of-type."""
    rest = key.split(".", 1)[1]
    code, _, modifier = rest.partition(":")
    return code, modifier


class Queries:
    """Generates (types, items) queries from the stored rows of one resource type."""

    def __init__(self, pop: Population, type_: str, rng: random.Random) -> None:
        self.pop = pop
        self.type = type_
        self.rng = rng
        self.registry = pop.ctx.registry

    def pick(self, rows: list[Any], n: int) -> list[Any]:
        return rows if len(rows) <= n else self.rng.sample(rows, n)

    def atoms(self, per_kind: int) -> Iterator[tuple[str, str]]:
        samples = self.pick(self.pop.rows[self.type], 8)
        for resource, rows in samples:
            yield "_id", esc(resource["id"])
            for row in self.pick(rows.tokens, per_kind):
                yield from self.token(row)
            for row in self.pick(rows.token_texts, per_kind):
                yield from self.token_text(row)
            for row in self.pick(rows.strings, per_kind):
                yield from self.string(row)
            for row in self.pick(rows.references, per_kind):
                yield from self.reference(row)
            for row in self.pick(rows.dates, per_kind):
                yield from self.date(row)
            for row in self.pick(rows.numbers, per_kind):
                yield from self.number(row)
            for row in self.pick(rows.quantities, per_kind):
                yield from self.quantity(row)
            for row in self.pick(rows.uris, per_kind):
                yield from self.uri(row)
            for row in self.pick(rows.composites, per_kind):
                yield from self.composite(row)
        yield from self.missing()

    def token(self, row: tuple[Any, ...]) -> Iterator[tuple[str, str]]:
        key, system, code, _ = row
        name, modifier = code_of(key)
        if modifier == "of-type":
            if code is not None:
                yield f"{name}:of-type", f"{system}|{esc(code)}"
            return
        if modifier == "identifier":
            if code is not None:
                yield f"{name}:identifier", f"{esc(system or '')}|{esc(code)}"
                yield f"{name}:identifier", esc(code)
            return
        if code is not None:
            yield name, esc(code)
            yield name, f"|{esc(code)}"
            yield f"{name}:not", esc(code)
            if system is not None:
                yield name, f"{esc(system)}|{esc(code)}"
        if system is not None:
            yield name, f"{esc(system)}|"

    def token_text(self, row: tuple[Any, ...]) -> Iterator[tuple[str, str]]:
        key, text = row
        name, _ = code_of(key)
        words = text.split()
        yield f"{name}:text", esc(text[: self.rng.randint(1, len(text))])
        if len(words) > 1:
            yield f"{name}:text", esc(self.rng.choice(words[1:]))

    def string(self, row: tuple[Any, ...]) -> Iterator[tuple[str, str]]:
        key, norm, exact, _ = row
        name, _ = code_of(key)
        if name == "phonetic":
            yield name, esc(exact)
            return
        yield name, esc(norm[: self.rng.randint(1, len(norm))])
        i = self.rng.randint(0, len(norm) - 1)
        yield f"{name}:contains", esc(norm[i : self.rng.randint(i + 1, len(norm))])
        yield f"{name}:exact", esc(exact)
        yield f"{name}:exact", esc(exact.lower())

    def reference(self, row: tuple[Any, ...]) -> Iterator[tuple[str, str]]:
        key, type_, id_, url, _ = row
        name, _ = code_of(key)
        if type_ and id_:
            yield name, esc(f"{type_}/{id_}")
            yield name, esc(id_)
            yield f"{name}:{type_}", esc(id_)
        if url:
            yield name, esc(url)

    def date(self, row: tuple[Any, ...]) -> Iterator[tuple[str, str]]:
        key, lo, hi, _ = row
        name, _ = code_of(key)
        for pivot in (lo, hi - 1, lo + self.rng.randint(-86_400_000 * 40, 86_400_000 * 40)):
            for precision in self.rng.sample(DATE_PRECISIONS, 2):
                text = fmt_date(pivot, precision)
                if text is not None:
                    yield name, self.rng.choice(PREFIXES) + esc(text)

    def number(self, row: tuple[Any, ...]) -> Iterator[tuple[str, str]]:
        key, lo, hi, _ = row
        name, _ = code_of(key)
        for value in (lo, hi, lo - 1, hi + 0.5):
            for text in self.pick(fmt_numbers(value), 2):
                yield name, self.rng.choice(PREFIXES) + text

    def quantity(self, row: tuple[Any, ...]) -> Iterator[tuple[str, str]]:
        key, system, code, lo, hi, _ = row
        name, _ = code_of(key)
        units = [""]
        if code is not None:
            units.append(f"||{esc(code)}")
            units.append(f"|{esc(system or '')}|{esc(code)}")
        for value in (lo, hi, lo * 1.05):
            for text in self.pick(fmt_numbers(value), 2):
                yield name, self.rng.choice(PREFIXES) + text + self.rng.choice(units)

    def uri(self, row: tuple[Any, ...]) -> Iterator[tuple[str, str]]:
        key, uri, _ = row
        name, _ = code_of(key)
        yield name, esc(uri)
        yield f"{name}:below", esc(uri[: self.rng.randint(1, len(uri))])
        yield f"{name}:above", esc(uri + "/more")
        yield f"{name}:above", esc(uri[: max(1, len(uri) - 3)])

    def composite(self, row: tuple[Any, ...]) -> Iterator[tuple[str, str]]:
        key = row[0]
        name, _ = code_of(key)
        param = self.registry.get(self.type, name)
        if param is None:
            return
        kinds = []
        for component in param.components:
            definition = self.registry.by_url(component.definition)
            kinds.append(definition.type if definition is not None else "")
        for _ in range(3):
            values = [self.component(kind, position, row) for position, kind in enumerate(kinds, 1)]
            if all(v is not None for v in values):
                yield name, "$".join(v for v in values if v is not None)

    def component(self, kind: str, position: int, row: tuple[Any, ...]) -> str | None:
        s, v = (row[1], row[2]) if position == 1 else (row[3], row[4])
        lo = row[5] if position == 2 else row[7]
        if kind in ("token", "reference", "uri", "string"):
            if v is None:
                return None
            if kind == "token" and s is not None and self.rng.random() < 0.5:
                return f"{esc(s)}|{esc(v)}"
            return esc(v)
        if lo is None:
            return None
        prefix = self.rng.choice(PREFIXES)
        if kind == "date":
            text = fmt_date(int(lo), self.rng.choice(DATE_PRECISIONS))
            return None if text is None else prefix + esc(text)
        numbers = fmt_numbers(lo)
        if not numbers:
            return None
        unit = ""
        if kind == "quantity" and v is not None and self.rng.random() < 0.6:
            unit = self.rng.choice([f"||{esc(v)}", f"|{esc(s or '')}|{esc(v)}"])
        return prefix + self.rng.choice(numbers) + unit

    def missing(self) -> Iterator[tuple[str, str]]:
        params = [p for p in self.registry.for_type(self.type)
                  if p.type not in ("special",) and not p.code.startswith("_")]
        for param in self.pick(params, 8):
            yield f"{param.code}:missing", self.rng.choice(("true", "false"))


def combined(atoms: list[tuple[str, str]], rng: random.Random, n: int) -> Iterator[list[tuple[str, str]]]:
    """ANDs of two or three atoms, and ORs of two values of one parameter (commas)."""
    by_name: dict[str, list[str]] = {}
    for name, value in atoms:
        by_name.setdefault(name, []).append(value)
    for _ in range(n):
        yield rng.sample(atoms, min(len(atoms), rng.randint(2, 3)))
        name = rng.choice(list(by_name))
        values = by_name[name]
        if len(values) > 1 and not name.endswith(":not"):
            yield [(name, ",".join(rng.sample(values, 2)))]


def kinds_of(pred: Predicate | None, out: Counter) -> None:
    if pred is None:
        return
    label = type(pred).__name__
    if isinstance(pred, (DateMatch,)) or hasattr(pred, "prefix"):
        label += ":" + pred.prefix
    if isinstance(pred, (StringMatch, UriMatch)):
        label += ":" + pred.mode
    if isinstance(pred, TokenMatch) and pred.system == "":
        label += ":no-system"
    out[label] += 1
    if isinstance(pred, (And, Or)):
        for p in pred.parts:
            kinds_of(p, out)
    elif isinstance(pred, Not):
        kinds_of(pred.part, out)
    elif isinstance(pred, CompositeMatch):
        for p in pred.parts:
            kinds_of(p, out)


async def check(pop: Population, types: tuple[str, ...], items: list[tuple[str, str]],
                seen: Counter, failures: list[str]) -> bool | None:
    """Compare one query; returns whether it matched anything (None when it did not parse)."""
    try:
        plan = pop.parse(types, items)
    except CareweaveError:
        seen["(not parsed)"] += 1
        return None
    kinds_of(plan.where, seen)
    now_ms = int(time.time() * 1000)
    sql = await pop.sql_ids(plan)
    accepted, unknown = pop.memory(plan, now_ms)
    if unknown and not needs_database(plan.where):
        failures.append(f"{types} {items}: undecided for {sorted(unknown)[:5]}")
    if accepted != sql:
        failures.append(f"{types} {items}: SQL only {sorted(sql - accepted)[:5]}, "
                        f"memory only {sorted(accepted - sql)[:5]}")
    return bool(sql)


TYPES = ("Observation", "Patient", "Encounter", "Condition", "Immunization", "MedicationRequest",
         "DiagnosticReport", "AllergyIntolerance", "Organization", "Practitioner", "PractitionerRole",
         "RiskAssessment", "ChargeItem", "ValueSet", "CodeSystem", "Questionnaire", "Group",
         "Location")


@pytest.mark.parametrize("type_", TYPES)
async def test_generated_queries_agree_with_sql(population, type_) -> None:
    rng = random.Random(f"match-{type_}")
    queries = Queries(population, type_, rng)
    atoms = list(dict.fromkeys(queries.atoms(per_kind=2)))
    atoms = queries.pick(atoms, 220)
    seen: Counter = Counter()
    failures: list[str] = []
    found = 0
    for items in [[a] for a in atoms] + list(combined(atoms, rng, 40)):
        found += bool(await check(population, (type_,), items, seen, failures))
    assert not failures, "\n".join(failures[:20])
    assert found >= len(atoms) // 4, seen  # the generated queries find things, not only nothing
    assert seen["(not parsed)"] < len(atoms) // 5, seen


async def test_every_predicate_kind_was_compared(population) -> None:
    """The generated queries over all types cover every kind, prefix and mode the matcher has."""
    seen: Counter = Counter()
    failures: list[str] = []
    for type_ in TYPES:
        rng = random.Random(f"match-{type_}")
        queries = Queries(population, type_, rng)
        atoms = queries.pick(list(dict.fromkeys(queries.atoms(per_kind=2))), 60)
        for items in [[a] for a in atoms] + list(combined(atoms, rng, 5)):
            await check(population, (type_,), items, seen, failures)
    assert not failures, "\n".join(failures[:20])
    wanted = {"IdIn", "TokenMatch", "TokenMatch:no-system", "TokenText", "Not", "Or", "And",
              "StringMatch:starts", "StringMatch:contains", "StringMatch:exact", "StringMatch:phonetic",
              "RefMatch", "UriMatch:exact", "UriMatch:below", "UriMatch:above", "Missing",
              "CompositeMatch"}
    wanted |= {f"{kind}:{p}" for kind in ("DateMatch", "NumberMatch", "QuantityMatch") for p in PREFIXES}
    assert wanted <= set(seen), sorted(wanted - set(seen))


HAND_WRITTEN: list[tuple[tuple[str, ...], str]] = [
    # from tests/search/test_types.py and test_more.py, on the hand-made resources
    (("Patient",), "family=smith"), (("Patient",), "family=zoe"), (("Patient",), "family=nunez"),
    (("Patient",), "family:exact=Smith"), (("Patient",), "family:contains=ITH"),
    (("Patient",), "family=jones,zoe"), (("Patient",), "family=smith&given=bob"),
    (("Patient",), f"identifier={NHS}|9434765919"), (("Patient",), "identifier=|9434765919"),
    (("Patient",), f"identifier={NHS}|"), (("Patient",), "gender:not=female,male"),
    (("Patient",), "identifier:of-type=http://terminology.hl7.org/CodeSystem/v2-0203|NH|9434765919"),
    (("Patient",), "gender:missing=true"), (("Patient",), "birthdate:missing=false"),
    (("Patient",), "gender:in=http://hl7.org/fhir/ValueSet/administrative-gender"),
    (("Patient",), "gender:not-in=http://hl7.org/fhir/ValueSet/administrative-gender"),
    (("Patient",), "_tag=urn:t|vip"), (("Patient",), "_security=R"),
    (("Patient",), "_profile=http://example.org/fhir/StructureDefinition/my-patient"),
    (("Patient",), "_source=urn:source:pas%2342"), (("Patient",), "_source:below=urn:source"),
    (("Patient",), "organization=http://example.org/fhir/Organization/o1"),
    (("Patient",), "link=Patient/x-p2"), (("Patient",), "address=1\\, the"),
    (("Observation",), "value-string=positive\\, conf"), (("Observation",), "value-string:exact=Positive"),
    (("Observation",), "code-value-string=1234-5$positive"),
    (("Observation",), "code-value-string=http://loinc.org|1234-5$positive\\, confirmed \\$5"),
    (("Observation",), "code-value-date=1234-5$2021-03-04"),
    (("Observation",), "code-value-date=1234-5$ge2021"), (("Observation",), "code-value-date=1234-5$ne2021"),
    (("Observation",), "code-value-concept=1234-5$http://snomed.info/sct|10828004"),
    (("Observation",), "component-code-value-concept=9-9$|local-x"),
    (("Observation",), "combo-code-value-quantity=7-7$ge3|http://unitsofmeasure.org|mg"),
    (("Observation",), "component-value-quantity=12||widgets"),
    (("Observation",), "value-quantity=lt0"), (("Observation",), "value-quantity=0"),
    (("Observation",), "value-quantity=ap-3.5|http://unitsofmeasure.org|Cel"),
    (("Observation",), "value-date=ge2020-06"), (("Observation",), "value-date=sa2019"),
    (("Observation",), "date=2021-03-04&date=le2021-03-05"), (("Observation",), "date=ap2021-03"),
    (("Observation",), "value-concept:text=posit"), (("Observation",), "status=amended,final"),
    (("RiskAssessment",), "probability=0.35"), (("RiskAssessment",), "probability=gt15"),
    (("RiskAssessment",), "probability=1e2"), (("RiskAssessment",), "probability=ne0.8"),
    (("ChargeItem",), "factor-override=1.25"), (("ChargeItem",), "factor-override=ap1.2"),
    (("ValueSet",), "url:below=http://example.org/fhir/ValueSet/colours"),
    (("ValueSet",), "url:above=http://example.org/fhir/ValueSet/colours/extra/v2"),
    (("ValueSet",), "reference=http://example.org/fhir/CodeSystem/colours"),
    (("ValueSet",), "url:above=urn:x:y"), (("ValueSet",), "url:above=urn"),
    (("Questionnaire",), "context-type-quantity=age$ge20"),
    (("Questionnaire",), "context-type-quantity=age$70"),
    (("Group",), "characteristic-value=smoker$true"), (("Group",), "characteristic-value=region$urn:r|north"),
    (("Encounter",), "date=2022-05-02"), (("Encounter",), "date=gt2030"),
    (("Encounter",), "date=eb2022-05-01"),
    (("Encounter",), "length=gt50|http://unitsofmeasure.org|h"),
    (("Patient", "Encounter"), "_id=x-p1,x-e1"), ((), "_type=Patient,Group&_id=x-p1,x-g1"),
    ((), "_tag=vip"), ((), "_security:not=R&_type=Patient"), ((), "_lastUpdated=gt2000-01-01&_type=Group"),
]


@pytest.mark.parametrize(("types", "query"), HAND_WRITTEN)
async def test_hand_written_queries_agree_with_sql(population, types, query) -> None:
    from urllib.parse import parse_qsl

    failures: list[str] = []
    seen: Counter = Counter()
    result = await check(population, types, parse_qsl(query, keep_blank_values=True), seen, failures)
    assert result is not None, f"{query} did not parse"
    assert not failures, failures


async def test_last_updated_agrees_with_sql(population) -> None:
    """_lastUpdated compares the resource row's update time, a point in milliseconds."""
    failures: list[str] = []
    seen: Counter = Counter()
    rng = random.Random("lastUpdated")
    stamps = sorted({c.updated_ms for cs in population.candidates.values() for c in cs})
    for pivot in [*rng.sample(stamps, 10), stamps[0], stamps[-1]]:
        for precision in ("second", "ms", "minute+1", "day"):
            for prefix in PREFIXES:
                text = fmt_date(pivot, precision)
                items = [("_lastUpdated", prefix + text), ("_type", "Patient,Observation,Group")]
                await check(population, (), items, seen, failures)
    assert not failures, "\n".join(failures[:20])


UNDECIDABLE_QUERIES = [
    ("Observation", "subject:Patient.family=smith"),
    ("Observation", "subject.gender=female&status=final"),
    ("Patient", "_has:Observation:patient:code=1234-5"),
    ("Patient", "_has:Observation:patient:code=1234-5,gender=male"),
    ("Patient", "_text=ann"), ("Patient", "_content=smith&gender=female"),
    ("Patient", "_list=x-list"), ("Location", "near=53.8|-1.55|10|km"),
    ("Patient", "gender=female&_has:RiskAssessment:subject:probability=gt0.3"),
]


@pytest.mark.parametrize(("type_", "query"), UNDECIDABLE_QUERIES)
async def test_undecidable_parts_are_unknown_never_wrong(population, type_, query) -> None:
    """Chains, _has, _list, _text, _content and near: the matcher says None, unless the rest of
    the plan decides alone; whatever it does decide agrees with SQL."""
    from urllib.parse import parse_qsl

    plan = population.parse((type_,), parse_qsl(query))
    assert needs_database(plan.where)
    sql = await population.sql_ids(plan)
    accepted, unknown = population.memory(plan, int(time.time() * 1000))
    assert accepted <= sql
    everything = {(c.type, c.id) for c in population.candidates[type_]}
    assert sql - accepted <= unknown
    assert unknown, "the undecidable part is reported as unknown"
    decided_false = everything - accepted - unknown
    assert not decided_false & sql


async def test_ref_in_agrees_with_sql(population) -> None:
    patients = sorted(c.id for c in population.candidates["Patient"])[:5]
    for ids in (tuple(patients), (), ("no-such",)):
        plan = QueryPlan(types=("Observation",), where=RefIn("Observation.subject", "Patient", ids))
        accepted, unknown = population.memory(plan, 0)
        assert not unknown
        assert accepted == await population.sql_ids(plan)


# -- unit properties ---------------------------------------------------------------------------
def _rows(resource: dict[str, Any], definitions) -> IndexRows:
    from careweave.search.indexer import Indexer

    return Indexer(definitions.search_params, definitions.engine, definitions.code_systems).index(resource)


def test_three_valued_logic(definitions) -> None:
    from careweave.search.plan import Chain

    patient = {"resourceType": "Patient", "id": "a", "gender": "female"}
    rows = _rows(patient, definitions)
    chain = Chain("Patient.organization", "Organization", TokenMatch("Organization.active", None, "true"))
    female = TokenMatch("Patient.gender", None, "female")
    male = TokenMatch("Patient.gender", None, "male")

    def m(where: Predicate) -> bool | None:
        return matches(QueryPlan(types=("Patient",), where=where), patient, rows)

    assert m(chain) is None
    assert m(And((male, chain))) is False
    assert m(And((female, chain))) is None
    assert m(Or((female, chain))) is True
    assert m(Or((male, chain))) is None
    assert m(Not(chain)) is None
    assert m(Not(And((male, chain)))) is True
    assert matches(QueryPlan(types=("Observation",), where=female), patient, rows) is False
    assert matches(QueryPlan(types=()), patient, rows) is True


def test_clock_and_update_time_are_inputs_never_read(definitions) -> None:
    from careweave.search.plan import LastUpdated

    patient = {"resourceType": "Patient", "id": "a", "birthDate": "2000-01-01"}
    rows = _rows(patient, definitions)
    ap = QueryPlan(types=("Patient",), where=DateMatch("Patient.birthdate", "ap", 946684800000,
                                                        946771200000))
    assert matches(ap, patient, rows) is None
    assert matches(ap, patient, rows, now_ms=946684800000) is True
    since = QueryPlan(types=("Patient",), where=LastUpdated("ge", 0, 1000))
    assert matches(since, patient, rows) is None  # no meta.lastUpdated: unknown
    stamped = {**patient, "meta": {"lastUpdated": "2024-01-01T00:00:00.000+00:00"}}
    assert matches(since, stamped, rows) is True
    assert matches(since, patient, rows, updated_ms=500) is True
    assert matches(replace(since, where=LastUpdated("lt", 0, 1000)), patient, rows, updated_ms=500) is False


def test_composite_component_without_a_column_is_unknown(definitions) -> None:
    obs = {"resourceType": "Observation", "id": "o", "status": "final",
           "code": {"coding": [{"system": LOINC, "code": "1-1"}]},
           "valueQuantity": {"value": 5, "system": UCUM, "code": "mg"}}
    rows = _rows(obs, definitions)
    date_first = CompositeMatch("Observation.code-value-quantity", (DateMatch("", "eq", 0, 1),))
    assert matches(QueryPlan(types=("Observation",), where=date_first), obs, rows) is None
    token_third = CompositeMatch("Observation.code-value-quantity",
                                 (TokenMatch("", None, "1-1"), TokenMatch("", None, "x"),
                                  TokenMatch("", None, "y")))
    assert matches(QueryPlan(types=("Observation",), where=token_third), obs, rows) is None
    assert matches(QueryPlan(types=("Observation",), where=IdIn(("o",))), obs, rows) is True
