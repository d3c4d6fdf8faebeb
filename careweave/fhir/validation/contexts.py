"""The contexts of an element model: every type that declares children, and its backbone paths."""

from __future__ import annotations

from collections.abc import Iterator

from careweave.fhir.elements import ElementModel

__all__ = ["model_contexts"]


def model_contexts(model: ElementModel) -> Iterator[str]:
    """Every context of ``model`` that declares children: types, then their backbone paths."""
    seen: set[str] = set()
    stack = [name for name, t in model.types.items() if t.kind != "primitive-type"]
    while stack:
        context = stack.pop()
        if context in seen:
            continue
        seen.add(context)
        yield context
        for element in model.children(context).values():
            if element.content is not None and element.content not in seen:
                stack.append(element.content)
