"""Resource -> IndexRows for every search parameter of its type.

Interim: only ``identifier`` token parameters are extracted; the FHIRPath-driven extraction of every
parameter replaces this (search issue).
"""

from __future__ import annotations

from typing import Any

from careweave.search.index import IndexRows
from careweave.search.registry import SearchParamRegistry

__all__ = ["Indexer"]


class Indexer:
    def __init__(self, registry: SearchParamRegistry) -> None:
        self._registry = registry

    def index(self, resource: dict[str, Any]) -> IndexRows:
        rows = IndexRows()
        type_ = resource.get("resourceType", "")
        param = self._registry.get(type_, "identifier")
        identifiers = resource.get("identifier")
        if param is not None and param.type == "token" and identifiers is not None:
            items = identifiers if isinstance(identifiers, list) else [identifiers]
            for ident in items:
                if isinstance(ident, dict) and "value" in ident:
                    rows.tokens.append((param.key, ident.get("system"), ident["value"]))
        return rows
