"""Which changes notify which subscriptions: topic triggers (previous/current query criteria with
resultForCreate, resultForDelete and requireBoth; FHIRPath criteria), filters and canFilterBy,
classic criteria, and the questions asked of the database when memory cannot tell.

Spec: https://hl7.org/fhir/uv/subscriptions-backport/ (v1.1.0), R5 SubscriptionTopic.resourceTrigger
(https://hl7.org/fhir/R5/subscriptiontopic-definitions.html).
"""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from careweave.events.subscription import read_subscription
from careweave.events.topic import read_topic
from careweave.events.trigger import (
    ChangeEvent,
    CompiledSubscription,
    Verdict,
    Version,
    compile_subscription,
    compile_topic,
    decide,
)
from careweave.search.params import SearchContext
from tests.events.conftest import discharge_topic_basic, subscription

NOW = 1_735_000_000_000


def encounter(status: str, patient: str = "p1", id_: str = "e1", start: str = "2024-06-01") -> dict[str, Any]:
    return {"resourceType": "Encounter", "id": id_, "status": status,
            "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "IMP"},
            "subject": {"reference": f"Patient/{patient}"}, "period": {"start": start}}


def compiled(ctx: SearchContext, definitions, topic: dict[str, Any] | None = None,
             **sub: Any) -> CompiledSubscription:
    read, issues = read_topic(topic or discharge_topic_basic())
    assert read is not None, issues
    topic_c, issues = compile_topic(read, ctx, definitions.engine)
    assert topic_c is not None, issues
    spec, issues = read_subscription(subscription(**sub))
    assert spec is not None, issues
    found, issues = compile_subscription(spec, topic_c, ctx)
    assert found is not None, issues
    return found


def event(indexer, interaction: str, before: dict | None, after: dict | None) -> ChangeEvent:
    focus = after or before
    assert focus is not None

    def version(r: dict | None) -> Version | None:
        return None if r is None else Version(r, indexer.index(r))

    return ChangeEvent(focus["resourceType"], focus["id"], interaction, version(before), version(after))


@pytest.mark.parametrize(("interaction", "before", "after", "verdict"), [
    ("create", None, "finished", Verdict.NOTIFY),  # resultForCreate test-passes, current passes
    ("create", None, "in-progress", Verdict.SKIP),  # requireBoth: current fails
    ("update", "in-progress", "finished", Verdict.NOTIFY),
    ("update", "finished", "finished", Verdict.SKIP),  # was finished already: previous fails
    ("update", "finished", "in-progress", Verdict.SKIP),
    ("update", "planned", "arrived", Verdict.SKIP),
    ("delete", "finished", None, Verdict.SKIP),  # delete is not a supported interaction
])
def test_discharge_topic(search_ctx, definitions, indexer, interaction, before, after, verdict) -> None:
    sub = compiled(search_ctx, definitions)
    change = event(indexer, interaction, before and encounter(before), after and encounter(after))
    assert decide(change, sub, now_ms=NOW).verdict is verdict


def _topic(trigger: dict[str, Any], *filters: dict[str, Any]) -> dict[str, Any]:
    return {"resourceType": "SubscriptionTopic", "url": "urn:topic", "resourceTrigger": [trigger],
            "canFilterBy": list(filters)}


@pytest.mark.parametrize(("criteria", "interaction", "before", "after", "verdict"), [
    # without requireBoth one passing test is enough
    ({"previous": "status=planned", "current": "status=finished"}, "update", "planned", "arrived",
     Verdict.NOTIFY),
    ({"previous": "status=planned", "current": "status=finished"}, "update", "arrived", "finished",
     Verdict.NOTIFY),
    ({"previous": "status=planned", "current": "status=finished"}, "update", "arrived", "cancelled",
     Verdict.SKIP),
    # resultForDelete decides the current test when nothing is left
    ({"current": "status=finished", "resultForDelete": "test-passes"}, "delete", "arrived", None,
     Verdict.NOTIFY),
    ({"current": "status=finished"}, "delete", "finished", None, Verdict.SKIP),
    # resultForCreate absent: the previous test fails on a create
    ({"previous": "status=planned", "current": "status=finished", "requireBoth": True}, "create",
     None, "finished", Verdict.SKIP),
    ({}, "delete", "finished", None, Verdict.NOTIFY),  # no test at all: any change of the type
])
def test_query_criteria_semantics(search_ctx, definitions, indexer, criteria, interaction, before,
                                  after, verdict) -> None:
    topic = _topic({"resource": "Encounter", "queryCriteria": criteria})
    sub = compiled(search_ctx, definitions, topic, criteria="urn:topic")
    change = event(indexer, interaction, before and encounter(before), after and encounter(after))
    assert decide(change, sub, now_ms=NOW).verdict is verdict


def test_fhirpath_criteria(search_ctx, definitions, indexer) -> None:
    topic = _topic({"resource": "Encounter", "fhirPathCriteria":
                    "(%previous.empty() or %previous.status != 'finished') and %current.status = 'finished'"})
    sub = compiled(search_ctx, definitions, topic, criteria="urn:topic")
    assert decide(event(indexer, "update", encounter("arrived"), encounter("finished")), sub,
                  now_ms=NOW).verdict is Verdict.NOTIFY
    assert decide(event(indexer, "create", None, encounter("finished")), sub,
                  now_ms=NOW).verdict is Verdict.NOTIFY
    assert decide(event(indexer, "update", encounter("finished"), encounter("finished")), sub,
                  now_ms=NOW).verdict is Verdict.SKIP


def test_filters_narrow_to_one_patient(search_ctx, definitions, indexer) -> None:
    sub = compiled(search_ctx, definitions, filters=("Encounter?patient=Patient/p1",))
    mine = event(indexer, "update", encounter("arrived"), encounter("finished", patient="p1"))
    theirs = event(indexer, "update", encounter("arrived", patient="p2"), encounter("finished", patient="p2"))
    assert decide(mine, sub, now_ms=NOW).verdict is Verdict.NOTIFY
    assert decide(theirs, sub, now_ms=NOW).verdict is Verdict.SKIP
    other_type = event(indexer, "create", None, {"resourceType": "Patient", "id": "p1"})
    assert decide(other_type, sub, now_ms=NOW).verdict is Verdict.SKIP


def test_filters_are_checked_against_can_filter_by(search_ctx, definitions) -> None:
    topic_c, _ = compile_topic(read_topic(discharge_topic_basic())[0], search_ctx)
    for filters, text in [
        (("Encounter?status=finished",), "does not allow filtering on 'status'"),
        (("Encounter?date=gt2024",), "comparator"),  # only ge and le are allowed on date
        (("Encounter?date=2024",), "comparator"),  # plain is eq: not allowed either
        (("Observation?patient=Patient/p1",), "no trigger on Observation"),
        (("Encounter?patient.name=smith",), "cannot chain"),
        (("Encounter?frobnicate=1",), "frobnicate"),
    ]:
        spec, _ = read_subscription(subscription(filters=filters))
        found, issues = compile_subscription(spec, topic_c, search_ctx)
        assert found is None, filters
        assert any(text in i.diagnostics for i in issues), (filters, issues)
    spec, _ = read_subscription(subscription(filters=("Encounter?date=ge2024-01-01",)))
    assert compile_subscription(spec, topic_c, search_ctx)[0] is not None


def test_filters_that_need_the_database_are_refused(search_ctx, definitions) -> None:
    topic = _topic({"resource": "Encounter"})
    topic_c, _ = compile_topic(read_topic(topic)[0], search_ctx)
    chained = ("Encounter?subject:Patient.family=x",)
    spec, _ = read_subscription(subscription(criteria="urn:topic", filters=chained))
    found, issues = compile_subscription(spec, topic_c, search_ctx)
    assert found is None and any("cannot chain" in i.diagnostics for i in issues)


def test_topic_compile_errors(search_ctx, definitions) -> None:
    for trigger, text in [
        ({"resource": "Encounter", "queryCriteria": {"previous": "subject:Patient.family=x"}},
         "previous criteria must not chain"),
        ({"resource": "Encounter", "queryCriteria": {"current": "nonsense=1"}}, "nonsense"),
        ({"resource": "Encounter", "fhirPathCriteria": "%current.status = "}, "fhirPathCriteria"),
        ({"resource": "SubscriptionTopic"}, "not an R4 resource type"),
    ]:
        topic, _ = read_topic(_topic(trigger))
        found, issues = compile_topic(topic, search_ctx, definitions.engine)
        assert found is None and any(text in i.diagnostics for i in issues), (trigger, issues)
    topic, _ = read_topic(_topic({"resource": "Encounter", "fhirPathCriteria": "true"}))
    assert compile_topic(topic, search_ctx)[0] is None  # FHIRPath needs an engine


def test_unknown_topic_and_classic_criteria(search_ctx, definitions, indexer) -> None:
    spec, _ = read_subscription(subscription(criteria="urn:other-topic"))
    assert compile_subscription(spec, None, search_ctx)[0] is None
    spec, _ = read_subscription(subscription(criteria="Encounter?status=finished&patient=p1"))
    sub, issues = compile_subscription(spec, None, search_ctx)
    assert sub is not None and issues == [] and sub.resource_types == frozenset({"Encounter"})
    for interaction, before, after, verdict in [
        ("create", None, "finished", Verdict.NOTIFY),
        ("update", "finished", "arrived", Verdict.SKIP),
        ("delete", "finished", None, Verdict.SKIP),  # classic criteria: create and update only
    ]:
        change = event(indexer, interaction, before and encounter(before), after and encounter(after))
        assert decide(change, sub, now_ms=NOW).verdict is verdict
    spec, _ = read_subscription(subscription(criteria="Encounter?frobnicate=1"))
    assert compile_subscription(spec, None, search_ctx)[0] is None


def test_change_event_needs_a_known_interaction(indexer) -> None:
    with pytest.raises(ValueError):
        ChangeEvent("Encounter", "e1", "read", None, None)


@pytest.mark.anyio
async def test_the_database_answers_what_memory_cannot(system, client, search_ctx, definitions) -> None:
    """A classic subscription chaining to the patient: the decision asks a Check, the store answers
    it for the version just written, and the answer decides. This is the dispatcher's loop: the
    committed change log, the version before from vread, index rows from the tenant's indexer."""
    for resource in ({"resourceType": "Patient", "id": "p1", "name": [{"family": "Smith"}]},
                     {"resourceType": "Patient", "id": "p2", "name": [{"family": "Jones"}]},
                     encounter("arrived", "p1"), encounter("finished", "p1"),
                     encounter("finished", "p2", id_="e2")):
        r = await client.put(f"/fhir/{resource['resourceType']}/{resource['id']}", json=resource)
        assert r.status_code in (200, 201), r.text
    store = system.store
    tenant = await store.tenant("default")
    state = await system.services.search.of(tenant)
    criteria = "Encounter?status=finished&subject:Patient.family=smith"
    spec, _ = read_subscription(subscription(criteria=criteria))
    sub, issues = compile_subscription(spec, None, search_ctx)
    assert sub is not None, issues
    verdicts = {}
    for change in await store.changes(0, 100):
        if change.type != "Encounter":
            continue
        current = orjson.loads(change.body)
        before = None
        if change.version > 1:
            old = await store.vread(tenant, change.type, change.id, change.version - 1)
            before = Version(orjson.loads(old.body), state.indexer.index(orjson.loads(old.body)))
        interaction = "create" if change.version == 1 else "update"
        evt = ChangeEvent(change.type, change.id, interaction, before,
                          Version(current, state.indexer.index(current), change.updated_ms))
        decision = decide(evt, sub, now_ms=NOW)
        if decision.verdict is Verdict.ASK:
            answers = {}
            for check in decision.checks:
                assert check.plan.types == ("Encounter",)
                page = await store.search(tenant, check.plan)
                versions = [orjson.loads(m.body)["meta"]["versionId"] for m in page.matches]
                assert versions in ([], [str(change.version)])  # still the event's version
                answers[check.key] = bool(page.matches)
            decision = decide(evt, sub, now_ms=NOW, answers=answers)
        verdicts[(change.id, change.version)] = decision.verdict
    assert verdicts == {("e1", 1): Verdict.SKIP, ("e1", 2): Verdict.NOTIFY, ("e2", 1): Verdict.SKIP}
