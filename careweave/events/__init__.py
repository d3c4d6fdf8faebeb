"""FHIR Subscriptions for R4: topic-based (the Subscriptions R5 Backport IG, v1.1.0) and classic.

The pure layers, in the order a change travels through them:

* :mod:`.topic` and :mod:`.subscription` read SubscriptionTopics (Basic-wrapped or R4B/R5 JSON)
  and Subscriptions into values; :mod:`.criteria` turns their search strings into query plans;
* :mod:`.trigger` compiles both and decides, for one committed change, whether a subscription
  is notified (in memory with :mod:`careweave.search.match`, asking the database only what it must);
* :mod:`.notification` builds the notification Bundles; :mod:`.numbering` numbers events so
  receivers find duplicates and gaps; :mod:`.signing` signs deliveries; :mod:`.retry` schedules
  retries;
* :mod:`.channels` sends: rest-hook (httpx), NATS JetStream (nats-py), and the websocket binding
  protocol.

Nothing here reads the store, a clock or a random source of its own: the dispatcher and the
delivery worker (``interactions`` / ``worker``) own the side effects.
"""

from careweave.events.criteria import Criteria, criteria_plan, query_plan
from careweave.events.notification import (
    ContextItem,
    EventInfo,
    ResourceRef,
    StatusInfo,
    notification_bundle,
    render_json,
    status_parameters,
)
from careweave.events.numbering import EventLedger, Observation, allocate, event_numbers, events_since_start
from careweave.events.retry import GiveUp, RetryAt, RetryPolicy, next_attempt
from careweave.events.signing import SIGNATURE_HEADER, Verification, sign, verify_signature
from careweave.events.subscription import ChannelSpec, SubscriptionSpec, read_subscription
from careweave.events.topic import (
    FilterBy,
    NotificationShape,
    QueryCriteria,
    ResourceTrigger,
    Topic,
    read_topic,
)
from careweave.events.trigger import (
    ChangeEvent,
    Check,
    CompiledSubscription,
    CompiledTopic,
    Decision,
    Verdict,
    Version,
    compile_subscription,
    compile_topic,
    decide,
)

__all__ = [
    "SIGNATURE_HEADER",
    "ChangeEvent",
    "ChannelSpec",
    "Check",
    "CompiledSubscription",
    "CompiledTopic",
    "ContextItem",
    "Criteria",
    "Decision",
    "EventInfo",
    "EventLedger",
    "FilterBy",
    "GiveUp",
    "NotificationShape",
    "Observation",
    "QueryCriteria",
    "ResourceRef",
    "ResourceTrigger",
    "RetryAt",
    "RetryPolicy",
    "StatusInfo",
    "SubscriptionSpec",
    "Topic",
    "Verdict",
    "Verification",
    "Version",
    "allocate",
    "compile_subscription",
    "compile_topic",
    "criteria_plan",
    "decide",
    "event_numbers",
    "events_since_start",
    "next_attempt",
    "notification_bundle",
    "query_plan",
    "read_subscription",
    "read_topic",
    "render_json",
    "sign",
    "status_parameters",
    "verify_signature",
]
