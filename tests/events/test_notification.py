"""Notification Bundles as the backport IG specifies for R4, each one valid R4 by careweave's
validator (structure, cardinality, the Bundle invariants bdl-1..bdl-9 included).

Spec: https://hl7.org/fhir/uv/subscriptions-backport/ (v1.1.0): notifications.html, payloads.html,
StructureDefinition-backport-subscription-status-r4, StructureDefinition-backport-subscription-
notification-r4.
"""

from __future__ import annotations

import itertools

import orjson
import pytest

from careweave.events.notification import (
    NOTIFICATION_PROFILE,
    STATUS_PROFILE,
    ContextItem,
    EventInfo,
    ResourceRef,
    StatusInfo,
    notification_bundle,
    render_json,
)
from careweave.events.numbering import event_numbers, events_since_start
from tests.events.conftest import BASE, DISCHARGE

BUNDLE_ID = "6f1c7a0e-2b4d-4c1e-9f5a-0d1e2f3a4b5c"
T0 = 1_717_243_200_000  # 2024-06-01T12:00:00Z
PATIENT = {"resourceType": "Patient", "id": "p1", "meta": {"versionId": "4"}, "name": [{"family": "Smith"}]}


def _encounter(n: int, status: str = "finished") -> dict:
    return {"resourceType": "Encounter", "id": f"e{n}", "meta": {"versionId": "2"}, "status": status,
            "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "IMP"},
            "subject": {"reference": "Patient/p1"}}


def _events(interactions: tuple[str, ...], with_context: bool) -> list[EventInfo]:
    out = []
    for n, interaction in enumerate(interactions, start=7):
        context = (ContextItem(ResourceRef("Patient", "p1", 4), PATIENT),) if with_context else ()
        out.append(EventInfo(n, T0 + n, ResourceRef("Encounter", f"e{n}", 2), interaction,
                             None if interaction == "delete" else _encounter(n), context))
    return out


def _status(type_: str, since: int | None = 8, status: str = "active") -> StatusInfo:
    return StatusInfo("sub-1", status, type_, DISCHARGE, since)


def _errors(definitions, resource: dict) -> list:
    return [i for i in definitions.validator.validate(resource) if i.is_error]


CASES = [
    (type_, content, interactions, context)
    for type_, content in itertools.product(("event-notification", "query-event"),
                                            ("empty", "id-only", "full-resource"))
    for interactions, context in ((("update",), False), (("create", "update", "delete"), True))
]


@pytest.mark.parametrize(("type_", "content", "interactions", "context"), CASES)
def test_event_notifications_are_valid_r4_and_follow_the_ig(definitions, type_, content, interactions,
                                                           context) -> None:
    events = _events(interactions, context)
    bundle = notification_bundle(_status(type_), events, content=content, base_url=BASE,
                                 bundle_id=BUNDLE_ID, timestamp_ms=T0)
    assert _errors(definitions, bundle) == []
    assert bundle["type"] == "history" and bundle["id"] == BUNDLE_ID
    assert bundle["meta"]["profile"] == [NOTIFICATION_PROFILE]
    first = bundle["entry"][0]
    status = first["resource"]
    assert first["fullUrl"] == f"urn:uuid:{BUNDLE_ID}"
    assert status["resourceType"] == "Parameters" and status["meta"]["profile"] == [STATUS_PROFILE]
    assert first["request"] == {"method": "GET", "url": "Subscription/sub-1/$status"}
    names = [p["name"] for p in status["parameter"]]
    expected = ["subscription", "status", "type", "events-since-subscription-start"]
    if content != "empty":
        expected.insert(1, "topic")  # SHOULD NOT be present for empty payloads
    assert names == expected + ["notification-event"] * len(events)
    assert status["parameter"][0]["valueReference"] == {"reference": f"{BASE}/Subscription/sub-1"}
    assert event_numbers(bundle) == tuple(e.number for e in events)
    assert events_since_start(bundle) == 8
    parts = [{p["name"] for p in param["part"]} for param in status["parameter"] if "part" in param]
    rest = bundle["entry"][1:]
    if content == "empty":  # no reference to any resource, no other entry
        assert all(part == {"event-number", "timestamp"} for part in parts)
        assert rest == []
        return
    assert all({"event-number", "timestamp", "focus"} <= part for part in parts)
    assert len(rest) == len(events) * (2 if context else 1)
    focus = [e for e in rest if "Encounter/" in e["fullUrl"]]
    assert [e["fullUrl"] for e in focus] == [f"{BASE}/Encounter/e{e.number}" for e in events]
    assert [(e["request"]["method"], e["response"]["status"]) for e in focus] == [
        {"create": ("POST", "201"), "update": ("PUT", "200"), "delete": ("DELETE", "204")}[i]
        for i in interactions]
    for entry, evt in zip(focus, events, strict=True):
        has_resource = content == "full-resource" and evt.interaction != "delete"
        assert ("resource" in entry) is has_resource
        assert entry["response"]["etag"] == 'W/"2"'
    if context:
        context_entries = [e for e in rest if "Patient/" in e["fullUrl"]]
        assert all(e["request"] == {"method": "GET", "url": "Patient/p1"} for e in context_entries)


@pytest.mark.parametrize(("type_", "status"), [
    ("handshake", "requested"), ("heartbeat", "active"), ("query-status", "active"),
    ("query-status", "error"),
])
def test_status_only_notifications(definitions, type_, status) -> None:
    info = StatusInfo("sub-1", status, type_, DISCHARGE, 0 if type_ == "handshake" else 12,
                      (("http://terminology.hl7.org/CodeSystem/subscription-error", "no-response"),)
                      if status == "error" else ())
    bundle = notification_bundle(info, content="id-only", base_url=BASE, bundle_id=BUNDLE_ID, timestamp_ms=T0)
    assert _errors(definitions, bundle) == []
    assert len(bundle["entry"]) == 1
    params = {p["name"]: p for p in bundle["entry"][0]["resource"]["parameter"]}
    assert params["type"]["valueCode"] == type_ and params["status"]["valueCode"] == status
    assert ("error" in params) is (status == "error")
    assert orjson.loads(render_json(bundle)) == bundle


def test_classic_subscriptions_have_no_topic(definitions) -> None:
    info = StatusInfo("sub-1", "active", "event-notification", None, 1)
    bundle = notification_bundle(info, _events(("create",), False), content="full-resource",
                                 base_url=BASE, bundle_id=BUNDLE_ID, timestamp_ms=T0)
    assert _errors(definitions, bundle) == []
    assert "topic" not in [p["name"] for p in bundle["entry"][0]["resource"]["parameter"]]


def test_bad_inputs_are_refused() -> None:
    with pytest.raises(ValueError):
        StatusInfo("sub-1", "active", "event")
    with pytest.raises(ValueError):
        EventInfo(0, T0, ResourceRef("Encounter", "e1"), "update")
    with pytest.raises(ValueError):
        EventInfo(1, T0, ResourceRef("Encounter", "e1"), "patch")
    with pytest.raises(ValueError):
        notification_bundle(_status("heartbeat"), content="everything", base_url=BASE, bundle_id="x",
                            timestamp_ms=T0)


def test_the_validator_would_catch_a_broken_bundle(definitions) -> None:
    """The checks above are not vacuous: a history entry without its response breaks bdl-4."""
    bundle = notification_bundle(_status("event-notification"), _events(("update",), False),
                                 content="id-only", base_url=BASE, bundle_id=BUNDLE_ID, timestamp_ms=T0)
    del bundle["entry"][1]["response"]
    assert any("bdl-4" in i.diagnostics for i in _errors(definitions, bundle))
