"""Syntactic checks for code systems defined outside FHIR, which cannot be expanded here.

Rules:
1. Each check is *sound*: it rejects only what cannot be a code of that system (a wrong shape); it
   does not prove a code exists (``xx-YY`` passes the BCP-47 check).
2. Covered: BCP-47 language tags (RFC 5646 shape), BCP-13 MIME types (RFC 6838 names with
   parameters), ISO 4217 currency codes (three capital letters), UCUM units (printable ASCII
   without spaces, balanced brackets and braces). Other external systems (SNOMED CT, LOINC,
   ICD...) have no check: codes from them under a required binding are not judged.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping

__all__ = ["BCP13", "BCP47", "ISO4217", "SYNTAX", "UCUM"]

BCP47 = "urn:ietf:bcp:47"
BCP13 = "urn:ietf:bcp:13"
ISO4217 = "urn:iso:std:iso:4217"
UCUM = "http://unitsofmeasure.org"

_LANGUAGE = re.compile(
    r"(?:[a-zA-Z]{2,3}(?:-[a-zA-Z]{3}){0,3}|[a-zA-Z]{4,8})"  # language, extlang
    r"(?:-[a-zA-Z]{4})?"  # script
    r"(?:-(?:[a-zA-Z]{2}|[0-9]{3}))?"  # region
    r"(?:-(?:[a-zA-Z0-9]{5,8}|[0-9][a-zA-Z0-9]{3}))*"  # variants
    r"(?:-[0-9a-wy-zA-WY-Z](?:-[a-zA-Z0-9]{2,8})+)*"  # extensions
    r"(?:-x(?:-[a-zA-Z0-9]{1,8})+)?"  # private use
    r"|x(?:-[a-zA-Z0-9]{1,8})+"
    r"|i-[a-zA-Z]{2,8}(?:-[a-zA-Z]{2,8})?"  # grandfathered irregular forms
)
_RESTRICTED_NAME = r"[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}"
_MIME = re.compile(
    rf"{_RESTRICTED_NAME}/{_RESTRICTED_NAME}"
    r"(?:\s*;\s*[A-Za-z0-9!#$&^_.+-]+=(?:[^\s;\"]+|\"[^\"]*\"))*"
)
_CURRENCY = re.compile(r"[A-Z]{3}")
_UCUM_CHARS = re.compile(r"[!-~]+")


def _is_language(code: str) -> bool:
    return _LANGUAGE.fullmatch(code) is not None


def _is_mime_type(code: str) -> bool:
    return _MIME.fullmatch(code) is not None


def _is_currency(code: str) -> bool:
    return _CURRENCY.fullmatch(code) is not None


def _is_ucum(code: str) -> bool:
    if _UCUM_CHARS.fullmatch(code) is None:
        return False
    depth = {"[": 0, "{": 0, "(": 0}
    closing = {"]": "[", "}": "{", ")": "("}
    for char in code:
        if char in depth:
            depth[char] += 1
        elif char in closing:
            depth[closing[char]] -= 1
            if depth[closing[char]] < 0:
                return False
    return not any(depth.values())


SYNTAX: Mapping[str, Callable[[str], bool]] = {
    BCP47: _is_language,
    BCP13: _is_mime_type,
    ISO4217: _is_currency,
    UCUM: _is_ucum,
}
