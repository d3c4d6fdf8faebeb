"""HL7 v2 -> FHIR R4: one pure function from a parsed message to a transaction Bundle.

Public API::

    from zoneinfo import ZoneInfo
    from careweave.hl7v2.mapping import MapOptions, map_message
    bundle = map_message(message, MapOptions(timezone=ZoneInfo("Europe/London")))

Rules:
1. :func:`map_message` checks the header, picks the structure (:mod:`.structure`), maps the
   sending facility to an Organization, runs the structure's mapper, and adds a Provenance
   naming the message. It raises :class:`~careweave.hl7v2.errors.Hl7v2Error` only (header
   problems -> AR, content problems -> AE, each with a table 0357 code and a location).
2. The result is a FHIR R4 ``transaction`` Bundle of ``PUT Type/<deterministic id>`` entries
   (:mod:`.context`): replaying a message changes nothing; later messages about the same
   patient, visit, order or document update the same resources (snapshot semantics: what a
   message does not say is removed from the resource it PUTs).
3. No clock, no I/O, no global state: the only input besides the message is :class:`MapOptions`.
4. Merges (A40) must outlive later snapshots: whoever writes a mapped Patient passes it through
   :func:`merge_patient` with the stored version (``adt_a39`` rule 5).
"""

from __future__ import annotations

from typing import Any

from careweave.hl7v2.errors import Hl7v2Error, Location
from careweave.hl7v2.mapping.adt_a39 import merge_patient
from careweave.hl7v2.mapping.context import Context, MapOptions, resource_id
from careweave.hl7v2.mapping.parties import organization
from careweave.hl7v2.mapping.provenance import map_provenance
from careweave.hl7v2.mapping.structure import MAPPERS, check_header, structure_of
from careweave.hl7v2.message import Message

__all__ = [
    "MAPPERS",
    "MapOptions",
    "check_header",
    "map_message",
    "merge_patient",
    "resource_id",
    "structure_of",
]


def map_message(message: Message, options: MapOptions) -> dict[str, Any]:
    """The transaction Bundle for one message (rules 1-3)."""
    check_header(message)
    structure = structure_of(message)
    facility = message.sending_facility.strip().upper()
    if not facility:
        raise Hl7v2Error("no sending facility in MSH-4", "101", location=Location("MSH", field=4))
    ctx = Context(message, options, facility)
    ctx.organization = organization(ctx, facility)
    MAPPERS[structure](ctx)
    map_provenance(ctx)
    return ctx.entries.bundle()
