"""Organizations, Practitioners, Locations and Devices named in a message (XON, XCN, PL, HD).

Rules:
1. The sending facility (MSH-4.1, an ODS code in UK feeds) is an Organization with the ODS
   identifier; its id hashes the ODS system and code, so every message of every feed that names
   the same code shares it.
2. A practitioner (XCN) is a Practitioner with the identifier of
   :func:`~careweave.hl7v2.mapping.identifiers.practitioner_identifier` and the name of XCN-2..6;
   its id hashes the identifier (national numbers are shared across facilities).
3. A location (PL) is a Location of the facility named by point of care, room and bed; its
   physical type is the most specific part given (bed, room, ward).
4. The sending application (MSH-3) is a Device owned by the sending facility (the Provenance
   agent that produced the message).
"""

from __future__ import annotations

from typing import Any

from careweave.hl7v2.mapping.context import Context, reference, resource_id
from careweave.hl7v2.mapping.identifiers import ODS_SYSTEM, practitioner_identifier
from careweave.hl7v2.message import Repetition

__all__ = ["device", "location", "organization", "practitioner"]

Json = dict[str, Any]
_PHYSICAL_TYPE = "http://terminology.hl7.org/CodeSystem/location-physical-type"


def organization(ctx: Context, code: str, name: str = "") -> str:
    """The Organization with ODS code ``code`` (rule 1); returns its reference."""
    code = code.strip().upper()
    resource: Json = {
        "resourceType": "Organization",
        "id": resource_id("Organization", ODS_SYSTEM, code),
        "identifier": [{"system": ODS_SYSTEM, "value": code}],
    }
    if name:
        resource["name"] = name
    existing = ctx.entries.get(f"Organization/{resource['id']}")
    if existing is not None and "name" in existing and not name:
        return f"Organization/{resource['id']}"
    return ctx.entries.put(resource)


def practitioner(ctx: Context, rep: Repetition) -> str | None:
    """The Practitioner of an XCN (rule 2), or None when it names nobody."""
    identifier = practitioner_identifier(rep, ctx.facility)
    family, given, prefix = rep.get(2), rep.get(3), rep.get(6)
    if identifier is None and not family:
        return None
    name: Json = {}
    if family:
        name["family"] = family
    if given:
        name["given"] = [g for g in [given, *rep.get(4).split()] if g]
    if prefix:
        name["prefix"] = [prefix]
    resource: Json = {"resourceType": "Practitioner"}
    if identifier is not None:
        resource["id"] = resource_id("Practitioner", identifier["system"], identifier["value"])
        resource["identifier"] = [identifier]
    else:
        resource["id"] = ctx.id("Practitioner", family, given)
    if name:
        resource["name"] = [name]
    return ctx.entries.put(resource)


def location(ctx: Context, rep: Repetition) -> str | None:
    """The Location of a PL (rule 3), or None when it is empty."""
    ward, room, bed = rep.get(1), rep.get(2), rep.get(3)
    description = rep.get(9)
    parts = [p for p in (ward, room, bed) if p]
    if not parts and not description:
        return None
    resource: Json = {
        "resourceType": "Location",
        "id": ctx.id("Location", ward, room, bed, description if not parts else ""),
        "status": "active",
        "name": ", ".join(parts) or description,
        "mode": "instance",
    }
    if description and parts:
        resource["description"] = description
    kind = "bd" if bed else "ro" if room else "wa" if ward else ""
    if kind:
        display = {"bd": "Bed", "ro": "Room", "wa": "Ward"}[kind]
        resource["physicalType"] = {"coding": [{"system": _PHYSICAL_TYPE, "code": kind, "display": display}]}
    resource["managingOrganization"] = reference(ctx.organization)
    return ctx.entries.put(resource)


def device(ctx: Context, application: str) -> str:
    """The sending application as a Device of the sending facility (rule 4)."""
    name = application or "unknown"
    resource: Json = {
        "resourceType": "Device",
        "id": ctx.id("Device", name),
        "deviceName": [{"name": name, "type": "user-friendly-name"}],
        "owner": reference(ctx.organization),
    }
    return ctx.entries.put(resource)
