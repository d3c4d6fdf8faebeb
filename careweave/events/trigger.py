"""Which changes a subscription hears about: topics and subscriptions compiled, then one pure decision.

Rules (subscriptions-backport IG v1.1.0, R5 SubscriptionTopic.resourceTrigger semantics):
1. A change triggers a topic when, for some trigger on the changed resource's type, all of these
   hold: the interaction is one the trigger supports; its query criteria pass (below); its
   FHIRPath criteria (``%previous`` and ``%current`` bound, evaluated on the current version, or
   the previous one for a deletion) give ``true``.
2. Query criteria: ``previous`` is tested on the version before the change (no version before:
   ``resultForCreate``), ``current`` on the version after (none: ``resultForDelete``). With
   ``requireBoth`` both tests must pass, otherwise one is enough; a test the topic does not give
   is not made; with no test at all the criteria pass.
3. Then the subscription's filters for that type (``Type?query``, ANDed) must hold, on the current
   version (the previous one for a deletion).
4. Everything is decided in memory with :mod:`careweave.search.match`. What it cannot tell is
   asked of the database, which can only judge the *current* version (its index holds current
   versions): so ``previous`` criteria and filters must be decidable in memory (compiling refuses
   them otherwise), and only ``current`` criteria and classic R4 criteria may need a
   :class:`Check`. Answers are passed back to :func:`decide` by check key.
5. A classic R4 subscription (``criteria = Type?query``) is a topic of one trigger on that type,
   for create and update, whose ``current`` test is the query.
6. Results combine with three-valued logic (see :mod:`careweave.search.match`): an unknown part
   that cannot change the outcome is not asked.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from careweave.errors import CareweaveError, Issue
from careweave.events.criteria import criteria_plan, query_plan
from careweave.events.filters import check_filter_by
from careweave.events.subscription import SubscriptionSpec
from careweave.events.topic import INTERACTIONS, QueryCriteria, ResourceTrigger, Topic
from careweave.fhir.fhirpath import Expression, FhirPathEngine, FhirPathError
from careweave.search.index import IndexRows
from careweave.search.match import Candidate, matches_candidate, needs_database
from careweave.search.params import SearchContext
from careweave.search.plan import And, IdIn, QueryPlan

__all__ = [
    "ChangeEvent",
    "Check",
    "CompiledSubscription",
    "CompiledTopic",
    "CompiledTrigger",
    "Decision",
    "Verdict",
    "Version",
    "classic_topic",
    "compile_subscription",
    "compile_topic",
    "decide",
]

Truth = bool | None


@dataclass(frozen=True, slots=True)
class CompiledTrigger:
    resource: str
    interactions: frozenset[str]
    previous: QueryPlan | None = None
    current: QueryPlan | None = None
    result_for_create: bool = False
    result_for_delete: bool = False
    require_both: bool = False
    fhirpath: Expression | None = None


@dataclass(frozen=True, slots=True)
class CompiledTopic:
    url: str | None  # None for the implicit topic of classic criteria (rule 5)
    triggers: tuple[CompiledTrigger, ...]
    topic: Topic | None = None

    @property
    def resource_types(self) -> frozenset[str]:
        return frozenset(t.resource for t in self.triggers)


@dataclass(frozen=True, slots=True)
class CompiledSubscription:
    """A subscription ready for :func:`decide`. ``resource_types``: the only types whose changes
    can trigger it (a dispatcher indexes subscriptions by them)."""

    spec: SubscriptionSpec
    topic: CompiledTopic
    filters: Mapping[str, QueryPlan] = field(default_factory=dict)

    @property
    def resource_types(self) -> frozenset[str]:
        return self.topic.resource_types


# -- compiling ----------------------------------------------------------------------------------
def _error(text: str, where: str = "") -> Issue:
    return Issue("error", "invalid", text, (where,) if where else (), "CW-6001")


def compile_topic(
    topic: Topic, ctx: SearchContext, engine: FhirPathEngine | None = None
) -> tuple[CompiledTopic | None, list[Issue]]:
    """Parse every trigger's criteria (rule 4: ``previous`` must be decidable in memory).
    FHIRPath criteria need ``engine``; without one they are refused."""
    issues: list[Issue] = []
    triggers = []
    for i, trigger in enumerate(topic.triggers):
        compiled = _compile_trigger(trigger, f"resourceTrigger[{i}]", ctx, engine, issues)
        if compiled is not None:
            triggers.append(compiled)
    if any(i.is_error for i in issues):
        return None, issues
    return CompiledTopic(topic.url, tuple(triggers), topic), issues


def _compile_trigger(
    trigger: ResourceTrigger,
    where: str,
    ctx: SearchContext,
    engine: FhirPathEngine | None,
    issues: list[Issue],
) -> CompiledTrigger | None:
    if trigger.resource not in ctx.resource_types:
        issues.append(_error(f"{where}: {trigger.resource} is not an R4 resource type", where))
        return None
    query = trigger.query or QueryCriteria()
    previous = _query(trigger.resource, query.previous, f"{where}.queryCriteria.previous", ctx, issues)
    current = _query(trigger.resource, query.current, f"{where}.queryCriteria.current", ctx, issues)
    if previous is not None and needs_database(previous.where):
        text = "previous criteria must not chain, use _has, _list, _text, _content or near"
        issues.append(_error(f"{where}: {text}", where))
    expression = None
    if trigger.fhirpath:
        if engine is None:
            issues.append(_error(f"{where}: fhirPathCriteria are not supported here", where))
        else:
            try:
                expression = engine.compile(trigger.fhirpath)
            except FhirPathError as exc:
                issues.append(_error(f"{where}.fhirPathCriteria: {exc}", where))
    return CompiledTrigger(
        resource=trigger.resource,
        interactions=trigger.interactions,
        previous=previous,
        current=current,
        result_for_create=query.result_for_create == "test-passes",
        result_for_delete=query.result_for_delete == "test-passes",
        require_both=query.require_both,
        fhirpath=expression,
    )


def _query(
    type_: str, text: str | None, where: str, ctx: SearchContext, issues: list[Issue]
) -> QueryPlan | None:
    if not text:
        return None
    try:
        return query_plan(type_, text, ctx)
    except CareweaveError as exc:
        issues.append(_error(f"{where}: {exc.diagnostics or exc.meaning}", where))
        return None


def classic_topic(criteria: str, ctx: SearchContext) -> CompiledTopic:
    """Rule 5. Raises CW-5001/CW-5002 for criteria that do not parse."""
    parsed = criteria_plan(criteria, ctx)
    trigger = CompiledTrigger(parsed.type, frozenset({"create", "update"}), current=parsed.plan)
    return CompiledTopic(None, (trigger,))


def compile_subscription(
    spec: SubscriptionSpec, topic: CompiledTopic | None, ctx: SearchContext
) -> tuple[CompiledSubscription | None, list[Issue]]:
    """Bind a subscription to its compiled topic (None for classic criteria) and parse its filters,
    which must name a trigger type, pass the topic's ``canFilterBy`` and be decidable in memory."""
    issues: list[Issue] = []
    if spec.criteria is not None:
        try:
            return CompiledSubscription(spec, classic_topic(spec.criteria, ctx)), issues
        except CareweaveError as exc:
            return None, [_error(f"criteria: {exc.diagnostics or exc.meaning}", "Subscription.criteria")]
    if topic is None or topic.url != spec.topic:
        return None, [_error(f"unknown topic {spec.topic}", "Subscription.criteria")]
    by_type: dict[str, list[QueryPlan]] = {}
    for text in spec.filters:
        plan = _filter(text, topic, ctx, issues)
        if plan is not None and plan.where is not None:
            by_type.setdefault(plan.types[0], []).append(plan)
    if any(i.is_error for i in issues):
        return None, issues
    filters = {t: _and_plans(t, plans) for t, plans in by_type.items()}
    return CompiledSubscription(spec, topic, filters), issues


def _and_plans(type_: str, plans: Sequence[QueryPlan]) -> QueryPlan:
    parts = tuple(p.where for p in plans if p.where is not None)
    return QueryPlan(types=(type_,), where=parts[0] if len(parts) == 1 else And(parts))


def _filter(text: str, topic: CompiledTopic, ctx: SearchContext, issues: list[Issue]) -> QueryPlan | None:
    where = "Subscription.criteria.extension"
    try:
        parsed = criteria_plan(text, ctx)
    except CareweaveError as exc:
        issues.append(_error(f"filter {text!r}: {exc.diagnostics or exc.meaning}", where))
        return None
    if parsed.type not in topic.resource_types:
        issues.append(_error(f"filter {text!r}: the topic has no trigger on {parsed.type}", where))
        return None
    if needs_database(parsed.plan.where):
        issues.append(_error(f"filter {text!r}: filters cannot chain, use _has, _list or _text", where))
        return None
    if topic.topic is not None:
        issues.extend(check_filter_by(topic.topic, parsed.type, parsed.items, text, ctx))
    return parsed.plan


# -- deciding -----------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Version:
    """One version of the changed resource, with its index rows (``Indexer.index`` of it). Its
    matcher :class:`~careweave.search.match.Candidate` is built once, here: decide one event for
    every subscription with the same :class:`ChangeEvent`."""

    resource: Mapping[str, Any]
    rows: IndexRows
    updated_ms: int | None = None
    candidate: Candidate = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "candidate", Candidate.of(self.resource, self.rows, self.updated_ms))


@dataclass(frozen=True, slots=True)
class ChangeEvent:
    """A committed change: ``interaction`` create, update or delete; ``previous`` is the version
    before it (None for a create), ``current`` the version it stored (None for a delete)."""

    type: str
    id: str
    interaction: str
    previous: Version | None
    current: Version | None

    def __post_init__(self) -> None:
        if self.interaction not in INTERACTIONS:
            raise ValueError(f"interaction must be one of {sorted(INTERACTIONS)}")


class Verdict(enum.Enum):
    NOTIFY = "notify"
    SKIP = "skip"
    ASK = "ask"  # the database must answer the checks first


@dataclass(frozen=True, slots=True)
class Check:
    """An undecided criterion: does the stored current version of the changed resource match
    ``plan`` (which already restricts to its type and id)? Answer it with ``Store.search`` while the
    stored version is still the event's version (compare ``meta.versionId``), and pass the
    answer to :func:`decide` as ``answers[key]``."""

    key: str
    plan: QueryPlan


@dataclass(frozen=True, slots=True)
class Decision:
    verdict: Verdict
    checks: tuple[Check, ...] = ()
    reason: str = ""


class _Context:
    """One decision's inputs."""

    def __init__(self, event: ChangeEvent, now_ms: int, answers: Mapping[str, bool]) -> None:
        self.event = event
        self.now_ms = now_ms
        self.answers = answers
        self.previous = event.previous.candidate if event.previous is not None else None
        self.current = event.current.candidate if event.current is not None else None
        self.checks: list[Check] = []

    def test(self, key: str, plan: QueryPlan, candidate: Candidate, askable: bool) -> Truth:
        if key in self.answers:
            return self.answers[key]
        found = matches_candidate(plan, candidate, now_ms=self.now_ms)
        if found is None and askable:
            where = plan.where
            narrowed = IdIn((self.event.id,)) if where is None else And((IdIn((self.event.id,)), where))
            self.checks.append(Check(key, replace(plan, types=(self.event.type,), where=narrowed)))
        return found


def decide(
    event: ChangeEvent,
    subscription: CompiledSubscription,
    *,
    now_ms: int,
    answers: Mapping[str, bool] | None = None,
) -> Decision:
    """Whether ``event`` triggers ``subscription`` (rules 1-6). Pure: ``now_ms`` is the clock for
    ``ap`` searches; the subscription's status and end are the caller's to check."""
    ctx = _Context(event, now_ms, answers or {})
    triggers = [(i, t) for i, t in enumerate(subscription.topic.triggers) if t.resource == event.type]
    if not triggers:
        return Decision(Verdict.SKIP, reason=f"the topic has no trigger on {event.type}")
    fired = _any([_trigger(ctx, i, t) for i, t in triggers])
    if fired is False:
        return Decision(Verdict.SKIP, reason="no trigger of the topic fired")
    result: Truth = fired
    plan = subscription.filters.get(event.type)
    if plan is not None:
        focus = ctx.current or ctx.previous
        askable = ctx.current is not None
        passed = ctx.test("filter", plan, focus, askable=askable) if focus is not None else False
        if passed is False:
            return Decision(Verdict.SKIP, reason="the subscription's filters do not match")
        result = _all([result, passed])
    if result is True:
        return Decision(Verdict.NOTIFY, reason="triggered")
    if not ctx.checks:  # unknown, and nothing the database could answer (e.g. no update time)
        return Decision(Verdict.SKIP, reason="the criteria could not be decided for this change")
    return Decision(Verdict.ASK, tuple(ctx.checks), "the database must answer the checks")


def _trigger(ctx: _Context, index: int, trigger: CompiledTrigger) -> Truth:
    if ctx.event.interaction not in trigger.interactions:
        return False
    tests: list[Truth] = []
    if trigger.previous is not None:
        if ctx.previous is None:
            tests.append(trigger.result_for_create)
        else:
            tests.append(ctx.test(f"trigger{index}.previous", trigger.previous, ctx.previous, askable=False))
    if trigger.current is not None:
        if ctx.current is None:
            tests.append(trigger.result_for_delete)
        else:
            tests.append(ctx.test(f"trigger{index}.current", trigger.current, ctx.current, askable=True))
    query: Truth = True
    if tests:
        query = _all(tests) if trigger.require_both else _any(tests)
    if query is False or trigger.fhirpath is None:
        return query
    return _all([query, _fhirpath(ctx.event, trigger.fhirpath)])


def _fhirpath(event: ChangeEvent, expression: Expression) -> bool:
    previous = event.previous.resource if event.previous is not None else None
    current = event.current.resource if event.current is not None else None
    focus = current if current is not None else previous
    variables = {"previous": [previous] if previous else [], "current": [current] if current else []}
    try:
        return expression.evaluate(dict(focus or {}), variables=variables) == [True]
    except FhirPathError:
        return False


def _all(values: Sequence[Truth]) -> Truth:
    if False in values:
        return False
    return None if None in values else True


def _any(values: Sequence[Truth]) -> Truth:
    if True in values:
        return True
    return None if None in values else False
