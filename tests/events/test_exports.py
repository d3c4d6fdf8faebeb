"""The public API: __all__ lists exactly the public names of each module (style guide, habit 10)."""

from __future__ import annotations

import importlib
import types

import pytest

MODULES = [
    "careweave.events", "careweave.events.criteria", "careweave.events.filters",
    "careweave.events.notification", "careweave.events.numbering", "careweave.events.retry",
    "careweave.events.signing", "careweave.events.subscription", "careweave.events.topic",
    "careweave.events.trigger", "careweave.events.channels", "careweave.events.channels.base",
    "careweave.events.channels.resthook", "careweave.events.channels.jetstream",
    "careweave.events.channels.websocket", "careweave.search.match",
]


@pytest.mark.parametrize("name", MODULES)
def test_exported_members(name) -> None:
    module = importlib.import_module(name)
    exported = set(module.__all__)
    assert exported <= set(vars(module)), exported - set(vars(module))
    defined_here = {
        n for n, v in vars(module).items()
        if not n.startswith("_") and not isinstance(v, types.ModuleType)
        and getattr(v, "__module__", None) == name
    }
    assert defined_here <= exported, defined_here - exported
