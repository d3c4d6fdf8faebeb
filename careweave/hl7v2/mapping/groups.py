"""The order groups of a message: ORC/OBR/RXA with their OBX, NTE, SPM, TQ1 and RXR segments.

Rules (a forgiving reading of the ORU_R01, ORM_O01, OML_O21, MDM_T02 and VXU_V04 grammars):
1. ORC starts a group, unless the current group has an ORC but no OBR or RXA yet.
2. OBR (or RXA) joins the current group if it has none yet, else starts a new one.
3. OBX joins the current group (a group without an order is made for OBX that come first, as in
   ADT and MDM); NTE belongs to the last OBX of the group, else to the group itself.
4. SPM, TQ1 and RXR join the current group. Everything else (PID, PV1, TXA, ...) is left to the
   structure mappers.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from careweave.hl7v2.message import Message, Segment

__all__ = ["OrderGroup", "Result", "order_groups"]


@dataclass(slots=True)
class Result:
    """One OBX and the NTE segments after it."""

    obx: Segment
    notes: list[Segment] = field(default_factory=list)


@dataclass(slots=True)
class OrderGroup:
    orc: Segment | None = None
    order: Segment | None = None  # OBR or RXA
    notes: list[Segment] = field(default_factory=list)
    results: list[Result] = field(default_factory=list)
    specimens: list[Segment] = field(default_factory=list)
    timing: list[Segment] = field(default_factory=list)  # TQ1
    routes: list[Segment] = field(default_factory=list)  # RXR


def order_groups(message: Message) -> list[OrderGroup]:
    """The groups of a message, in order (rules 1-4)."""
    groups: list[OrderGroup] = []

    def current() -> OrderGroup:
        if not groups:
            groups.append(OrderGroup())
        return groups[-1]

    for seg in message.segments:
        name = seg.name
        if name == "ORC":
            group = groups[-1] if groups else None
            if group is not None and group.order is None and group.orc is None and not group.results:
                group.orc = seg
            else:
                groups.append(OrderGroup(orc=seg))
        elif name in ("OBR", "RXA"):
            group = groups[-1] if groups else None
            if group is not None and group.order is None and not group.results:
                group.order = seg
            else:
                groups.append(OrderGroup(order=seg))
        elif name == "OBX":
            current().results.append(Result(seg))
        elif name == "NTE" and groups:
            group = groups[-1]
            (group.results[-1].notes if group.results else group.notes).append(seg)
        elif name == "SPM":
            current().specimens.append(seg)
        elif name == "TQ1":
            current().timing.append(seg)
        elif name == "RXR":
            current().routes.append(seg)
    return groups
