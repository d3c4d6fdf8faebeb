"""FHIR's additions to FHIRPath: extension, hasValue, getValue, resolve, memberOf, conformsTo,
htmlChecks; elementDefinition, slice and checkModifiers are refused at compile time.

Rules:
1. ``resolve()`` reads a Reference's ``reference`` (or a canonical/uri string). ``#id`` finds the
   contained resource of %rootResource (``#`` alone is %rootResource itself). Other references go
   to the caller's resolver; without one, a reference ending in ``Type/id`` (optionally
   ``/_history/n``) resolves to the stub ``{"resourceType": Type, "id": id}``.
2. ``memberOf()`` asks the engine's terminology hook and gives empty without one.
3. ``conformsTo()`` asks the engine's hook; without one it answers for the base
   StructureDefinitions (``.../StructureDefinition/Patient``) by type and fails otherwise.
"""

from __future__ import annotations

import re
from typing import Any

from careweave.fhir.fhirpath import ast
from careweave.fhir.fhirpath.calls import arg_value, spec
from careweave.fhir.fhirpath.errors import FhirPathError
from careweave.fhir.fhirpath.node import Navigator, Node
from careweave.fhir.fhirpath.runtime import Compiler, Env, FunctionSpec, Step
from careweave.fhir.fhirpath.values import system_value
from careweave.fhir.fhirpath.xhtml import check_narrative

__all__ = ["FUNCTIONS"]

_REFERENCE_RE = re.compile(
    r"(?:^|/)([A-Z][A-Za-z]+)/([A-Za-z0-9\-.]{1,64})(?:/_history/[A-Za-z0-9\-.]{1,64})?$"
)
_SD_PREFIX = "http://hl7.org/fhir/StructureDefinition/"


@spec(1, 1)
def _extension(c: Compiler, args: tuple[ast.Expr, ...], pos: int) -> Step:
    url_arg = c.compile(args[0])
    step = c.navigator.member("extension")

    def run(env: Env, inp: list[Any], focus: list[Any]) -> list[Any]:
        url = arg_value(url_arg, env, focus, "extension()")
        if url is None:
            return []
        return [x for x in step(inp) if x.value.__class__ is dict and x.value.get("url") == url]

    return run


def _has_value(items: list[Any]) -> list[Any]:
    if len(items) != 1:
        return [False]
    item = items[0]
    if item.__class__ is Node:
        return [item.value is not None and item.value.__class__ is not dict]
    return [True]


def _get_value(items: list[Any]) -> list[Any]:
    if len(items) != 1:
        return []
    item = items[0]
    if item.__class__ is Node and (item.value is None or item.value.__class__ is dict):
        return []
    return [system_value(item)]


def _reference_of(item: Any) -> str | None:
    if item.__class__ is Node:
        value = item.value
        if value.__class__ is dict:
            ref = value.get("reference")
            return ref if ref.__class__ is str else None
        return value if value.__class__ is str else None
    return item if item.__class__ is str else None


def _contained(env: Env, navigator: Navigator, ref: str) -> Node | None:
    root = env.root
    if ref == "#":
        return root
    wanted = ref[1:]
    for node in navigator.member("contained")([root]):
        if node.value.get("id") == wanted:
            return node  # type: ignore[no-any-return]
    return None


def resolve_reference(env: Env, navigator: Navigator, ref: str) -> Node | None:
    """The Node a reference string points to, or None (rule 1)."""
    if ref.startswith("#"):
        return _contained(env, navigator, ref)
    if env.resolver is not None:
        found = env.resolver(ref)
        return navigator.root(found) if found is not None else None
    m = _REFERENCE_RE.search(ref)
    if m is None or m.group(1) not in navigator.model.types:
        return None
    return navigator.root({"resourceType": m.group(1), "id": m.group(2)})


@spec(0, 0)
def _resolve(c: Compiler, args: tuple[ast.Expr, ...], pos: int) -> Step:
    navigator = c.navigator

    def run(env: Env, inp: list[Any], focus: list[Any]) -> list[Any]:
        out: list[Any] = []
        for item in inp:
            ref = _reference_of(item)
            if ref:
                found = resolve_reference(env, navigator, ref)
                if found is not None:
                    out.append(found)
        return out

    return run


@spec(1, 1)
def _member_of(c: Compiler, args: tuple[ast.Expr, ...], pos: int) -> Step:
    value_set = c.compile(args[0])
    hook = c.terminology

    def run(env: Env, inp: list[Any], focus: list[Any]) -> list[Any]:
        if not inp or hook is None:
            return []
        if len(inp) > 1:
            raise FhirPathError("memberOf() expects a single item")
        url = arg_value(value_set, env, focus, "memberOf()")
        if url is None:
            return []
        answer = hook(inp[0], str(url))
        return [] if answer is None else [answer]

    return run


@spec(1, 1)
def _conforms_to(c: Compiler, args: tuple[ast.Expr, ...], pos: int) -> Step:
    profile = c.compile(args[0])
    hook = c.conforms_to
    navigator = c.navigator

    def run(env: Env, inp: list[Any], focus: list[Any]) -> list[Any]:
        url = arg_value(profile, env, focus, "conformsTo()")
        if url is None or not inp:
            return []
        item = inp[0]
        if len(inp) > 1 or item.__class__ is not Node:
            raise FhirPathError("conformsTo() expects a single resource or element")
        if hook is not None:
            answer = hook(item, str(url))
            return [] if answer is None else [answer]
        name = str(url)[len(_SD_PREFIX) :] if str(url).startswith(_SD_PREFIX) else ""
        if name not in navigator.model.types:
            raise FhirPathError(f"conformsTo({url!r}) needs a conformance hook")
        return [navigator.is_subtype(item.type, name)]

    return run


def _html_checks(items: list[Any]) -> list[Any]:
    if not items:
        return []
    value = system_value(items[0])
    return [len(items) == 1 and value.__class__ is str and check_narrative(value)]


def _unsupported(name: str) -> FunctionSpec:
    def build(c: Compiler, args: tuple[ast.Expr, ...], pos: int) -> Step:
        raise c.error(f"{name}() is not supported by this engine", pos)

    return FunctionSpec(0, 9, build)


def _simple(fn: Any) -> FunctionSpec:
    return FunctionSpec(0, 0, lambda c, args, pos: lambda env, inp, focus: fn(inp))


FUNCTIONS: dict[str, FunctionSpec] = {
    "extension": _extension,
    "hasValue": _simple(_has_value),
    "getValue": _simple(_get_value),
    "resolve": _resolve,
    "memberOf": _member_of,
    "conformsTo": _conforms_to,
    "htmlChecks": _simple(_html_checks),
    "elementDefinition": _unsupported("elementDefinition"),
    "slice": _unsupported("slice"),
    "checkModifiers": _unsupported("checkModifiers"),
}
