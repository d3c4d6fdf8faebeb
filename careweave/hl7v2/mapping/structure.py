"""Which mapper a message goes to, and the header checks that come first.

Rules:
1. Header (AR when it fails, category UNSUPPORTED_MEDIA): MSH-9.1 message type and MSH-10
   control id are required (101); MSH-11 processing id, when given, is P, T or D (table 0103;
   202); MSH-12 version, when given, is one of :data:`~careweave.hl7v2.tables.VERSIONS` (203).
2. The structure is MSH-9.3; when it is empty, or names a structure careweave does not map, the
   trigger-event table (:data:`~careweave.hl7v2.tables.EVENT_STRUCTURE`) decides. No mapper:
   200 (unknown message type) or 201 (known type, unknown event).
3. :data:`MAPPERS` is the table structure -> mapper: one module per structure.
"""

from __future__ import annotations

from careweave.errors import Category
from careweave.hl7v2.errors import Hl7v2Error, Location
from careweave.hl7v2.mapping.adt_a01 import map_adt_a01
from careweave.hl7v2.mapping.adt_a02 import map_adt_a02
from careweave.hl7v2.mapping.adt_a03 import map_adt_a03
from careweave.hl7v2.mapping.adt_a05 import map_adt_a05
from careweave.hl7v2.mapping.adt_a11 import map_adt_a11
from careweave.hl7v2.mapping.adt_a39 import map_adt_a39
from careweave.hl7v2.mapping.context import Mapper
from careweave.hl7v2.mapping.mdm_t02 import map_mdm_t02
from careweave.hl7v2.mapping.oml_o21 import map_oml_o21
from careweave.hl7v2.mapping.orm_o01 import map_orm_o01
from careweave.hl7v2.mapping.oru_r01 import map_oru_r01
from careweave.hl7v2.mapping.siu_s12 import map_siu_s12
from careweave.hl7v2.mapping.vxu_v04 import map_vxu_v04
from careweave.hl7v2.message import Message
from careweave.hl7v2.tables import EVENT_STRUCTURE, VERSIONS

__all__ = ["MAPPERS", "check_header", "structure_of"]

MAPPERS: dict[str, Mapper] = {
    "ADT_A01": map_adt_a01,
    "ADT_A02": map_adt_a02,
    "ADT_A03": map_adt_a03,
    "ADT_A05": map_adt_a05,
    "ADT_A09": map_adt_a11,
    "ADT_A11": map_adt_a11,
    "ADT_A39": map_adt_a39,
    "ORU_R01": map_oru_r01,
    "ORM_O01": map_orm_o01,
    "OML_O21": map_oml_o21,
    "SIU_S12": map_siu_s12,
    "MDM_T02": map_mdm_t02,
    "VXU_V04": map_vxu_v04,
}
_PROCESSING_IDS = frozenset({"P", "T", "D"})
_HEADER = Category.UNSUPPORTED_MEDIA


def check_header(message: Message) -> None:
    """Raise :class:`Hl7v2Error` (AR) when the header is unusable (rule 1)."""
    msh = message.msh
    if not message.message_code:
        raise Hl7v2Error("no message type in MSH-9", "101", _HEADER, Location("MSH", field=9))
    if not message.control_id:
        raise Hl7v2Error("no message control id in MSH-10", "101", _HEADER, Location("MSH", field=10))
    processing = msh.get(11).strip().upper()
    if processing and processing not in _PROCESSING_IDS:
        raise Hl7v2Error(f"unsupported processing id {processing!r}", "202", _HEADER,
                         Location("MSH", field=11))  # fmt: skip
    version = message.version.strip()
    if version and version not in VERSIONS:
        raise Hl7v2Error(f"unsupported version {version!r}", "203", _HEADER, Location("MSH", field=12))


def structure_of(message: Message) -> str:
    """The message structure careweave maps this message with (rule 2)."""
    written = message.structure.strip().upper()
    if written in MAPPERS:
        return written
    code, event = message.message_code.strip().upper(), message.trigger_event.strip().upper()
    found = EVENT_STRUCTURE.get((code, event))
    if found is not None:
        return found
    known = any(key[0] == code for key in EVENT_STRUCTURE)
    what = f"{code}^{event}" + (f"^{written}" if written else "")
    raise Hl7v2Error(
        f"careweave does not map {what} messages",
        "201" if known else "200",
        _HEADER,
        Location("MSH", field=9, component=2 if known else 1),
    )
