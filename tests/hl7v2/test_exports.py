"""The public surface of careweave.hl7v2 and careweave.gateway is what __all__ says: every name in
__all__ exists, and every public function or class a package module defines is exported."""

from __future__ import annotations

import importlib
import pkgutil

import pytest

PACKAGES = ["careweave.hl7v2", "careweave.hl7v2.mapping", "careweave.gateway"]


@pytest.mark.parametrize("name", PACKAGES)
def test_all_names_exist(name):
    module = importlib.import_module(name)
    assert all(hasattr(module, n) for n in module.__all__)
    assert len(set(module.__all__)) == len(module.__all__)


@pytest.mark.parametrize("name", PACKAGES)
def test_modules_export_what_they_define(name):
    package = importlib.import_module(name)
    for info in pkgutil.iter_modules(package.__path__, f"{name}."):
        module = importlib.import_module(info.name)
        defined = {
            n
            for n, value in vars(module).items()
            if not n.startswith("_") and callable(value) and getattr(value, "__module__", "") == info.name
        }
        assert defined <= set(getattr(module, "__all__", ())), (info.name, defined - set(module.__all__))
