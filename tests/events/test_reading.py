"""Reading topics (Basic-wrapped and SubscriptionTopic JSON), Subscriptions (backport profile and
classic R4) and their criteria.

Specs: https://hl7.org/fhir/uv/subscriptions-backport/ (v1.1.0: StructureDefinition-backport-subscription,
the R4 topic definitions on Basic), https://hl7.org/fhir/R4/subscription.html.
"""

from __future__ import annotations

import pytest

from careweave.errors import CareweaveError
from careweave.events.criteria import criteria_plan, query_plan, split_criteria
from careweave.events.subscription import CHANNEL_SYSTEM, read_subscription
from careweave.events.topic import INTERACTIONS, FilterBy, QueryCriteria, read_topic
from careweave.search.plan import And, Not, StringMatch, TokenMatch
from tests.events.conftest import (
    BACKPORT,
    DISCHARGE,
    discharge_topic_basic,
    discharge_topic_native,
    ext,
    subscription,
)


def test_basic_and_native_topics_read_the_same() -> None:
    basic, basic_issues = read_topic(discharge_topic_basic())
    native, native_issues = read_topic(discharge_topic_native())
    assert not [i for i in basic_issues + native_issues if i.is_error]
    assert basic is not None and native is not None
    assert basic.url == native.url == DISCHARGE
    assert basic.triggers == native.triggers
    trigger = basic.triggers[0]
    assert trigger.resource == "Encounter"
    assert trigger.interactions == frozenset({"create", "update"})
    assert trigger.query == QueryCriteria("status:not=finished", "status=finished", "test-passes",
                                          "test-fails", True)
    assert basic.can_filter_by[0] == FilterBy("patient", "Encounter")
    # R4B puts comparators in "modifier", R5 in "comparator": both are kept
    assert basic.can_filter_by[1].modifiers == ("ge", "le")
    assert native.can_filter_by[1].comparators == ("ge", "le")
    assert basic.shapes == native.shapes
    assert basic.status == native.status == "active"
    assert basic.resource_types == frozenset({"Encounter"})


def test_topic_defaults_and_refusals() -> None:
    topic, _ = read_topic({"resourceType": "SubscriptionTopic", "url": "urn:t",
                           "resourceTrigger": [{"resource": "Patient"}]})
    assert topic is not None
    assert topic.triggers[0].interactions == INTERACTIONS  # none listed: all of them
    assert topic.triggers[0].query is None
    for bad, text in [
        ({"resourceType": "Basic", "code": {"text": "x"}}, "not a SubscriptionTopic"),
        ({"resourceType": "SubscriptionTopic", "resourceTrigger": [{"resource": "Patient"}]}, "no url"),
        ({"resourceType": "SubscriptionTopic", "url": "urn:t"}, "no usable resourceTrigger"),
        ({"resourceType": "SubscriptionTopic", "url": "urn:t",
          "resourceTrigger": [{"resource": "Patient", "supportedInteraction": ["read"]}]}, "unknown"),
        ({"resourceType": "SubscriptionTopic", "url": "urn:t",
          "resourceTrigger": [{"resource": "http://example.org/not-a-type"}]}, "resource type"),
        ({"resourceType": "SubscriptionTopic", "url": "urn:t",
          "resourceTrigger": [{"resource": "Patient",
                               "queryCriteria": {"resultForCreate": "maybe"}}]}, "test-passes"),
    ]:
        topic, issues = read_topic(bad)
        assert topic is None, bad
        assert any(text in i.diagnostics for i in issues if i.is_error), (text, issues)


def test_event_triggers_are_reported_not_silently_dropped() -> None:
    topic, issues = read_topic({"resourceType": "SubscriptionTopic", "url": "urn:t",
                                "eventTrigger": [{"event": {"text": "A01"}, "resource": "Encounter"}],
                                "resourceTrigger": [{"resource": "Encounter"}]})
    assert topic is not None
    assert any(i.severity == "warning" and "eventTrigger" in i.diagnostics for i in issues)


def test_backport_subscription_is_read_in_full() -> None:
    resource = subscription(
        filters=("Encounter?patient=Patient/123", "Encounter?date=ge2024-01-01"),
        content="full-resource",
        headers=("Authorization: Bearer abc", "X-Trace:  t1 "),
        channel_extensions=(ext(BACKPORT + "backport-heartbeat-period", valueUnsignedInt=120),
                            ext(BACKPORT + "backport-timeout", valueUnsignedInt=30),
                            ext(BACKPORT + "backport-max-count", valuePositiveInt=20)),
    )
    spec, issues = read_subscription(resource)
    assert issues == []
    assert spec is not None and spec.topic_based
    assert spec.topic == DISCHARGE and spec.criteria is None
    assert spec.filters == ("Encounter?patient=Patient/123", "Encounter?date=ge2024-01-01")
    channel = spec.channel
    assert (channel.type, channel.endpoint, channel.payload, channel.content) == (
        "rest-hook", "https://receiver.example.org/hook", "application/fhir+json", "full-resource")
    assert channel.headers == (("Authorization", "Bearer abc"), ("X-Trace", "t1"))
    assert (channel.heartbeat_s, channel.timeout_s, channel.max_count) == (120, 30, 20)


def test_classic_criteria_and_payload_defaults() -> None:
    spec, issues = read_subscription(subscription(criteria="Observation?code=http://loinc.org|1234-5",
                                                  content=None))
    assert spec is not None and not spec.topic_based and issues == []
    assert spec.criteria == "Observation?code=http://loinc.org|1234-5"
    assert spec.channel.content == "full-resource"  # classic R4 with a payload sends the resource
    spec, issues = read_subscription(subscription(content=None))
    assert spec is not None and spec.channel.content == "id-only"
    assert [i.severity for i in issues] == ["warning"]  # the backport profile requires it


def test_custom_channel_type() -> None:
    spec, _ = read_subscription(subscription(channel_type="message", endpoint=None,
                                             custom_channel=(CHANNEL_SYSTEM, "nats")))
    assert spec is not None
    assert (spec.channel.type, spec.channel.custom_system) == ("nats", CHANNEL_SYSTEM)


@pytest.mark.parametrize(("change", "text"), [
    ({"status": "on"}, "status"),
    ({"criteria": ""}, "criteria is required"),
    ({"channel": None}, "channel is required"),
    ({"channel": {"type": "carrier-pigeon"}}, "unknown channel type"),
    ({"channel": {"type": "rest-hook", "endpoint": "ftp://x"}}, "http(s) endpoint"),
])
def test_subscription_refusals(change, text) -> None:
    spec, issues = read_subscription({**subscription(), **change})
    assert spec is None
    assert any(text in i.diagnostics for i in issues if i.is_error), issues


@pytest.mark.parametrize("header", [
    "no colon", "Bad Name: x", "X-Ok: a\r\nInjected: b", "Content-Type: text/plain",
    "Host: evil.example.org", "X-Careweave-Signature: t=1,v1=00", "Nats-Msg-Id: 1",
])
def test_channel_headers_cannot_inject_or_spoof(header) -> None:
    spec, issues = read_subscription(subscription(headers=(header,)))
    assert spec is None
    assert any("header" in i.diagnostics for i in issues)


def test_filter_criteria_on_classic_subscription_refused() -> None:
    resource = subscription(criteria="Encounter?status=finished", filters=("Encounter?patient=1",))
    spec, issues = read_subscription(resource)
    assert spec is None and any("topic-based" in i.diagnostics for i in issues)


def test_criteria_plans(search_ctx) -> None:
    parsed = criteria_plan("Patient?family=smith&gender:not=male", search_ctx)
    assert parsed.type == "Patient"
    assert parsed.items == (("family", "smith"), ("gender:not", "male"))
    assert parsed.plan.types == ("Patient",)
    assert parsed.plan.where == And((StringMatch("Patient.family", "smith", "starts"),
                                     Not(TokenMatch("Patient.gender", None, "male"))))
    # a base URL or slash before the type is dropped; percent-escapes are decoded
    assert criteria_plan("https://example.org/fhir/Patient?family=o%27brien", search_ctx).plan.where == \
        StringMatch("Patient.family", "o'brien", "starts")
    assert split_criteria("/Encounter?status=finished") == ("Encounter", "status=finished")
    assert query_plan("Encounter", "status:not=finished", search_ctx).where == \
        Not(TokenMatch("Encounter.status", None, "finished"))


@pytest.mark.parametrize(("criteria", "code"), [
    ("Patient?frobnicate=1", "CW-5001"),  # unknown: refused, never ignored
    ("Patient?family=smith&_sort=family", "CW-5001"),  # result parameters say nothing of matching
    ("Patient?birthdate=yesterday", "CW-5002"),
    ("patient?family=x", "CW-5002"),
    ("Unicorn?name=x", "CW-5002"),
])
def test_criteria_errors(search_ctx, criteria, code) -> None:
    with pytest.raises(CareweaveError) as raised:
        criteria_plan(criteria, search_ctx)
    assert raised.value.code == code
