"""Files the server keeps beside the database: Bulk Data export output.

Rules:
1. Files live under ``root/<tenant key>/<job id>/``; names are checked (no path separators, no
   dot files), so a request can never reach outside its job's folder.
2. A file is written to ``<name>.part`` and renamed when complete: a reader never sees half a file.
3. Reading is streamed in chunks: memory stays flat whatever the file's size.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import AsyncIterator
from pathlib import Path
from typing import BinaryIO

import anyio

__all__ = ["ExportFiles"]

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_\-]*\.ndjson\Z")
_CHUNK = 256 * 1024


class ExportFiles:
    def __init__(self, root: Path) -> None:
        self.root = root

    def _path(self, tenant: int, job: int, name: str) -> Path:
        if not _NAME.match(name):
            raise ValueError(f"not an export file name: {name!r}")
        return self.root / str(tenant) / str(job) / name

    def create(self, tenant: int, job: int, name: str) -> BinaryIO:
        path = self._path(tenant, job, name)
        path.parent.mkdir(parents=True, exist_ok=True)
        return path.with_name(path.name + ".part").open("wb")

    def finish(self, tenant: int, job: int, name: str) -> int:
        """Make a written file visible; returns its size in bytes."""
        path = self._path(tenant, job, name)
        part = path.with_name(path.name + ".part")
        part.replace(path)
        return path.stat().st_size

    def discard(self, tenant: int, job: int, name: str) -> None:
        path = self._path(tenant, job, name)
        path.with_name(path.name + ".part").unlink(missing_ok=True)
        path.unlink(missing_ok=True)

    def exists(self, tenant: int, job: int, name: str) -> bool:
        try:
            return self._path(tenant, job, name).is_file()
        except ValueError:
            return False

    async def read(self, tenant: int, job: int, name: str) -> AsyncIterator[bytes]:
        path = self._path(tenant, job, name)
        async with await anyio.open_file(path, "rb") as f:
            while chunk := await f.read(_CHUNK):
                yield chunk

    def remove_job(self, tenant: int, job: int) -> None:
        shutil.rmtree(self.root / str(tenant) / str(job), ignore_errors=True)
