"""OML_O21 (laboratory order, v2.5+) -> ServiceRequest, Specimen (the IG's OML_O21 map).

Rules:
1. As ORM_O01: ORC/OBR (with TQ1 timing and priority) -> ServiceRequest; SPM -> Specimen;
   OBX -> Observation.
"""

from __future__ import annotations

from careweave.hl7v2.mapping.context import Context
from careweave.hl7v2.mapping.orm_o01 import map_orders

__all__ = ["map_oml_o21"]


def map_oml_o21(ctx: Context) -> None:
    map_orders(ctx)
