"""FHIR values -> index rows, one function per search parameter type (search.html, section 3.1.1).

Each function takes the parameter key, a value as FHIR JSON and its FHIR type (as the FHIRPath
engine reports it) and appends rows. Values of types a parameter type cannot use are skipped.

Rules:
1. token: Coding (system, code; display for :text), CodeableConcept (each coding; text and displays
   for :text), Identifier (system, value; type for :of-type), ContactPoint (value), code (with the
   code system its required binding implies, when there is exactly one), boolean, and plain strings.
2. reference: relative ``Type/id[/_history/v]`` as (type, id); absolute URLs keep the URL and, when
   they end in ``Type/id``, that too; canonical URLs without and with ``|version``;
   Reference.identifier as a token under ``<key>:identifier``.
3. date: date/dateTime/instant at their precision, Period (open ends are infinite), Timing events
   and bounds. number: numbers as points, Range as [low, high]. quantity: Quantity and its
   specialisations by (system, code), also by unit when there is no code; Money by currency.
4. :func:`emitter` gives the function ``(rows, value)`` for one parameter, one FHIR type and one
   element path, for the indexer's compiled accessors: the same rows as the function for the
   parameter's type, with what the type and path decide settled once (the system a ``code``
   implies, the branch a CodeableConcept takes).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from decimal import Decimal
from typing import Any

from careweave.search.index import IndexRows
from careweave.search.values import (
    NEG_INF,
    POS_INF,
    memo_date_range,
    memo_normalise,
    normalise,
    reference_of,
    soundex,
)

__all__ = ["EXTRACTORS", "MAX_INDEX_STRING", "Emit", "Extractor", "emitter"]

Extractor = Callable[[IndexRows, str, Any, str, "Context"], None]
Emit = Callable[[IndexRows, Any], None]

_STRING_PARTS = {
    "HumanName": ("family", "given", "prefix", "suffix", "text"),
    "Address": ("line", "city", "district", "state", "postalCode", "country", "text"),
}
_QUANTITY_TYPES = frozenset(
    {"Quantity", "Age", "Duration", "Distance", "Count", "SimpleQuantity", "MoneyQuantity"}
)
_NUMBER_TYPES = frozenset({"integer", "decimal", "positiveInt", "unsignedInt", "integer64"})
_DATE_TYPES = frozenset({"date", "dateTime", "instant"})
_STRINGISH = frozenset(
    {"string", "markdown", "code", "id", "uri", "url", "canonical", "oid", "uuid", "xhtml"}
)
_MAX_STRING = 512
MAX_INDEX_STRING = _MAX_STRING  # index strings are cut to this; search values are cut the same way


class Context:
    """What extraction needs beyond the value: the code system implied by a code's binding."""

    def __init__(self, code_systems: Mapping[str, str] | None = None) -> None:
        self.code_systems = code_systems or {}  # element path -> system of its required binding

    def system_for_code(self, element_path: str | None) -> str | None:
        return self.code_systems.get(element_path or "")


def _strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, list):
        return [v for v in value if isinstance(v, str)]
    return []


# -- string ----------------------------------------------------------------------------------
def string_rows(rows: IndexRows, key: str, value: Any, type_: str, ctx: Context) -> None:
    if isinstance(value, str):
        texts = [value]
    elif isinstance(value, dict):
        parts = _STRING_PARTS.get(type_)
        texts = []
        if parts is None:
            texts = [v for v in value.values() if isinstance(v, str)]
        else:
            for part in parts:
                texts.extend(_strings(value.get(part)))
    else:
        return
    phonetic = key.endswith(".phonetic")
    for text in texts:
        if phonetic:  # one Soundex code per word of the name
            for word in text.split():
                code = soundex(word)
                if code:
                    rows.strings.append((key, code, word[:_MAX_STRING], 0))
            continue
        norm = normalise(text)
        if norm:
            rows.strings.append((key, norm[:_MAX_STRING], text[:_MAX_STRING], 0))


# -- token -----------------------------------------------------------------------------------
def _coding(rows: IndexRows, key: str, coding: Any) -> None:
    if not isinstance(coding, dict):
        return
    code = coding.get("code")
    system = coding.get("system")
    if isinstance(code, str) or isinstance(system, str):
        rows.tokens.append(
            (key, system if isinstance(system, str) else None, code if isinstance(code, str) else None, 0)
        )
    display = coding.get("display")
    if isinstance(display, str) and display.strip():
        rows.token_texts.append((key, memo_normalise(display)))


def token_rows(
    rows: IndexRows, key: str, value: Any, type_: str, ctx: Context, element_path: str | None = None
) -> None:
    if type_ == "Coding":
        _coding(rows, key, value)
    elif type_ == "CodeableConcept" and isinstance(value, dict):
        _codeable(rows, key, value)
    elif type_ == "Identifier" and isinstance(value, dict):
        _identifier(rows, key, value)
    elif type_ == "ContactPoint" and isinstance(value, dict):
        if isinstance(value.get("value"), str):
            rows.tokens.append((key, None, value["value"], 0))
    elif isinstance(value, bool):
        rows.tokens.append((key, None, "true" if value else "false", 0))
    elif type_ == "code" and isinstance(value, str):
        rows.tokens.append((key, ctx.system_for_code(element_path), value, 0))
    elif isinstance(value, str):
        rows.tokens.append((key, None, value, 0))
    elif isinstance(value, (int, Decimal, float)) and not isinstance(value, bool):
        rows.tokens.append((key, None, str(value), 0))


def _codeable(rows: IndexRows, key: str, value: dict[str, Any]) -> None:
    for coding in value.get("coding", ()):
        _coding(rows, key, coding)
    text = value.get("text")
    if isinstance(text, str) and text.strip():
        rows.token_texts.append((key, memo_normalise(text)))


def _identifier(rows: IndexRows, key: str, ident: dict[str, Any]) -> None:
    system, val = ident.get("system"), ident.get("value")
    if isinstance(val, str) or isinstance(system, str):
        rows.tokens.append(
            (key, system if isinstance(system, str) else None, val if isinstance(val, str) else None, 0)
        )
    kind = ident.get("type")
    if isinstance(kind, dict) and isinstance(val, str):
        for coding in kind.get("coding", ()):
            if isinstance(coding, dict) and isinstance(coding.get("code"), str):
                of_type = f"{coding.get('system') or ''}|{coding['code']}"
                rows.tokens.append((f"{key}:of-type", of_type, val, 0))
        text = kind.get("text")
        if isinstance(text, str) and text.strip():
            rows.token_texts.append((key, memo_normalise(text)))


# -- reference -------------------------------------------------------------------------------
def reference_rows(rows: IndexRows, key: str, value: Any, type_: str, ctx: Context) -> None:
    if isinstance(value, dict) and isinstance(value.get("resourceType"), str):
        # an embedded resource (Bundle.entry[0].resource for Bundle?composition=): its own type/id
        if isinstance(value.get("id"), str):
            rows.references.append((key, value["resourceType"], value["id"], None, 0))
        return
    if type_ == "Reference" and isinstance(value, dict):
        ref = value.get("reference")
        if isinstance(ref, str):
            _reference_string(rows, key, ref)
        ident = value.get("identifier")
        if isinstance(ident, dict):
            system, val = ident.get("system"), ident.get("value")
            if isinstance(val, str):
                rows.tokens.append((f"{key}:identifier", system if isinstance(system, str) else None, val, 0))
    elif isinstance(value, str):
        if type_ == "canonical" or "|" in value:
            base, _, version = value.partition("|")
            rows.references.append((key, None, None, base, 0))
            if version:
                rows.references.append((key, None, None, value, 0))
        else:
            _reference_string(rows, key, value)


def _reference_string(rows: IndexRows, key: str, ref: str) -> None:
    if ref.startswith("#"):
        return  # contained: not searchable outside its container
    parsed = reference_of(ref)
    if parsed is None:
        rows.references.append((key, None, None, ref, 0))
    elif parsed.base is None:
        rows.references.append((key, parsed.type, parsed.id, None, 0))
    else:
        rows.references.append((key, parsed.type, parsed.id, ref.split("/_history/")[0], 0))


# -- date ------------------------------------------------------------------------------------
def date_rows(rows: IndexRows, key: str, value: Any, type_: str, ctx: Context) -> None:
    if isinstance(value, str):
        found = memo_date_range(value)
        if found is not None:
            rows.dates.append((key, found[0], found[1], 0))
    elif type_ == "Period" and isinstance(value, dict):
        start = memo_date_range(value["start"]) if isinstance(value.get("start"), str) else None
        end = memo_date_range(value["end"]) if isinstance(value.get("end"), str) else None
        if start is not None or end is not None:
            rows.dates.append((key, start[0] if start else NEG_INF, end[1] if end else POS_INF, 0))
    elif type_ == "Timing" and isinstance(value, dict):
        for event in _strings(value.get("event")):
            date_rows(rows, key, event, "dateTime", ctx)
        repeat = value.get("repeat")
        if isinstance(repeat, dict) and isinstance(repeat.get("boundsPeriod"), dict):
            date_rows(rows, key, repeat["boundsPeriod"], "Period", ctx)


# -- number and quantity ---------------------------------------------------------------------
def _num(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float, Decimal)):
        return float(value)
    return None


def number_rows(rows: IndexRows, key: str, value: Any, type_: str, ctx: Context) -> None:
    if type_ in _NUMBER_TYPES or not isinstance(value, dict):
        n = _num(value)
        if n is not None:
            rows.numbers.append((key, n, n, 0))
    elif type_ == "Range":
        low = _num(value.get("low", {}).get("value")) if isinstance(value.get("low"), dict) else None
        high = _num(value.get("high", {}).get("value")) if isinstance(value.get("high"), dict) else None
        if low is not None or high is not None:
            rows.numbers.append(
                (key, low if low is not None else -1e308, high if high is not None else 1e308, 0)
            )
    elif type_ in _QUANTITY_TYPES:
        n = _num(value.get("value"))
        if n is not None:
            rows.numbers.append((key, n, n, 0))


def quantity_rows(rows: IndexRows, key: str, value: Any, type_: str, ctx: Context) -> None:
    if not isinstance(value, dict):
        n = _num(value)
        if n is not None:
            rows.quantities.append((key, None, None, n, n, 0))
        return
    if type_ == "Money":
        n = _num(value.get("value"))
        if n is not None:
            currency = value.get("currency")
            rows.quantities.append(
                (key, "urn:iso:std:iso:4217", currency if isinstance(currency, str) else None, n, n, 0)
            )
        return
    if type_ == "Range":
        low, high = value.get("low"), value.get("high")
        unit_of = low if isinstance(low, dict) else high if isinstance(high, dict) else {}
        lo = _num(low.get("value")) if isinstance(low, dict) else None
        hi = _num(high.get("value")) if isinstance(high, dict) else None
        if lo is None and hi is None:
            return
        lo_v, hi_v = lo if lo is not None else -1e308, hi if hi is not None else 1e308
        _quantity_units(rows, key, unit_of, lo_v, hi_v)
        return
    n = _num(value.get("value"))
    if n is not None:
        _quantity_units(rows, key, value, n, n)


def _quantity_units(rows: IndexRows, key: str, q: dict[str, Any], lo: float, hi: float) -> None:
    system = q.get("system") if isinstance(q.get("system"), str) else None
    code = q.get("code") if isinstance(q.get("code"), str) else None
    unit = q.get("unit") if isinstance(q.get("unit"), str) else None
    rows.quantities.append((key, system, code, lo, hi, 0))
    if unit is not None and unit != code:
        rows.quantities.append((key, None, unit, lo, hi, 0))


# -- uri -------------------------------------------------------------------------------------
def uri_rows(rows: IndexRows, key: str, value: Any, type_: str, ctx: Context) -> None:
    if isinstance(value, str):
        rows.uris.append((key, value, 0))


def special_rows(rows: IndexRows, key: str, value: Any, type_: str, ctx: Context) -> None:
    """``near`` on Location.position: latitude and longitude."""
    if isinstance(value, dict):
        lat, lon = _num(value.get("latitude")), _num(value.get("longitude"))
        if lat is not None and lon is not None:
            rows.geo.append((key, lat, lon))


EXTRACTORS: dict[str, Callable[..., None]] = {
    "string": string_rows,
    "token": token_rows,
    "reference": reference_rows,
    "date": date_rows,
    "number": number_rows,
    "quantity": quantity_rows,
    "uri": uri_rows,
    "special": special_rows,
}


# -- emitters (rule 4) ---------------------------------------------------------------------------
def emitter(kind: str, key: str, type_: str, element_path: str | None, ctx: Context) -> Emit | None:
    """The rows of a value of FHIR type ``type_`` found at ``element_path`` for the parameter
    ``key`` of type ``kind``: ``EXTRACTORS[kind](rows, key, value, type_, ctx)``, with the branches
    the type decides taken once. None when parameters of that type have no rows."""
    if kind == "token":
        return _token_emitter(key, type_, element_path, ctx)
    if kind == "reference" and type_ == "Reference":
        return _reference_emitter(key, ctx)
    if kind == "date" and type_ in _DATE_TYPES:
        return _date_emitter(key, type_, ctx)
    extract = EXTRACTORS.get(kind)
    if extract is None:
        return None

    def emit(rows: IndexRows, value: Any) -> None:
        extract(rows, key, value, type_, ctx)

    return emit


def _token_emitter(key: str, type_: str, element_path: str | None, ctx: Context) -> Emit:
    def general(rows: IndexRows, value: Any) -> None:
        token_rows(rows, key, value, type_, ctx, element_path)

    if type_ == "Coding":

        def coding(rows: IndexRows, value: Any) -> None:
            _coding(rows, key, value)

        return coding
    if type_ in ("CodeableConcept", "Identifier"):
        of_dict = _codeable if type_ == "CodeableConcept" else _identifier

        def concept(rows: IndexRows, value: Any) -> None:
            if value.__class__ is dict:
                of_dict(rows, key, value)
            else:
                general(rows, value)

        return concept
    if type_ in ("ContactPoint", "boolean"):
        return general
    if type_ == "code":
        system = ctx.system_for_code(element_path)

        def code(rows: IndexRows, value: Any) -> None:
            if value.__class__ is str:
                rows.tokens.append((key, system, value, 0))
            else:
                general(rows, value)

        return code

    def text(rows: IndexRows, value: Any) -> None:  # any other type: a string is its own code
        if value.__class__ is str:
            rows.tokens.append((key, None, value, 0))
        else:
            general(rows, value)

    return text


def _reference_emitter(key: str, ctx: Context) -> Emit:
    identifier_key = f"{key}:identifier"

    def reference(rows: IndexRows, value: Any) -> None:
        if value.__class__ is not dict or "resourceType" in value:
            reference_rows(rows, key, value, "Reference", ctx)
            return
        ref = value.get("reference")
        if isinstance(ref, str):
            _reference_string(rows, key, ref)
        ident = value.get("identifier")
        if isinstance(ident, dict):
            system, val = ident.get("system"), ident.get("value")
            if isinstance(val, str):
                rows.tokens.append((identifier_key, system if isinstance(system, str) else None, val, 0))

    return reference


def _date_emitter(key: str, type_: str, ctx: Context) -> Emit:
    def instant(rows: IndexRows, value: Any) -> None:
        if value.__class__ is str:
            found = memo_date_range(value)
            if found is not None:
                rows.dates.append((key, found[0], found[1], 0))
        else:
            date_rows(rows, key, value, type_, ctx)

    return instant


def is_stringish(type_: str) -> bool:
    return type_ in _STRINGISH or type_ in _DATE_TYPES
