"""Fixtures for the events tests: search context and indexer from the packaged definitions, a
real webhook receiver, and builders for Subscription and topic resources."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from careweave.search.indexer import Indexer
from careweave.search.params import SearchContext
from careweave.system import Definitions
from tests.events.receiver import Receiver

BASE = "https://example.org/fhir"
BACKPORT = "http://hl7.org/fhir/uv/subscriptions-backport/StructureDefinition/"
XVER5 = "http://hl7.org/fhir/5.0/StructureDefinition/extension-SubscriptionTopic."
XVER43 = "http://hl7.org/fhir/4.3/StructureDefinition/extension-SubscriptionTopic."
DISCHARGE = "https://careweave.org/fhir/SubscriptionTopic/encounter-discharge"


@pytest.fixture(scope="session")
def search_ctx(definitions: Definitions) -> SearchContext:
    def expand(url: str) -> list[tuple[str | None, str]] | None:
        found = definitions.terminology.expansion(url)
        return None if found is None or not found.complete else sorted(found.codes)

    return SearchContext(definitions.search_params, definitions.model.resource_types, BASE, expand)


@pytest.fixture(scope="session")
def indexer(definitions: Definitions) -> Indexer:
    return Indexer(definitions.search_params, definitions.engine, definitions.code_systems)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver().start()
    try:
        yield r
    finally:
        r.stop()


def ext(url: str, **value: Any) -> dict[str, Any]:
    return {"url": url, **value}


def discharge_topic_basic() -> dict[str, Any]:
    """Encounters that become finished: a Basic-wrapped topic, as the backport IG defines for R4."""
    trigger = ext(XVER43 + "resourceTrigger", extension=[
        ext("description", valueMarkdown="An encounter is finished"),
        ext("resource", valueUri="http://hl7.org/fhir/StructureDefinition/Encounter"),
        ext("supportedInteraction", valueCode="create"),
        ext("supportedInteraction", valueCode="update"),
        ext("queryCriteria", extension=[
            ext("previous", valueString="status:not=finished"),
            ext("resultForCreate", valueCode="test-passes"),
            ext("current", valueString="status=finished"),
            ext("resultForDelete", valueCode="test-fails"),
            ext("requireBoth", valueBoolean=True),
        ]),
    ])
    return {
        "resourceType": "Basic",
        "id": "encounter-discharge",
        "code": {"coding": [{"system": "http://hl7.org/fhir/fhir-types", "code": "SubscriptionTopic"}]},
        "extension": [
            ext(XVER5 + "url", valueUri=DISCHARGE),
            ext(XVER5 + "version", valueString="1"),
            ext(XVER5 + "title", valueString="Encounter discharge"),
            trigger,
            ext(XVER43 + "canFilterBy", extension=[
                ext("resource", valueUri="Encounter"), ext("filterParameter", valueString="patient")]),
            ext(XVER43 + "canFilterBy", extension=[
                ext("resource", valueUri="Encounter"), ext("filterParameter", valueString="date"),
                ext("modifier", valueCode="ge"), ext("modifier", valueCode="le")]),
            ext(XVER43 + "notificationShape", extension=[
                ext("resource", valueUri="Encounter"), ext("include", valueString="Encounter:patient")]),
        ],
        "modifierExtension": [ext(XVER5 + "status", valueCode="active")],
    }


def discharge_topic_native() -> dict[str, Any]:
    """The same topic as R4B/R5 SubscriptionTopic JSON."""
    return {
        "resourceType": "SubscriptionTopic",
        "url": DISCHARGE,
        "version": "1",
        "title": "Encounter discharge",
        "status": "active",
        "resourceTrigger": [{
            "description": "An encounter is finished",
            "resource": "http://hl7.org/fhir/StructureDefinition/Encounter",
            "supportedInteraction": ["create", "update"],
            "queryCriteria": {"previous": "status:not=finished", "resultForCreate": "test-passes",
                              "current": "status=finished", "resultForDelete": "test-fails",
                              "requireBoth": True},
        }],
        "canFilterBy": [{"resource": "Encounter", "filterParameter": "patient"},
                        {"resource": "Encounter", "filterParameter": "date",
                         "comparator": ["ge", "le"]}],
        "notificationShape": [{"resource": "Encounter", "include": ["Encounter:patient"]}],
    }


def subscription(
    *,
    criteria: str = DISCHARGE,
    filters: tuple[str, ...] = (),
    content: str | None = "id-only",
    channel_type: str = "rest-hook",
    endpoint: str | None = "https://receiver.example.org/hook",
    headers: tuple[str, ...] = (),
    channel_extensions: tuple[dict[str, Any], ...] = (),
    custom_channel: tuple[str, str] | None = None,
    status: str = "active",
) -> dict[str, Any]:
    channel: dict[str, Any] = {"type": channel_type, "payload": "application/fhir+json"}
    if endpoint is not None:
        channel["endpoint"] = endpoint
    if headers:
        channel["header"] = list(headers)
    if content is not None:
        channel["_payload"] = {"extension": [ext(BACKPORT + "backport-payload-content", valueCode=content)]}
    if channel_extensions:
        channel["extension"] = list(channel_extensions)
    if custom_channel is not None:
        channel["_type"] = {"extension": [ext(BACKPORT + "backport-channel-type", valueCoding={
            "system": custom_channel[0], "code": custom_channel[1]})]}
    resource: dict[str, Any] = {"resourceType": "Subscription", "id": "sub-1", "status": status,
                                "reason": "test", "criteria": criteria, "channel": channel}
    if filters:
        resource["_criteria"] = {"extension": [
            ext(BACKPORT + "backport-filter-criteria", valueString=f) for f in filters]}
    return resource
