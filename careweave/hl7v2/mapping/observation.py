"""OBX -> Observation (the IG's OBX[Observation] map), shared by ORU, ADT, ORM/OML and VXU.

Rules:
1. OBX-2 selects value[x]: NM -> valueQuantity (units OBX-6; UCUM code and system when OBX-6.3
   says UCUM; a value that is not a number is kept as valueString rather than refused); SN ->
   Quantity with comparator, Range (``-``), Ratio (``:`` or ``/``), else valueString; CE, CWE,
   CNE, CF -> valueCodeableConcept; ST, TX, FT -> valueString (repetitions are lines, joined
   with a new line); DT, DTM, TS -> valueDateTime; TM -> valueTime; anything else ->
   valueString. ED (encapsulated data) is not an Observation value in R4: callers put it in
   DiagnosticReport.presentedForm or DocumentReference.content (:func:`attachment`).
2. A repeating OBX-5 of a non-text type becomes one Observation whose components each carry the
   OBX-3 code and one value.
3. status OBX-11 (table 0085; empty or unknown: ``unknown``), code OBX-3 (required: 101),
   referenceRange OBX-7 (``low-high``, ``<high``, ``>low``, else text), interpretation OBX-8
   (table 0078 -> v3 ObservationInterpretation), effective OBX-14 else the caller's, notes from
   the NTE segments that follow.
4. The id hashes the caller's scope (e.g. the filler order number), OBX-3, OBX-4 (sub-id) and
   the occurrence of that code in the scope, so a corrected result replaces the first one.
"""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass
from typing import Any

from careweave.hl7v2.errors import Hl7v2Error
from careweave.hl7v2.mapping import datatypes
from careweave.hl7v2.mapping.context import Context, reference
from careweave.hl7v2.mapping.groups import Result
from careweave.hl7v2.message import Repetition, Segment
from careweave.hl7v2.syntax import Syntax
from careweave.hl7v2.tables import ABNORMAL_FLAG, OBSERVATION_STATUS

__all__ = ["ObservationScope", "attachment", "map_observation", "map_results", "plain_text"]

Json = dict[str, Any]
_UCUM = "http://unitsofmeasure.org"
_INTERPRETATION = "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation"
_V2_0078 = "http://terminology.hl7.org/CodeSystem/v2-0078"
_CATEGORY = "http://terminology.hl7.org/CodeSystem/observation-category"
_RANGE = re.compile(r"\s*(-?\d+(?:\.\d+)?)\s*-\s*(-?\d+(?:\.\d+)?)\s*\Z", re.ASCII)
_BOUND = re.compile(r"\s*([<>])=?\s*(-?\d+(?:\.\d+)?)\s*\Z", re.ASCII)
_TEXT_TYPES = frozenset({"ST", "TX", "FT"})
_COMPARATORS = {"<": "<", ">": ">", "<=": "<=", ">=": ">="}


@dataclass(frozen=True, slots=True)
class ObservationScope:
    """What the caller knows about the OBX's context (rule 4)."""

    key: tuple[str, ...]
    category: str | None = None
    effective: str | None = None
    issued: str | None = None
    based_on: str | None = None
    specimen: str | None = None


def plain_text(rep: Repetition, syntax: Syntax) -> str:
    """A repetition as text, components joined back with their separators."""
    return syntax.component.join(syntax.subcomponent.join(c) for c in rep.components)


def attachment(rep: Repetition) -> Json | None:
    """ED (source^type^subtype^encoding^data) -> Attachment, or None when it holds no data."""
    kind, subtype, encoding, data = rep.get(2), rep.get(3), rep.get(4).upper(), rep.get(5)
    if not data:
        return None
    if encoding in ("BASE64", "B64"):
        try:
            payload = base64.b64decode(data, validate=True)
        except (binascii.Error, ValueError):
            return None
    elif encoding == "HEX":
        try:
            payload = bytes.fromhex(data)
        except ValueError:
            return None
    else:
        payload = data.encode("utf-8")
    content = f"{kind}/{subtype}".lower() if kind and subtype else "application/octet-stream"
    if kind.upper() in ("APPLICATION", "TEXT", "IMAGE", "AUDIO", "VIDEO") and not subtype:
        content = "application/octet-stream"
    return {"contentType": content, "data": base64.b64encode(payload).decode("ascii")}


def _units(obx: Segment) -> Json:
    unit = obx.first(6)
    code, text, system = unit.get(1), unit.get(2), unit.get(3).upper()
    out: Json = {}
    if text or code:
        out["unit"] = text or code
    if code and system == "UCUM":
        out["system"] = _UCUM
        out["code"] = code
    return out


def _quantity(text: str, units: Json) -> Json | None:
    value = datatypes.number(text)
    return None if value is None else {"value": value, **units}


def _structured_numeric(rep: Repetition, units: Json) -> tuple[str, Any] | None:
    comparator, first, separator, second = rep.get(1), rep.get(2), rep.get(3), rep.get(4)
    low, high = _quantity(first, units), _quantity(second, units)
    if separator in ("-", "") and low and high:
        return "valueRange", {"low": low, "high": high}
    if separator in (":", "/") and low and high:
        return "valueRatio", {"numerator": {"value": low["value"]}, "denominator": {"value": high["value"]}}
    if not separator and not second and low:
        if comparator in _COMPARATORS:
            return "valueQuantity", {"value": low["value"], "comparator": _COMPARATORS[comparator], **units}
        if comparator in ("", "="):
            return "valueQuantity", low
    return None


def _value(ctx: Context, obx: Segment, kind: str, rep: Repetition) -> tuple[str, Any] | None:
    syntax = ctx.message.syntax
    if kind == "NM":
        quantity = _quantity(rep.get(1), _units(obx))
        return ("valueQuantity", quantity) if quantity else ("valueString", plain_text(rep, syntax))
    if kind == "SN":
        found = _structured_numeric(rep, _units(obx))
        return found or ("valueString", "".join(c[0] for c in rep.components if c))
    if kind in ("CE", "CWE", "CNE", "CF"):
        concept = datatypes.codeable(rep)
        return ("valueCodeableConcept", concept) if concept else None
    if kind in ("DT", "DTM", "TS"):
        where = ctx.where(obx, 5)
        when = datatypes.date_time(rep.get(1), ctx.options.timezone, where)
        return ("valueDateTime", when) if when else None
    if kind == "TM":
        digits = rep.get(1)[:6]
        if len(digits) >= 4 and digits.isdecimal():
            padded = digits.ljust(6, "0")
            return "valueTime", f"{padded[:2]}:{padded[2:4]}:{padded[4:6]}"
    text = plain_text(rep, syntax)
    return ("valueString", text) if text else None


def _values(ctx: Context, obx: Segment) -> list[tuple[str, Any]]:
    kind = obx.get(2).strip().upper()
    reps = obx.repetitions(5)
    if kind in _TEXT_TYPES:
        text = "\n".join(plain_text(r, ctx.message.syntax) for r in reps)
        return [("valueString", text)] if text else []
    return [v for v in (_value(ctx, obx, kind, r) for r in reps) if v]


def _reference_range(obx: Segment, units: Json) -> Json | None:
    text = obx.get(7)
    if not text:
        return None
    low_high = _RANGE.match(text)
    if low_high:
        low, high = (_quantity(t, units) for t in low_high.groups())
        return {"low": low, "high": high}
    bound = _BOUND.match(text)
    if bound:
        side = "high" if bound.group(1) == "<" else "low"
        return {side: _quantity(bound.group(2), units)}
    return {"text": text}


def _interpretation(obx: Segment) -> list[Json]:
    out = []
    for rep in obx.repetitions(8):
        code = rep.get(1).strip()
        if code:
            system = _INTERPRETATION if code in ABNORMAL_FLAG else _V2_0078
            out.append({"coding": [{"system": system, "code": ABNORMAL_FLAG.get(code, code)}]})
    return out


def map_observation(
    ctx: Context, obx: Segment, notes: tuple[Segment, ...], scope: ObservationScope, occurrence: int
) -> str:
    """Put the Observation of one OBX (rules 1-4); returns its reference."""
    code = datatypes.codeable(obx.first(3))
    if code is None:
        raise Hl7v2Error("OBX-3 (observation identifier) is empty", "101", location=ctx.where(obx, 3))
    key = (obx.get(3, 3), obx.get(3, 1) or obx.get(3, 2), obx.get(4), str(occurrence))
    observation: Json = {"resourceType": "Observation", "id": ctx.id("Observation", *scope.key, *key)}
    if scope.based_on:
        observation["basedOn"] = [reference(scope.based_on)]
    observation["status"] = OBSERVATION_STATUS.get(obx.get(11).strip().upper(), "unknown")
    if scope.category:
        observation["category"] = [{"coding": [{"system": _CATEGORY, "code": scope.category}]}]
    observation["code"] = code
    observation["subject"] = reference(ctx.patient)
    if ctx.encounter:
        observation["encounter"] = reference(ctx.encounter)
    effective = ctx.date_time(obx, 14) or scope.effective
    if effective:
        observation["effectiveDateTime"] = effective
    if scope.issued:
        observation["issued"] = scope.issued
    _put_values(ctx, obx, observation, code)
    interpretation = _interpretation(obx)
    if interpretation:
        observation["interpretation"] = interpretation
    comments = [{"text": n.get(3)} for n in notes if n.get(3)]
    if comments:
        observation["note"] = comments
    if scope.specimen:
        observation["specimen"] = reference(scope.specimen)
    ranges = _reference_range(obx, _units(obx))
    if ranges:
        observation["referenceRange"] = [ranges]
    return ctx.entries.put(observation)


def _put_values(ctx: Context, obx: Segment, observation: Json, code: Json) -> None:
    values = _values(ctx, obx)
    if len(values) == 1:
        key, value = values[0]
        observation[key] = value
    elif values:
        observation["component"] = [{"code": code, key: value} for key, value in values]


def map_results(ctx: Context, results: list[Result], scope: ObservationScope) -> tuple[list[str], list[Json]]:
    """Map a group's OBX: (Observation references, ED attachments) in order (rules 1, 4)."""
    refs: list[str] = []
    forms: list[Json] = []
    seen: dict[tuple[str, str, str], int] = {}
    for result in results:
        obx = result.obx
        if obx.get(2).strip().upper() == "ED":
            forms.extend(a for a in (attachment(rep) for rep in obx.repetitions(5)) if a)
            continue
        key = (obx.get(3, 3), obx.get(3, 1) or obx.get(3, 2), obx.get(4))
        seen[key] = seen.get(key, 0) + 1
        refs.append(map_observation(ctx, obx, tuple(result.notes), scope, seen[key]))
    return refs, forms
