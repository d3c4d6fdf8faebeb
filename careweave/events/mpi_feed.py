"""A built-in topic fed by the master patient index: "a patient you hold changed elsewhere", or
was linked, unlinked, merged or unmerged in the index.

Topic: :data:`MPI_TOPIC` (``https://careweave.org/fhir/SubscriptionTopic/mpi-demographics-changed``),
offered to every tenant. The MPI writes a row into its outbox (``mpi_outbox``, see
careweave/store/sql/mpi.py) for each *other* organisation holding a record of a Person whose
identifying elements changed at one organisation; this feed turns each row into an event for the
target organisation's subscriptions on the topic.

Rules (notify, then fetch: no patient data travels in the event):
1. The focus is the subscriber's **own** Patient linked to that Person (one event per such record;
   none when it holds none any more). The focus entry is a reference (``GET Patient/<id>``): the
   subscriber's record did not change; it is told to look again. ``X-Careweave-Source`` names the
   organisation and record that changed (``<tenant>|Patient/<id>``), never their content. For the
   identity events (``linked``, ``unlinked``, ``merged``, ``unmerged``, docs/mpi.md "Events") it is
   ``<kind> <tenant>|Patient/<id>``, or ``<kind> _mpi|Person/<id>`` naming the other Person of a
   merge.
2. The subscribers of a row are those the dispatcher knows once it has read the change log at
   least as far as it stood when the row was read (``position`` >= the log's head, read after the
   rows): a Subscription stored before the event was written is never missed because the
   dispatcher had not reached it yet. Until then the batch waits.
3. Delivery is the same outbox discipline as the change log: the feed's own cursor
   (``ev_cursor`` ``mpi-outbox``) moves in the transaction that numbers and queues the events
   (compare-and-set), so a crash replays and never skips.
4. The topic takes no filters (it has no resource trigger to filter).
"""

from __future__ import annotations

import functools
import uuid as uuidlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from careweave.events.trigger import CompiledTopic
from careweave.store.base import Store, Tenant
from careweave.store.sql import events as events_sql
from careweave.store.sql import mpi as mpi_sql
from careweave.store.sql.components import Sql

__all__ = ["CURSOR", "MPI_TOPIC", "MpiFeed", "compiled_topic", "reference_focus"]

MPI_TOPIC = "https://careweave.org/fhir/SubscriptionTopic/mpi-demographics-changed"
CURSOR = "mpi-outbox"


def compiled_topic() -> CompiledTopic:
    """The topic as subscriptions compile against it: no resource trigger (rule 3)."""
    return CompiledTopic(MPI_TOPIC, ())


def reference_focus(bundle: dict[str, Any]) -> dict[str, Any]:
    """Rule 1: the focus entries of a notification on this topic are references (GET, 200)."""
    for entry in bundle.get("entry", [])[1:]:
        request = entry.get("request", {})
        if request.get("method") == "PUT":
            entry["request"] = {"method": "GET", "url": request.get("url", "")}
            entry["response"] = {"status": "200"}
    return bundle


@dataclass(frozen=True, slots=True)
class _Event:
    tid: int
    sid: str
    seq: int
    patient: str
    version: int
    at_ms: int
    source: str


Subscribers = Callable[[int], Any]  # tid -> awaitable of the subscription ids on MPI_TOPIC
Position = Callable[[], "int | None"]  # the change-log position the subscribers reflect


class MpiFeed:
    def __init__(
        self,
        store: Store,
        subscribers: Subscribers,
        clock: Callable[[], int],
        batch: int = 500,
        *,
        position: Position | None = None,
    ) -> None:
        self._store = store
        self._subscribers = subscribers
        self._position = position
        self._clock = clock
        self._batch = batch
        self._names: dict[int, str] = {}

    async def run_once(self) -> int:
        """Turn one batch of outbox rows into events; how many (-1: nothing new)."""
        start: int = await self._store.sql_read(lambda sql: events_sql.cursor(sql, CURSOR))
        rows = await self._store.sql_read(lambda sql: mpi_sql.outbox_after(sql, start, self._batch))
        if not rows:
            return -1
        if self._position is not None:  # rule 2
            head: int = await self._store.sql_read(events_sql.change_head)
            at = self._position()
            if at is None or at < head:
                return 0
        found: list[_Event] = []
        for row in rows:
            sids = await self._subscribers(row.tid)
            if not sids:
                continue
            person = row.person
            own = await self._store.sql_read(functools.partial(mpi_sql.members, person=person))
            source = f"{await self._name(row.source_tid)}|{row.source_ref}"
            if row.kind != "demographics-changed":
                source = f"{row.kind} {source}"
            for record in own:
                if record.tid != row.tid:
                    continue
                for sid in sids:
                    found.append(
                        _Event(row.tid, sid, row.seq, record.patient, record.version, row.at_ms, source)
                    )
        end, now = rows[-1].seq, self._clock()
        try:
            await self._store.sql_write(lambda sql: _apply(sql, start, end, found, now))
        except events_sql.CursorMoved:
            return 0
        return len(found)

    async def _name(self, tid: int) -> str:
        if tid not in self._names:
            tenant: Tenant | None = await self._store.tenant_by_key(tid)
            self._names[tid] = tenant.name if tenant is not None else str(tid)
        return self._names[tid]


def _apply(sql: Sql, start: int, end: int, found: list[_Event], now_ms: int) -> None:
    for event in found:
        row = events_sql.subscription(sql, event.tid, event.sid)
        if row is None or row.status == "off":
            continue
        events_sql.enqueue(
            sql,
            row.skey,
            event.tid,
            uuid=str(uuidlib.uuid4()),
            seq=event.seq,
            type="Patient",
            id=event.patient,
            version=event.version,
            interaction="update",
            ts_ms=event.at_ms,
            source=event.source,
            now_ms=now_ms,
            dead=row.status == "error",
        )
    events_sql.advance_cursor(sql, start, end, name=CURSOR)
