"""Invariants: https://hl7.org/fhir/R4/conformance-rules.html#constraints, evaluated through the
FHIRPath engine interface; natively checked keys never reach the engine."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import pytest

from careweave.fhir.elements import ElementModel
from careweave.fhir.validation import Terminology, Validator
from careweave.fhir.validation.invariants import NATIVE_KEYS, holds

from .fhirpathpy_engine import FhirpathpyEngine
from .samples import OBSERVATION, located, observation, patient


@dataclass
class _Compiled:
    expression: str
    engine: FakeEngine

    def evaluate(
        self, resource: Any, context: Any = None, variables: Mapping[str, Any] | None = None
    ) -> list[Any]:
        self.engine.calls.append((self.expression, context, dict(variables or {})))
        outcome = self.engine.outcomes.get(self.expression, [True])
        if isinstance(outcome, Exception):
            raise outcome
        return outcome


@dataclass
class FakeEngine:
    outcomes: dict[str, Any] = field(default_factory=dict)
    uncompilable: set[str] = field(default_factory=set)
    calls: list[tuple[str, Any, dict[str, Any]]] = field(default_factory=list)
    compiled: list[str] = field(default_factory=list)

    def compile(self, expression: str) -> _Compiled:
        if expression in self.uncompilable:
            raise SyntaxError("unsupported function")
        self.compiled.append(expression)
        return _Compiled(expression, self)


def _expression(model: ElementModel, where: str, key: str) -> str:
    element = model.element(where)
    constraints = element.constraints if element else model.types[where].constraints
    return next(c.expression for c in constraints if c.key == key and c.expression)


@pytest.mark.parametrize(
    ("result", "ok"), [([True], True), ([], True), ([False], False), (["x"], True), ([False, False], True)]
)
def test_holds(result: list[Any], ok: bool) -> None:
    assert holds(result) is ok


def test_failed_invariant_becomes_an_issue(model: ElementModel, terminology: Terminology) -> None:
    pat_1 = _expression(model, "Patient.contact", "pat-1")
    engine = FakeEngine(outcomes={pat_1: [False]})
    validator = Validator(model, terminology, fhirpath=engine)
    contact = {"gender": "male"}
    issues = validator.validate(patient(contact=[{"name": {"family": "A"}}, contact]))
    assert located(issues) == {
        ("error", "invariant", "Patient.contact[0]"),
        ("error", "invariant", "Patient.contact[1]"),
    }
    assert {i.details for i in issues} == {"pat-1"}
    calls = [c for c in engine.calls if c[0] == pat_1]
    assert [c[1] for c in calls] == [{"name": {"family": "A"}}, contact]  # the node is the context
    assert calls[0][2]["resource"]["resourceType"] == "Patient"


def test_invariants_only_where_the_element_is_present(model: ElementModel, terminology: Terminology) -> None:
    engine = FakeEngine()
    Validator(model, terminology, fhirpath=engine).validate(patient(contact=None))
    pat_1 = _expression(model, "Patient.contact", "pat-1")
    assert pat_1 not in [c[0] for c in engine.calls]


def test_native_keys_never_reach_the_engine(model: ElementModel, terminology: Terminology) -> None:
    engine = FakeEngine()
    Validator(model, terminology, fhirpath=engine)
    native = {c.expression for t in model.types.values() for c in t.constraints if c.key in NATIVE_KEYS}
    assert native and not native & set(engine.compiled)


def test_warning_severity_and_type_level_invariants(model: ElementModel, terminology: Terminology) -> None:
    per_1 = _expression(model, "Period", "per-1")
    engine = FakeEngine(outcomes={per_1: [False]})
    validator = Validator(model, terminology, fhirpath=engine)
    resource = observation(
        valueQuantity=None,
        effectiveDateTime=None,
        effectivePeriod={"start": "2024-02-01", "end": "2024-01-01"},
    )
    issues = validator.validate(resource)
    assert located(issues) == {("error", "invariant", "Observation.effective.ofType(Period)")}
    assert issues[0].details == "per-1"


def test_uncompilable_invariant_is_skipped(model: ElementModel, terminology: Terminology) -> None:
    pat_1 = _expression(model, "Patient.contact", "pat-1")
    validator = Validator(model, terminology, fhirpath=FakeEngine(uncompilable={pat_1}))
    assert [(s.key, s.where) for s in validator.skipped_invariants] == [("pat-1", "Patient.contact")]
    assert validator.validate(patient(contact=[{"gender": "male"}])) == []


def test_engine_failure_does_not_fail_the_resource(model: ElementModel, terminology: Terminology) -> None:
    pat_1 = _expression(model, "Patient.contact", "pat-1")
    engine = FakeEngine(outcomes={pat_1: RecursionError("deep")})
    issues = Validator(model, terminology, fhirpath=engine).validate(patient(contact=[{"gender": "male"}]))
    assert located(issues) == {("information", "not-supported", "Patient.contact[0]")}


def test_without_an_engine_every_fhirpath_invariant_is_unevaluated(validator: Validator) -> None:
    assert validator.skipped_invariants == ()
    assert validator.validate(patient(contact=[{"gender": "male"}])) == []


@pytest.fixture(scope="module")
def real(model: ElementModel, terminology: Terminology) -> Validator:
    return Validator(model, terminology, fhirpath=FhirpathpyEngine())


CASES = [
    ("pat-1", patient(contact=[{"gender": "male"}]), "Patient.contact[0]"),
    ("obs-3", observation(referenceRange=[{"age": {"low": {"value": 1}}}]), "Observation.referenceRange[0]"),
    ("obs-6", observation(dataAbsentReason={"text": "x"}), "Observation"),
    ("cpt-2", patient(telecom=[{"value": "0123"}]), "Patient.telecom[0]"),
    ("qty-3", observation(valueQuantity={"value": 1, "code": "kg"}), "Observation.value.ofType(Quantity)"),
    ("att-1", patient(photo=[{"data": "aGVsbG8="}]), "Patient.photo[0]"),
]


@pytest.mark.parametrize(("key", "resource", "where"), CASES, ids=[c[0] for c in CASES])
def test_real_invariants(real: Validator, key: str, resource: dict[str, Any], where: str) -> None:
    failed = [(i.details, i.expression[0]) for i in real.validate(resource) if i.code == "invariant"]
    assert failed == [(key, where)]


def test_real_engine_accepts_the_valid_samples(real: Validator) -> None:
    assert real.validate(OBSERVATION) == []
    assert real.validate(patient()) == []


@pytest.fixture(scope="module")
def engine_validator(model: ElementModel, terminology: Terminology) -> Validator:
    fhirpath = pytest.importorskip("careweave.fhir.fhirpath")
    return Validator(model, terminology, fhirpath=fhirpath.FhirPathEngine(model))


def test_careweave_engine_compiles_every_base_invariant(engine_validator: Validator) -> None:
    assert engine_validator.skipped_invariants == ()


REAL_CASES = [
    *CASES,
    (
        "per-1",
        observation(effectiveDateTime=None, effectivePeriod={"start": "2024-02-01", "end": "2024-01-01"}),
        "Observation.effective.ofType(Period)",
    ),
]


@pytest.mark.parametrize(("key", "resource", "where"), REAL_CASES, ids=[c[0] for c in REAL_CASES])
def test_careweave_engine_invariants(
    engine_validator: Validator, key: str, resource: dict[str, Any], where: str
) -> None:
    failed = [
        (i.details, i.expression[0]) for i in engine_validator.validate(resource) if i.code == "invariant"
    ]
    assert failed == [(key, where)]


def test_careweave_engine_on_the_packaged_corpus(engine_validator: Validator) -> None:
    from careweave.fhir import definitions

    corpus = (
        definitions.resources_of("profiles-resources")[::7]
        + definitions.resources_of("valuesets")[::25]
        + definitions.resources_of("search-parameters")[::50]
    )
    bad = [
        (r.get("id"), i.diagnostics)
        for r in corpus
        for i in engine_validator.validate(r)
        if i.severity in ("error", "information") and r.get("id") != "SubscriptionStatus"
    ]
    assert bad == []


def test_resource_nodes_built_once_find_what_bare_resources_find(
    engine_validator: Validator, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The typed nodes of a resource (the root, %resource, %rootResource) are built once per
    resource and shared by all its invariants; giving every invariant the bare resource instead (as
    the engine would then type it itself) finds exactly the same issues."""
    from careweave.fhir import definitions, ukcore
    from careweave.fhir.validation import walk

    obs_7 = observation(component=[{"code": OBSERVATION["code"], "valueQuantity": {"value": 1}}])
    contained = {
        "resourceType": "DiagnosticReport",
        "id": "r1",
        "status": "final",
        "code": {"text": "panel"},
        "result": [{"reference": "#o1"}],
        "contained": [
            {**observation(dataAbsentReason={"text": "x"}, text=None), "id": "o1"},
            {**observation(text=None, effectiveDateTime=None,
                           effectivePeriod={"start": "2024-02-01", "end": "2024-01-01"}), "id": "o2"},
        ],
    }
    cases = [
        *(resource for _, resource, _ in REAL_CASES),
        obs_7,
        contained,
        *ukcore.load_examples(),
        *definitions.resources_of("profiles-resources")[::11],
    ]
    shared = [engine_validator.validate(r) for r in cases]
    assert sum(1 for issues in shared for i in issues if i.code == "invariant") >= len(REAL_CASES) + 3
    monkeypatch.setattr(walk, "_resource_nodes", lambda *args: ())
    assert [engine_validator.validate(r) for r in cases] == shared
