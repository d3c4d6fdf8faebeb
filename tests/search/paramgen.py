"""Generate, from a SearchParameter's own FHIRPath expression, a resource holding a value for it and
a search value that must find it. Used to prove every parameter of every type is indexed and
searchable. Handles the expression forms the R4 definitions use: paths, ``as``/``ofType``/``as()``,
``where(resolve() is X)``, ``where(field='value')``, ``extension('url')``, unions."""

from __future__ import annotations

import re
from typing import Any

from careweave.fhir.elements import ElementModel
from careweave.search.registry import SearchParam, SearchParamRegistry, split_expression

_STEP = re.compile(
    r"\.?(?:where\((?P<where>[^()]*(?:\([^()]*\)[^()]*)*)\)"
    r"|(?:as|ofType)\((?P<cast>[A-Za-z]+)\)"
    r"|extension\('(?P<ext>[^']+)'\)"
    r"|(?P<first>first\(\))"
    r"|(?P<name>[a-zA-Z][A-Za-z0-9]*)(?:\[(?P<index>\d+)\])?)"
)
_AS = re.compile(r"^\((?P<inner>.*) as (?P<type>[A-Za-z]+)\)$")


class Unsupported(Exception):
    pass


def _steps(text: str) -> list[dict[str, str]]:
    out, pos = [], 0
    while pos < len(text):
        m = _STEP.match(text, pos)
        if m is None or m.end() == pos:
            raise Unsupported(f"cannot follow {text[pos:]!r}")
        out.append({k: v for k, v in m.groupdict().items() if v is not None})
        pos = m.end()
    return out


class Generator:
    def __init__(self, model: ElementModel, registry: SearchParamRegistry) -> None:
        self.model = model
        self.registry = registry

    def sample(self, type_: str, param: SearchParam, n: int) -> tuple[dict[str, Any], str]:
        if param.type == "composite":
            return self._composite(type_, param, n)
        for part in split_expression(param.expression or ""):
            try:
                resource: dict[str, Any] = {"resourceType": type_}
                query = self.fill(type_, resource, part, param.type, n)
                return resource, query
            except Unsupported:
                continue
        raise Unsupported(f"{type_}.{param.code}: {param.expression}")

    # -- paths ----------------------------------------------------------------------------
    def fill(self, type_: str, root: dict[str, Any], part: str, kind: str, n: int,
             context: str | None = None, root_resource: dict[str, Any] | None = None) -> str:
        part = part.strip()
        cast = None
        m = _AS.match(part)
        if m:
            part, cast = m["inner"].strip(), m["type"]
        if "|" in part and context is not None:
            part = split_expression(part)[0]
        if part.startswith("%resource."):
            return self.fill(type_, root_resource or root, f"{type_}.{part[10:]}", kind, n)
        if " as " in part or "|" in part:
            raise Unsupported(part)
        if context is None and part == f"{type_}.deceased.exists() and {type_}.deceased != false":
            root["deceasedBoolean"] = True
            return "true"
        steps = _steps(part)
        if context is None:
            if steps and steps[0].get("name") == type_:
                steps = steps[1:]
            context = type_
        if cast:
            steps.append({"cast": cast})
        return self._walk(root, context, steps, kind, n)

    def _walk(self, obj: dict[str, Any], ctx: str, steps: list[dict[str, str]], kind: str,
              n: int) -> str:
        if not steps:
            raise Unsupported("path ends at a resource")
        step = steps[0]
        if "ext" in step:
            ext = {"url": step["ext"]}
            obj.setdefault("extension", []).append(ext)
            return self._walk(ext, "Extension", steps[1:], kind, n)
        if "name" not in step:
            raise Unsupported(str(step))
        name = step["name"]
        rest = steps[1:]
        found = self.model.children(ctx).get(name)
        if found is None:
            raise Unsupported(f"{ctx}.{name}")
        type_code = found.types[0].code if found.types else "BackboneElement"
        where: list[str] = []
        casted = False
        while rest and ("cast" in rest[0] or "where" in rest[0] or "first" in rest[0]):
            if "cast" in rest[0]:
                type_code, casted = rest[0]["cast"], True
            elif "where" in rest[0]:
                where.append(rest[0]["where"])
            rest = rest[1:]
        if found.choice and not casted:
            type_code = _preferred(found.type_codes, kind)
        key = name[0].lower() + name[1:]
        if found.choice:
            key = name + type_code[0].upper() + type_code[1:]
        child_ctx = self.model.child_context(found, type_code)
        if rest:
            value: dict[str, Any] = {}
            self._apply_where(value, where)
            query = self._walk(value, child_ctx, rest, kind, n)
        else:
            value, query = self.leaf(type_code, found.types[0].target_types if found.types else (),
                                     kind, where, n, f"{ctx}.{name}")
        obj[key] = [value] if found.is_array else value
        return query

    @staticmethod
    def _apply_where(value: dict[str, Any], where: list[str]) -> None:
        for clause in where:
            m = re.fullmatch(r"\s*([a-zA-Z]+)\s*=\s*'([^']*)'\s*", clause)
            if m:
                value[m[1]] = m[2]
            elif "resolve()" not in clause:
                raise Unsupported(f"where({clause})")

    # -- leaves ---------------------------------------------------------------------------
    def leaf(self, type_code: str, targets: tuple[str, ...], kind: str, where: list[str], n: int,
             path: str) -> tuple[Any, str]:
        system = "urn:test:system"
        target = None
        for clause in where:
            m = re.search(r"resolve\(\) is ([A-Za-z]+)", clause)
            if m:
                target = m[1]
        if kind == "reference":
            t = target or next((x for x in targets if x != "Resource"), "Patient")
            if type_code == "Resource":
                return {"resourceType": t, "id": f"t{n}"}, f"{t}/t{n}"
            if type_code in ("canonical", "uri", "url"):
                return f"http://example.org/c{n}", f"http://example.org/c{n}"
            value: dict[str, Any] = {"reference": f"{t}/t{n}"}
            return value, f"{t}/t{n}"
        if kind == "token":
            code = f"c{n}"
            if type_code == "Coding":
                return {"system": system, "code": code}, f"{system}|{code}"
            if type_code == "CodeableConcept":
                return {"coding": [{"system": system, "code": code}]}, f"{system}|{code}"
            if type_code == "Identifier":
                return {"system": system, "value": code}, f"{system}|{code}"
            if type_code == "ContactPoint":
                value = {"value": code}
                self._apply_where(value, where)
                return value, code
            if type_code == "boolean":
                return True, "true"
            if type_code in ("code", "string", "id", "uri", "url", "canonical", "oid", "uuid"):
                return code, code
            raise Unsupported(f"token on {type_code}")
        if kind == "string":
            word = f"zebra{n}"
            if type_code == "HumanName":
                return {"family": word.title()}, word
            if type_code == "Address":
                return {"city": word.title()}, word
            if type_code in ("string", "markdown", "code", "uri", "id"):
                return word.title(), word
            raise Unsupported(f"string on {type_code}")
        if kind == "date":
            day = f"2001-02-{(n % 27) + 1:02d}"
            if type_code == "date":
                return day, day
            if type_code in ("dateTime", "instant"):
                return f"{day}T04:05:06Z", day
            if type_code == "Period":
                return {"start": f"{day}T01:00:00Z", "end": f"{day}T02:00:00Z"}, day
            if type_code == "Timing":
                return {"event": [f"{day}T04:05:06Z"]}, day
            if type_code == "string":
                return day, day
            raise Unsupported(f"date on {type_code}")
        if kind in ("number", "quantity"):
            v = 40 + n
            if type_code in ("integer", "positiveInt", "unsignedInt"):
                return v, f"{v}"
            if type_code == "decimal":
                return v + 0.5, f"{v + 0.5}"
            if type_code in ("Quantity", "Age", "Duration", "Distance", "Count", "SimpleQuantity"):
                q = {"value": v + 0.5, "system": "http://unitsofmeasure.org", "code": "mg"}
                query = f"{v + 0.5}" if kind == "number" else f"{v + 0.5}|http://unitsofmeasure.org|mg"
                return q, query
            if type_code == "Money":
                return {"value": v + 0.5, "currency": "GBP"}, f"{v + 0.5}|urn:iso:std:iso:4217|GBP"
            if type_code == "Range":
                q = {"value": v + 0.5, "system": "http://unitsofmeasure.org", "code": "mg"}
                return {"low": q, "high": q}, (f"ap{v + 0.5}" if kind == "number"
                                               else f"ap{v + 0.5}|http://unitsofmeasure.org|mg")
            raise Unsupported(f"{kind} on {type_code}")
        if kind == "uri":
            if type_code in ("uri", "url", "canonical", "oid", "uuid", "string", "code"):
                value_text = f"urn:uuid:00000000-0000-0000-0000-{n:012d}" if type_code == "uuid" \
                    else f"http://example.org/u{n}"
                return value_text, value_text
            raise Unsupported(f"uri on {type_code}")
        if kind == "special" and type_code == "BackboneElement":
            return {"latitude": 51.5, "longitude": -0.12}, "51.5|-0.12|10|km"
        raise Unsupported(f"{kind} on {type_code} at {path}")

    # -- composites -----------------------------------------------------------------------
    def _composite(self, type_: str, param: SearchParam, n: int) -> tuple[dict[str, Any], str]:
        focus_parts = [p for p in split_expression(param.expression or "")]
        for focus in focus_parts:
            resource: dict[str, Any] = {"resourceType": type_}
            try:
                target, ctx = self._focus(resource, type_, focus.strip())
                queries = []
                for i, component in enumerate(param.components):
                    definition = self.registry.by_url(component.definition)
                    if definition is None:
                        raise Unsupported(component.definition)
                    queries.append(self.fill(type_, target, component.expression,
                                             definition.type, n + i, context=ctx,
                                             root_resource=resource))
                return resource, "$".join(queries)
            except Unsupported:
                continue
        raise Unsupported(f"{type_}.{param.code}: {param.expression}")

    def _focus(self, resource: dict[str, Any], type_: str, focus: str) -> tuple[dict[str, Any], str]:
        if focus == type_:
            return resource, type_
        steps = _steps(focus)
        if not steps or steps[0].get("name") != type_:
            raise Unsupported(focus)
        obj, ctx = resource, type_
        for step in steps[1:]:
            name = step.get("name")
            if name is None:
                raise Unsupported(focus)
            element = self.model.children(ctx).get(name)
            if element is None:
                raise Unsupported(focus)
            child: dict[str, Any] = {}
            obj[name] = [child] if element.is_array else child
            obj, ctx = child, self.model.child_context(element, element.type_codes[0] if
                                                       element.types else "BackboneElement")
        return obj, ctx


def _preferred(codes: tuple[str, ...], kind: str) -> str:
    wanted = {
        "token": ("CodeableConcept", "Coding", "code", "boolean", "string"),
        "date": ("dateTime", "Period", "date"),
        "quantity": ("Quantity",),
        "number": ("integer", "decimal", "Quantity"),
        "reference": ("Reference", "canonical", "uri"),
        "string": ("string",),
        "uri": ("uri",),
    }.get(kind, ())
    for code in wanted:
        if code in codes:
            return code
    return codes[0]
