"""Required bindings: codes, Codings and CodeableConcepts against expanded value sets.

Rules:
1. A primitive (``code``, or a ``string``/``uri`` bound like one) must be a code of the value set.
2. A Coding: its system and code must be in the value set.
3. A CodeableConcept: at least one Coding must be in the value set (the spec's rule for
   ``required``); a concept with no Coding at all breaks the binding too.
4. When membership cannot be decided (a code system that is not available here and has no
   syntax rule), nothing is reported.
"""

from __future__ import annotations

from typing import Any

from careweave.fhir.validation.plan import BindingRule
from careweave.fhir.validation.run import Run

__all__ = ["check_code", "check_complex"]


def check_code(run: Run, rule: BindingRule, value: object, path: str) -> None:
    if not isinstance(value, str) or value in rule.also:
        return
    if rule.expansion.has_code(value) is False:
        run.error(
            "code-invalid",
            path,
            f"has the code {value!r}, which is not in the required value set {rule.value_set}",
        )


def check_complex(run: Run, rule: BindingRule, type_code: str, value: dict[str, Any], path: str) -> None:
    if type_code == "Coding":
        if _coding_in(rule, value) is False:
            run.error(
                "code-invalid",
                path,
                f"has the code {_shown(value)}, which is not in the required value set {rule.value_set}",
            )
    elif type_code == "CodeableConcept":
        _check_concept(run, rule, value, path)


def _check_concept(run: Run, rule: BindingRule, value: dict[str, Any], path: str) -> None:
    codings = value.get("coding")
    if type(codings) is not list or not codings:
        run.error(
            "code-invalid",
            path,
            f"has no coding, but a code from the required value set {rule.value_set} is needed",
        )
        return
    results = [_coding_in(rule, c) if type(c) is dict else False for c in codings]
    if True in results or None in results:
        return
    shown = ", ".join(_shown(c) for c in codings if type(c) is dict)
    run.error(
        "code-invalid", path, f"has no coding from the required value set {rule.value_set} (found {shown})"
    )


def _coding_in(rule: BindingRule, coding: dict[str, Any]) -> bool | None:
    system, code = coding.get("system"), coding.get("code")
    if not isinstance(code, str):
        return False
    return rule.expansion.has_coding(system if isinstance(system, str) else None, code)


def _shown(coding: dict[str, Any]) -> str:
    return f"{coding.get('system', '(no system)')}#{coding.get('code', '(no code)')}"
