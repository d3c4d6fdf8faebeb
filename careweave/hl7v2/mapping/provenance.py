"""Every message -> one Provenance naming it (the IG's MSH/EVN[Provenance] maps, in brief).

Rules:
1. target: every resource the message produced; recorded: MSH-7 (required, 101); occurred:
   EVN-6 else EVN-2; activity: the trigger event (table 0003); reason: EVN-4.
2. agents: the sending application MSH-3 (a Device, type ``author``) on behalf of the sending
   facility MSH-4 (the Organization); the operator EVN-5 (a Practitioner, type ``enterer``).
3. entity: the message itself, role ``source``, by its control id MSH-10 (system
   ``https://fhir.<facility>.nhs.uk/Id/hl7v2-message-control-id``) and a display naming the
   message type.
4. Its id hashes facility, application and MSH-10: a replayed message rewrites its Provenance.
"""

from __future__ import annotations

from typing import Any

from careweave.hl7v2.errors import Hl7v2Error
from careweave.hl7v2.mapping.context import Context, reference
from careweave.hl7v2.mapping.identifiers import local_system
from careweave.hl7v2.mapping.parties import device, practitioner

__all__ = ["map_provenance"]

Json = dict[str, Any]
_AGENT_TYPE = "http://terminology.hl7.org/CodeSystem/provenance-participant-type"
_EVENT = "http://terminology.hl7.org/CodeSystem/v2-0003"


def _agent(code: str, who: str, on_behalf_of: str | None = None) -> Json:
    agent: Json = {"type": {"coding": [{"system": _AGENT_TYPE, "code": code}]}, "who": reference(who)}
    if on_behalf_of:
        agent["onBehalfOf"] = reference(on_behalf_of)
    return agent


def map_provenance(ctx: Context) -> str:
    message = ctx.message
    msh = message.msh
    targets = [reference(ref) for ref in ctx.entries.refs() if ref != ctx.organization]
    recorded = ctx.instant(msh, 7)
    if recorded is None:
        raise Hl7v2Error("no message date/time in MSH-7", "101", location=ctx.where(msh, 7))
    application = msh.get(3)
    provenance: Json = {
        "resourceType": "Provenance",
        "id": ctx.id("Provenance", application, message.control_id),
        "target": targets or [reference(ctx.organization)],
    }
    evn = message.segment("EVN")
    occurred = (ctx.date_time(evn, 6) or ctx.date_time(evn, 2)) if evn is not None else None
    if occurred:
        provenance["occurredDateTime"] = occurred
    provenance["recorded"] = recorded
    event = message.trigger_event
    if event:
        provenance["activity"] = {"coding": [{"system": _EVENT, "code": event}]}
    agents = [_agent("author", device(ctx, application), ctx.organization)]
    operator = practitioner(ctx, evn.first(5)) if evn is not None else None
    if operator:
        agents.append(_agent("enterer", operator))
    provenance["agent"] = agents
    kind = "^".join(p for p in (message.message_code, event) if p)
    provenance["entity"] = [
        {
            "role": "source",
            "what": {
                "identifier": {
                    "system": local_system(ctx.facility, "hl7v2-message-control-id"),
                    "value": message.control_id,
                },
                "display": f"HL7 v2 {kind} message {message.control_id} from {application}",
            },
        }
    ]
    return ctx.entries.put(provenance)
