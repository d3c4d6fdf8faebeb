"""The transport-free request: what an interaction needs to know, nothing of HTTP."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from careweave.store.base import Tenant

__all__ = ["Request"]


@dataclass(slots=True)
class Request:
    """One FHIR interaction as the client asked for it. Treated as immutable (copy with
    ``dataclasses.replace``); not frozen only because frozen construction costs ~6x on the read
    path.

    ``headers`` holds the FHIR-relevant request headers with lower-case names (``if-match``,
    ``if-none-exist``, ``if-none-match``, ``if-modified-since``, ``prefer``, ``content-type``).
    ``base_url`` is the service base the client used (``http://host/fhir`` or ``.../t/x/fhir``).
    """

    tenant: Tenant
    method: str
    type: str | None = None
    id: str | None = None
    version: str | None = None
    operation: str | None = None  # "$validate" ...
    compartment: str | None = None  # /Patient/1/Observation -> "Observation"
    params: tuple[tuple[str, str], ...] = ()
    body: bytes | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    base_url: str = ""
    path: str = ""  # the request path after the base, for self links

    def header(self, name: str) -> str | None:
        return self.headers.get(name)

    def param(self, name: str) -> str | None:
        for key, value in self.params:
            if key == name:
                return value
        return None

    def prefer(self, token: str) -> str | None:
        """The value of a ``Prefer`` preference (``return``, ``handling``, ``respond-async``)."""
        raw = self.headers.get("prefer")
        if not raw:
            return None
        for part in raw.split(","):
            for item in part.split(";"):
                name, _, value = item.strip().partition("=")
                if name.strip().lower() == token:
                    return value.strip().strip('"') or ""
        return None
