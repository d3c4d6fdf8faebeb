"""The package's public API: __all__ lists exactly the public names (style guide, habit 10)."""

from __future__ import annotations

import careweave.mpi as mpi


def test_exported_members():
    public = {name for name in vars(mpi) if not name.startswith("_")}
    modules = {name for name in public if type(getattr(mpi, name)).__name__ == "module"}
    assert set(mpi.__all__) == public - modules
