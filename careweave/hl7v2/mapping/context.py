"""What every structure mapper shares: options, the message, deterministic ids, the entries.

Rules:
1. Ids are deterministic: :func:`resource_id` hashes (BLAKE2b, 128 bits, hex) the resource type
   with the parts that identify the real-world thing, always including the sending facility
   (MSH-4) where the thing is local to it. Replaying a message PUTs the same ids; an A08 for the
   same MRN or visit number updates the same Patient and Encounter.
2. :class:`Entries` collects one message's resources; putting the same type and id twice keeps
   the later one (a resource named twice in a message is one resource). The Bundle is a FHIR R4
   ``transaction`` of ``PUT Type/id`` entries in the order resources were first put.
3. References inside the Bundle are relative (``Patient/<id>``) and equal the PUT URLs, so they
   hold whether or not the target already exists on the server.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import tzinfo
from functools import lru_cache
from typing import Any

from careweave.hl7v2.errors import Hl7v2Error, Location
from careweave.hl7v2.mapping import datatypes
from careweave.hl7v2.message import Message, Segment

__all__ = ["Context", "Entries", "MapOptions", "reference", "resource_id"]

Json = dict[str, Any]


@dataclass(frozen=True, slots=True)
class MapOptions:
    """Mapping choices a deployment makes: the local time zone of feeds whose timestamps carry
    no offset (UK feeds: ``ZoneInfo("Europe/London")``)."""

    timezone: tzinfo


@lru_cache(maxsize=4096)  # a pure function: feeds name the same facility, clinicians, places again
def resource_id(resource_type: str, *parts: str) -> str:
    """The deterministic id of a resource (rule 1): 32 lower-case hex digits."""
    text = "\x1f".join((resource_type, *parts))
    return hashlib.blake2b(text.encode("utf-8"), digest_size=16).hexdigest()


def reference(ref: str, display: str | None = None) -> Json:
    out: Json = {"reference": ref}
    if display:
        out["display"] = display
    return out


class Entries:
    """The resources of one message (rule 2); local to one mapping call."""

    __slots__ = ("_items",)

    def __init__(self) -> None:
        self._items: dict[str, Json] = {}

    def put(self, resource: Json) -> str:
        """Add (or replace) a resource; returns its reference ``Type/id``."""
        ref = f"{resource['resourceType']}/{resource['id']}"
        self._items[ref] = resource
        return ref

    def get(self, ref: str) -> Json | None:
        return self._items.get(ref)

    def refs(self) -> list[str]:
        return list(self._items)

    def bundle(self) -> Json:
        return {
            "resourceType": "Bundle",
            "type": "transaction",
            "entry": [
                {"resource": resource, "request": {"method": "PUT", "url": ref}}
                for ref, resource in self._items.items()
            ],
        }


@dataclass(slots=True)
class Context:
    """One message being mapped: the message, the options, the facility, the entries."""

    message: Message
    options: MapOptions
    facility: str
    entries: Entries = field(default_factory=Entries)
    organization: str = ""  # reference to the sending facility's Organization
    patient: str = ""  # reference to the message's Patient, once mapped
    encounter: str = ""  # reference to the message's Encounter, if any
    _occurrence: dict[int, int] = field(default_factory=dict)

    def where(self, seg: Segment, field_no: int = 0, component: int = 0) -> Location:
        """The ERR-2 location of a field of a segment of this message."""
        if not self._occurrence:
            counts: dict[str, int] = {}
            for s in self.message.segments:
                counts[s.name] = counts.get(s.name, 0) + 1
                self._occurrence[id(s)] = counts[s.name]
        return Location(seg.name, self._occurrence.get(id(seg), 1), field_no, 0, component)

    def date_time(self, seg: Segment, field_no: int, component: int = 1) -> str | None:
        text = seg.get(field_no, component)
        if not text:
            return None
        try:
            return _date_time(text, self.options.timezone)
        except Hl7v2Error as exc:
            raise replace(exc, location=self.where(seg, field_no, component)) from exc.__cause__

    def instant(self, seg: Segment, field_no: int, component: int = 1) -> str | None:
        text = seg.get(field_no, component)
        if not text:
            return None
        try:
            return _instant(text, self.options.timezone)
        except Hl7v2Error as exc:
            raise replace(exc, location=self.where(seg, field_no, component)) from exc.__cause__

    def date(self, seg: Segment, field_no: int, component: int = 1) -> str | None:
        text = seg.get(field_no, component)
        if not text:
            return None
        try:
            return _date(text)
        except Hl7v2Error as exc:
            raise replace(exc, location=self.where(seg, field_no, component)) from exc.__cause__

    def id(self, resource_type: str, *parts: str) -> str:
        """A deterministic id local to the sending facility (rule 1)."""
        return resource_id(resource_type, self.facility, *parts)


Mapper = Callable[[Context], None]

# Timestamps repeat within a message (MSH-7, EVN-2, PV1-44) and across a patient's messages (the
# birth date): the conversions are pure, so their results are remembered (a failure is not).
_date_time = lru_cache(maxsize=4096)(datatypes.date_time)
_instant = lru_cache(maxsize=4096)(datatypes.instant)
_date = lru_cache(maxsize=4096)(datatypes.date)
