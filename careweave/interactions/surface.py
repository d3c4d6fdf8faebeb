"""The REST surface as data: (method, URL shape) -> FHIR interaction code(s), space-separated.

``dispatch.py`` binds a handler to every row and ``capabilities.py`` describes every row; a test
keeps the two in step, so the CapabilityStatement says exactly what is served.
"""

from __future__ import annotations

__all__ = ["INSTANCE_LEVEL", "SURFACE", "SYSTEM_LEVEL", "TYPE_LEVEL"]

SURFACE: dict[tuple[str, str], str] = {
    ("GET", "metadata"): "capabilities",
    ("GET", ""): "search-system",
    ("POST", ""): "transaction batch",
    ("POST", "_search"): "search-system",
    ("GET", "type/id/compartment"): "search-type",
    ("GET", "_history"): "history-system",
    ("POST", "type"): "create",
    ("GET", "type"): "search-type",
    ("POST", "type/_search"): "search-type",
    ("PUT", "type"): "update",  # conditional update
    ("DELETE", "type"): "delete",  # conditional delete
    ("GET", "type/_history"): "history-type",
    ("GET", "type/id"): "read",
    ("PUT", "type/id"): "update",
    ("PATCH", "type/id"): "patch",
    ("DELETE", "type/id"): "delete",
    ("GET", "type/id/_history"): "history-instance",
    ("GET", "type/id/_history/vid"): "vread",
}

SYSTEM_LEVEL = frozenset({"transaction", "batch", "search-system", "history-system"})
TYPE_LEVEL = frozenset({"create", "search-type", "history-type"})
INSTANCE_LEVEL = frozenset({"read", "vread", "update", "patch", "delete", "history-instance"})
