"""Content negotiation: which JSON flavour to answer with, and which request bodies we accept.

Rules:
1. ``_format`` wins over ``Accept``. JSON is the only format served: ``application/fhir+json``
   (default), or ``application/json`` when the client asks for exactly that.
2. A client that accepts only XML (or another format we do not serve) gets 406.
3. Request bodies must be JSON (``application/fhir+json``, ``application/json``, the DSTU2
   ``application/json+fhir``), a JSON Patch on PATCH, or a form on ``_search``; else 415.
"""

from __future__ import annotations

from careweave.errors import error

__all__ = ["FHIR_JSON", "body_kind", "response_type"]

FHIR_JSON = "application/fhir+json"
_JSON_FORMATS = {
    "json": FHIR_JSON,
    "application/json": "application/json",
    "application/fhir+json": FHIR_JSON,
    "application/json+fhir": FHIR_JSON,
}
_XML_FORMATS = {
    "xml",
    "text/xml",
    "application/xml",
    "application/fhir+xml",
    "application/xml+fhir",
}
_ACCEPT_JSON = {
    "application/fhir+json": FHIR_JSON,
    "application/json+fhir": FHIR_JSON,
    "application/json": "application/json",
    "*/*": FHIR_JSON,
    "application/*": FHIR_JSON,
    "text/html": FHIR_JSON,  # a browser: JSON is still the most useful answer
    "text/plain": FHIR_JSON,
}


def response_type(format_param: str | None, accept: str | None) -> str:
    """The media type to answer with, or a CW-1010 error (406)."""
    if format_param:
        fmt = format_param.strip().split(";")[0].strip().lower().replace(" ", "+")
        if fmt in _JSON_FORMATS:
            return _JSON_FORMATS[fmt]
        if fmt in _XML_FORMATS:
            raise error("CW-1010", "this server answers in JSON only (_format=json)")
        raise error("CW-1010", f"unknown _format {format_param!r}")
    if not accept:
        return FHIR_JSON
    best: tuple[float, str] | None = None
    for item in accept.split(","):
        media, *params = (p.strip() for p in item.split(";"))
        q = 1.0
        for param in params:
            name, _, value = param.partition("=")
            if name.strip() == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0
        found = _ACCEPT_JSON.get(media.lower())
        if found and q > 0 and (best is None or q > best[0]):
            best = (q, found)
    if best is None:
        raise error("CW-1010", f"cannot answer in any of: {accept}; this server speaks FHIR JSON")
    return best[1]


def body_kind(content_type: str | None, method: str, is_search: bool) -> str:
    """``json``, ``json-patch`` or ``form``: what the body is, or a CW-1002 error (415)."""
    media = (content_type or "").split(";")[0].strip().lower()
    if is_search and media == "application/x-www-form-urlencoded":
        return "form"
    if method == "PATCH" and media == "application/json-patch+json":
        return "json-patch"
    if media in ("", "application/fhir+json", "application/json", "application/json+fhir"):
        return "json"
    if media in _XML_FORMATS:
        raise error("CW-1002", "this server accepts FHIR JSON only, not XML")
    raise error("CW-1002", f"unsupported Content-Type {content_type!r}")
