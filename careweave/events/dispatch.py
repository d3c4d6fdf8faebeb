"""The dispatcher: follows the committed change log and turns changes into numbered, queued events.

Rules (a transactional outbox; the history table is the outbox):
1. It reads ``Store.changes`` after its cursor, in ``seq`` order (commit order), a batch at a
   time; for each change it decides every subscription of the tenant that listens to the changed
   type (:func:`~careweave.events.trigger.decide`, asking the database only what memory cannot
   tell), and in **one** write transaction numbers the events, queues their notifications and
   moves the cursor past the batch (compare-and-set). A crash before that commit replays the batch;
   nothing is skipped; nothing is queued twice. A batch that queues nothing and changes no
   subscription moves the cursor in memory only (stored at the next batch that does, or after
   5,000 changes or 10 s): replaying it after a crash queues nothing either.
2. Subscriptions are per tenant and see only their tenant's changes. A Subscription takes part
   from the change that stored it on (its own version is compiled, not a later one), so a change
   made before a subscription existed never reaches it.
3. A Subscription change updates the delivery state: a new ``requested`` topic-based one queues a
   handshake (rest-hook, NATS) or is made ``active`` at once (websocket, mailbox: they have no
   endpoint to test; classic R4 subscriptions: R4 has no handshake nor heartbeat); one that
   cannot be served goes to ``error``; a deleted one is forgotten. Changes that are
   careweave's own status writes (``ev_subscription.own_version``) are neither reacted to nor
   notified (no loops).
4. Subscriptions in ``error`` still number their events; the notifications go straight to the
   dead-letter list (replayable). ``off`` ones and ones past their ``end`` hear nothing.
5. SubscriptionTopics are the tenant's Basic-wrapped topics plus the built-in ones (configured, and
   the MPI's, fed by :mod:`.mpi_feed`); a topic change reloads the tenant's topics and recompiles
   its subscriptions.
6. An event of a topic whose ``notificationShape`` for the focus type names ``include`` /
   ``revInclude`` values gets its additional context when it is queued: the resources a search
   ``Type?_id=<focus>&_include=..&_revinclude=..`` includes at that moment (at most
   :data:`MAX_CONTEXT`, current versions, pinned by version so that every retry and ``$events``
   renders the same notification). Subscriptions with ``empty`` payloads and deletions get none.
7. The source of an event (``X-Careweave-Source``): the Provenance written in the same commit
   that targets the changed resource (the HL7 v2 gateway writes one per message, its ``source``
   entity naming the message by control id: ``<system>|<MSH-10>``), else the resource's
   ``meta.source``. A commit is recognised by tenant and ``updated_ms`` (one per transaction);
   a full batch leaves out its last commit's changes, read whole with the next batch (unless
   that commit alone fills the batch).
8. Only this is assumed of ``Store.changes``: committed rows, in ascending ``seq`` order (nothing
   about gaps or counts).
"""

from __future__ import annotations

import logging
import uuid as uuidlib
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

import orjson

from careweave.errors import CareweaveError
from careweave.events.criteria import criteria_plan
from careweave.events.mpi_feed import MPI_TOPIC
from careweave.events.mpi_feed import compiled_topic as mpi_topic
from careweave.events.subscription import SubscriptionSpec, read_subscription
from careweave.events.topic import FHIR_TYPES, Topic, read_topic
from careweave.events.trigger import (
    ChangeEvent,
    CompiledSubscription,
    CompiledTopic,
    Verdict,
    Version,
    compile_subscription,
    compile_topic,
    decide,
)
from careweave.fhir.fhirpath import FhirPathEngine
from careweave.search.index import IndexRows
from careweave.search.indexer import Indexer
from careweave.search.params import SearchContext, parse_search
from careweave.search.plan import QueryPlan
from careweave.store.base import Change, Store, Tenant
from careweave.store.sql import events as events_sql
from careweave.store.sql.components import Sql

__all__ = ["CHANNEL_KINDS", "MAX_CONTEXT", "Dispatcher", "TenantTools", "channel_kind", "tenant_topics"]

log = logging.getLogger("careweave.events")

CHANNEL_KINDS = frozenset({"rest-hook", "websocket", "nats", "mailbox"})
_LAG_CHANGES = 5000  # the stored cursor may lag this many action-free changes ...
_LAG_MS = 10_000  # ... or this long (a restart re-reads them, finding nothing to queue again)
_HANDSHAKE = frozenset({"rest-hook", "nats"})
MAX_CONTEXT = 50  # additional-context resources per event (rule 6)


def channel_kind(spec: SubscriptionSpec) -> str | None:
    """The delivery channel careweave uses for a subscription, None when it has none for it."""
    kind = spec.channel.type
    return kind if kind in CHANNEL_KINDS else None


@dataclass(frozen=True, slots=True)
class TenantTools:
    """What deciding needs per tenant: its search context (custom parameters included) and indexer."""

    ctx: SearchContext
    indexer: Indexer


@dataclass(slots=True)
class _Entry:
    sid: str
    status: str
    spec: SubscriptionSpec | None
    compiled: CompiledSubscription | None


@dataclass(slots=True)
class _View:
    """One tenant's subscriptions and topics, as of the dispatcher's cursor."""

    tenant: Tenant
    entries: dict[str, _Entry] = field(default_factory=dict)
    topics: dict[str, CompiledTopic] = field(default_factory=dict)
    by_type: dict[str, list[_Entry]] = field(default_factory=dict)

    def reindex(self) -> None:
        self.by_type = {}
        for entry in self.entries.values():
            if entry.compiled is not None:
                for type_ in entry.compiled.resource_types:
                    self.by_type.setdefault(type_, []).append(entry)


@dataclass(frozen=True, slots=True)
class _SubAction:
    tid: int
    sid: str
    status: str
    channel: str
    version: int
    heartbeat_s: int | None
    handshake: bool
    error: str | None


@dataclass(frozen=True, slots=True)
class _DropAction:
    tid: int
    sid: str


@dataclass(frozen=True, slots=True)
class _EventAction:
    tid: int
    sid: str
    change: Change
    interaction: str
    source: str | None
    context: str | None = None


_Action = _SubAction | _DropAction | _EventAction
StatusRequest = tuple[Tenant, str, str, str | None]  # tenant, subscription id, status, error


class Dispatcher:
    def __init__(
        self,
        store: Store,
        tools_of: Callable[[Tenant], Awaitable[TenantTools]],
        engine: FhirPathEngine,
        *,
        builtin_topics: Sequence[Topic] = (),
        clock: Callable[[], int],
        batch: int = 500,
        on_status: Callable[[Sequence[StatusRequest]], Awaitable[None]] | None = None,
    ) -> None:
        self._store = store
        self._tools_of = tools_of
        self._engine = engine
        self._builtin = tuple(builtin_topics)
        self._clock = clock
        self._batch = batch
        self._on_status = on_status
        self._views: dict[int, _View] = {}
        self._ctx_cache: dict[int, SearchContext] = {}
        self._cursor: int | None = None  # how far this dispatcher has read
        self._stored = 0  # the cursor as stored (it lags only over changes that queued nothing)
        self._stored_ms = 0
        self._sources: dict[tuple[int, str, str, int], str] = {}  # rule 7, for the current batch

    async def topic_subscribers(self, tid: int, url: str) -> list[str]:
        """The ids of a tenant's servable subscriptions on topic ``url`` (not ``off``)."""
        view = await self._view(tid)
        if view is None:
            return []
        return [
            e.sid
            for e in view.entries.values()
            if e.spec is not None and e.spec.topic == url and e.compiled is not None and e.status != "off"
        ]

    @property
    def position(self) -> int | None:
        """The change-log position this dispatcher's views reflect (None: not read yet)."""
        return self._cursor

    def forget(self) -> None:
        """Drop the in-memory views and cursor (after a failed batch: rebuilt from the store)."""
        self._views.clear()
        self._cursor = None

    async def run_once(self) -> int:
        """Dispatch one batch of changes; returns how many events were queued (-1: nothing new)."""
        start = self._cursor
        if start is None:
            start = self._stored = await self._store.sql_read(events_sql.cursor)
            self._stored_ms = self._clock()
        changes: list[Change] = await self._store.changes(start, self._batch)
        if not changes:
            return -1
        if len(changes) >= self._batch:
            changes = _whole_commits(changes)
        self._sources = provenance_sources(changes)
        actions: list[_Action] = []
        status_requests: list[StatusRequest] = []
        try:
            for change in changes:
                actions.extend(await self._dispatch(change, status_requests))
        except Exception:
            self.forget()
            raise
        end = changes[-1].seq
        now = self._clock()
        expected = self._stored
        lagging = end - expected > _LAG_CHANGES or now - self._stored_ms > _LAG_MS
        if not actions and not lagging:
            self._cursor = end  # nothing to queue: no write (and no fsync) per idle batch
            return 0
        try:
            await self._store.sql_write(lambda sql: _apply(sql, expected, end, actions, now))
            self._cursor = self._stored = end
            self._stored_ms = now
        except events_sql.CursorMoved:
            self.forget()  # another dispatcher took this batch
            return 0
        except Exception:
            self.forget()
            raise
        if status_requests and self._on_status is not None:
            await self._on_status(status_requests)
        return sum(1 for a in actions if isinstance(a, _EventAction))

    # -- one change ---------------------------------------------------------------------------------
    async def _dispatch(self, change: Change, status_requests: list[StatusRequest]) -> list[_Action]:
        view = await self._view(change.tenant)
        if view is None:
            return []
        actions: list[_Action] = []
        if change.type == "Subscription":
            own, action = await self._subscription_change(view, change, status_requests)
            if own:
                return []
            actions.append(action)
        elif change.type == "Basic" and _maybe_topic(change):
            await self._load_topics(view)
            self._recompile(view)
        entries = view.by_type.get(change.type)
        if entries:
            actions.extend(await self._events(view, change, entries))
        return actions

    async def _subscription_change(
        self, view: _View, change: Change, status_requests: list[StatusRequest]
    ) -> tuple[bool, _Action]:
        tid, sid = change.tenant, change.id
        if change.body is None:
            view.entries.pop(sid, None)
            view.reindex()
            return False, _DropAction(tid, sid)
        row = await self._store.sql_read(lambda sql: events_sql.subscription(sql, tid, sid))
        resource = orjson.loads(change.body)
        entry = await self._entry(view, sid, resource)
        view.entries[sid] = entry
        view.reindex()
        if row is not None and row.own_version == change.version:
            return True, _DropAction(tid, "")  # ignored by the caller
        spec = entry.spec
        kind = channel_kind(spec) if spec is not None else None
        heartbeat = spec.channel.heartbeat_s if spec is not None and spec.topic is not None else None
        if spec is None or entry.compiled is None or kind is None:
            reason = _unservable(spec, entry, kind)
            entry.status = "error"
            if resource.get("status") in ("requested", "active"):
                status_requests.append((view.tenant, sid, "error", reason))
            return False, _SubAction(
                tid, sid, "error", kind or "none", change.version, heartbeat, False, reason
            )
        status = entry.status
        if status == "requested" and (kind not in _HANDSHAKE or spec.topic is None):
            status_requests.append((view.tenant, sid, "active", None))
            entry.status = status = "active"
        handshake = status == "requested"
        return False, _SubAction(tid, sid, status, kind, change.version, heartbeat, handshake, None)

    async def _events(self, view: _View, change: Change, entries: list[_Entry]) -> list[_Action]:
        tenant = view.tenant
        tools = await self._tools_of(tenant)
        current = orjson.loads(change.body) if change.body is not None else None
        previous = None
        if change.version > 1:
            old = await self._store.vread(tenant, change.type, change.id, change.version - 1)
            if old is not None and old.body is not None:
                previous = orjson.loads(old.body)
        if current is None:
            if previous is None:
                return []
            interaction = "delete"
        else:
            interaction = "update" if previous is not None else "create"
        # the previous version's index rows only when a trigger tests it (classic criteria never do)
        rows_before = IndexRows()
        if previous is not None and (
            current is None or any(_tests_previous(e, change.type) for e in entries)
        ):
            rows_before = tools.indexer.index(previous)
        event = ChangeEvent(
            change.type,
            change.id,
            interaction,
            Version(previous, rows_before) if previous is not None else None,
            Version(current, tools.indexer.index(current), change.updated_ms)
            if current is not None
            else None,
        )
        key = (change.tenant, change.type, change.id, change.updated_ms)
        source = self._sources.get(key) or _source(current or previous or {})
        out: list[_Action] = []
        contexts: dict[tuple[tuple[str, str], ...], str | None] = {}
        for entry in entries:
            if entry.status == "off" or entry.compiled is None or _ended(entry.spec, change.updated_ms):
                continue
            try:
                notify = await self._notifies(tenant, change, event, entry.compiled)
            except Exception:  # one undecidable change must not stop every subscription's events
                log.exception(
                    "subscription %s: change %d could not be decided; skipped", entry.sid, change.seq
                )
                continue
            if notify:
                wanted = _shape_items(entry, change.type) if current is not None else ()
                if wanted and wanted not in contexts:
                    contexts[wanted] = await self._context(tenant, tools.ctx, change, wanted)
                context = contexts.get(wanted) if wanted else None
                out.append(_EventAction(change.tenant, entry.sid, change, interaction, source, context))
        return out

    async def _context(
        self, tenant: Tenant, ctx: SearchContext, change: Change, wanted: tuple[tuple[str, str], ...]
    ) -> str | None:
        """Rule 6: the additional context of an event, as stored references (None: none)."""
        try:
            items = (("_id", change.id), *wanted)
            plan = parse_search((change.type,), items, ctx, count=1, max_count=1, strict=True).plan
        except CareweaveError as exc:
            log.warning("notificationShape of %s cannot be used: %s", change.type, exc.diagnostics)
            return None
        try:
            page = await self._store.search(tenant, plan)
        except CareweaveError as exc:  # e.g. too many includes: the event goes without context
            log.warning("additional context of %s not found: %s", change.type, exc.diagnostics)
            return None
        refs = [f"{s.type}/{s.id}/{s.version}" for s in page.includes if not s.deleted]
        return " ".join(refs[:MAX_CONTEXT]) or None

    async def _notifies(
        self, tenant: Tenant, change: Change, event: ChangeEvent, compiled: CompiledSubscription
    ) -> bool:
        decision = decide(event, compiled, now_ms=change.updated_ms)
        if decision.verdict is Verdict.ASK:
            answers = {check.key: await self._ask(tenant, change, check.plan) for check in decision.checks}
            decision = decide(event, compiled, now_ms=change.updated_ms, answers=answers)
        return decision.verdict is Verdict.NOTIFY

    async def _ask(self, tenant: Tenant, change: Change, plan: QueryPlan) -> bool:
        """The database's answer for the event's version; a resource that has moved on since is
        judged on the version the database holds (logged: the index keeps no older versions)."""
        page = await self._store.search(tenant, plan)
        for match in page.matches:
            if match.version != change.version:
                log.debug("criteria of %s judged on a later version", change.type)
        return bool(page.matches)

    # -- views ----------------------------------------------------------------------------------------
    async def _view(self, tid: int) -> _View | None:
        view = self._views.get(tid)
        if view is not None:
            return view
        tenant = await self._store.tenant_by_key(tid)
        if tenant is None:
            return None
        view = _View(tenant)
        await self._load_topics(view)
        rows = await self._store.sql_read(lambda sql: events_sql.subscriptions(sql, tid))
        for row in rows:
            stored = await self._store.vread(tenant, "Subscription", row.sid, row.version)
            if stored is None or stored.body is None:
                continue
            entry = await self._entry(view, row.sid, orjson.loads(stored.body))
            entry.status = row.status
            view.entries[row.sid] = entry
        view.reindex()
        self._views[tid] = view
        return view

    async def _entry(self, view: _View, sid: str, resource: dict[str, Any]) -> _Entry:
        spec, _ = read_subscription(resource)
        status = str(resource.get("status", "off"))
        if spec is None:
            return _Entry(sid, status, None, None)
        tools = await self._tools_of(view.tenant)
        topic = view.topics.get(spec.topic) if spec.topic is not None else None
        compiled, _ = compile_subscription(spec, topic, tools.ctx)
        return _Entry(sid, status, spec, compiled)

    def _recompile(self, view: _View) -> None:
        for entry in view.entries.values():
            if entry.spec is not None and entry.spec.topic is not None:
                topic = view.topics.get(entry.spec.topic)
                ctx = self._ctx_cache.get(view.tenant.key)
                if ctx is not None:
                    entry.compiled, _ = compile_subscription(entry.spec, topic, ctx)
        view.reindex()

    async def _load_topics(self, view: _View) -> None:
        tools = await self._tools_of(view.tenant)
        self._ctx_cache[view.tenant.key] = tools.ctx
        view.topics = await tenant_topics(self._store, view.tenant, tools.ctx, self._engine, self._builtin)


async def tenant_topics(
    store: Store, tenant: Tenant, ctx: SearchContext, engine: FhirPathEngine, builtin: Sequence[Topic]
) -> dict[str, CompiledTopic]:
    """Rule 5: the topics a tenant's subscriptions may name, by canonical URL, compiled with the
    tenant's search context (its custom parameters included)."""
    topics: dict[str, CompiledTopic] = {MPI_TOPIC: mpi_topic()}
    for topic in builtin:
        compiled, _ = compile_topic(topic, ctx, engine)
        if compiled is not None:
            topics[topic.url] = compiled
    plan = criteria_plan(f"Basic?code={FHIR_TYPES}|SubscriptionTopic", ctx).plan
    after = None
    while True:
        page = await store.search(tenant, replace(plan, count=500, after=after))
        for stored in page.matches:
            if stored.body is None:
                continue
            found, _ = read_topic(orjson.loads(stored.body))
            if found is not None and found.status != "retired":
                compiled, _ = compile_topic(found, ctx, engine)
                if compiled is not None:
                    topics[found.url] = compiled
        if page.next_after is None:
            return topics
        after = page.next_after


def _shape_items(entry: _Entry, type_: str) -> tuple[tuple[str, str], ...]:
    """The ``_include`` / ``_revinclude`` items of the entry's topic shape for ``type_`` (rule 6)."""
    compiled = entry.compiled
    topic = compiled.topic.topic if compiled is not None else None
    if topic is None or entry.spec is None or entry.spec.channel.content == "empty":
        return ()
    items: list[tuple[str, str]] = []
    for shape in topic.shapes:
        if shape.resource == type_:
            items.extend(("_include", value) for value in shape.includes)
            items.extend(("_revinclude", value) for value in shape.rev_includes)
    return tuple(items)


def _tests_previous(entry: _Entry, type_: str) -> bool:
    if entry.compiled is None:
        return False
    triggers = entry.compiled.topic.triggers
    return any(t.resource == type_ and (t.previous is not None or t.fhirpath is not None) for t in triggers)


def _maybe_topic(change: Change) -> bool:
    return change.body is None or b"SubscriptionTopic" in change.body


def _unservable(spec: SubscriptionSpec | None, entry: _Entry, kind: str | None) -> str:
    if spec is None:
        return "the Subscription cannot be read"
    if kind is None:
        return f"careweave does not deliver on channel {spec.channel.type!r}"
    if spec.topic is not None:
        return f"unknown or unusable topic {spec.topic}"
    return "the criteria cannot be used"


def _ended(spec: SubscriptionSpec | None, at_ms: int) -> bool:
    if spec is None or not spec.end:
        return False
    try:
        end = datetime.fromisoformat(spec.end.replace("Z", "+00:00"))
    except ValueError:
        return False
    if end.tzinfo is None:
        return False
    return int(end.timestamp() * 1000) <= at_ms


def _whole_commits(changes: list[Change]) -> list[Change]:
    """Rule 7: a full batch without its last commit's changes (unless that is all of it)."""
    last = changes[-1]
    keep = len(changes)
    while keep > 0 and (changes[keep - 1].tenant, changes[keep - 1].updated_ms) == (
        last.tenant,
        last.updated_ms,
    ):
        keep -= 1
    return changes[:keep] if keep else changes


def provenance_sources(changes: Sequence[Change]) -> dict[tuple[int, str, str, int], str]:
    """Rule 7: (tenant, type, id, updated_ms) -> the source named by a Provenance of that commit
    targeting that resource (the Provenance itself included)."""
    out: dict[tuple[int, str, str, int], str] = {}
    for change in changes:
        if change.type != "Provenance" or change.body is None:
            continue
        body = orjson.loads(change.body)
        source = provenance_source(body)
        if source is None:
            continue
        out[(change.tenant, "Provenance", change.id, change.updated_ms)] = source
        targets = body.get("target")
        for target in targets if isinstance(targets, list) else ():
            ref = target.get("reference") if isinstance(target, dict) else None
            parts = ref.split("/") if isinstance(ref, str) else []
            if len(parts) in (2, 4) and parts[0][:1].isupper():  # Type/id[/_history/v]
                out.setdefault((change.tenant, parts[0], parts[1], change.updated_ms), source)
    return out


def provenance_source(provenance: dict[str, Any]) -> str | None:
    """What a Provenance's ``source`` entity names: ``system|value`` of its identifier, else its
    reference, else its display."""
    entities = provenance.get("entity")
    for entity in entities if isinstance(entities, list) else ():
        what = entity.get("what") if isinstance(entity, dict) else None
        if entity.get("role") != "source" or not isinstance(what, dict):
            continue
        identifier = what.get("identifier")
        if isinstance(identifier, dict) and isinstance(identifier.get("value"), str):
            system = identifier.get("system")
            return f"{system}|{identifier['value']}" if isinstance(system, str) else identifier["value"]
        for key in ("reference", "display"):
            if isinstance(what.get(key), str):
                return str(what[key])
    return None


def _source(resource: dict[str, Any]) -> str | None:
    meta = resource.get("meta")
    source = meta.get("source") if isinstance(meta, dict) else None
    return source if isinstance(source, str) else None


def _apply(sql: Sql, start: int, end: int, actions: Sequence[_Action], now_ms: int) -> None:
    """Rule 1: the batch's state changes and events, and the cursor, in one transaction."""
    keys: dict[tuple[int, str], events_sql.SubscriptionRow | None] = {}

    def row(tid: int, sid: str) -> events_sql.SubscriptionRow | None:
        if (tid, sid) not in keys:
            keys[(tid, sid)] = events_sql.subscription(sql, tid, sid)
        return keys[(tid, sid)]

    for action in actions:
        if isinstance(action, _SubAction):
            skey = events_sql.upsert_subscription(
                sql,
                action.tid,
                action.sid,
                status=action.status,
                channel=action.channel,
                version=action.version,
                heartbeat_s=action.heartbeat_s,
                now_ms=now_ms,
                error=action.error,
            )
            keys.pop((action.tid, action.sid), None)
            if action.handshake:
                found = row(action.tid, action.sid)
                last = found.last_number if found is not None else 0
                events_sql.insert_delivery(
                    sql,
                    skey,
                    action.tid,
                    uuid=str(uuidlib.uuid4()),
                    kind="handshake",
                    numbers=(last, last),
                    now_ms=now_ms,
                )
        elif isinstance(action, _DropAction):
            if action.sid:
                events_sql.drop_subscription(sql, action.tid, action.sid)
                keys.pop((action.tid, action.sid), None)
        else:
            found = row(action.tid, action.sid)
            if found is None:
                continue
            change = action.change
            events_sql.enqueue(
                sql,
                found.skey,
                action.tid,
                uuid=str(uuidlib.uuid4()),
                seq=change.seq,
                type=change.type,
                id=change.id,
                version=change.version,
                interaction=action.interaction,
                ts_ms=change.updated_ms,
                source=action.source,
                now_ms=now_ms,
                dead=found.status == "error",
                context=action.context,
            )
    events_sql.advance_cursor(sql, start, end)
