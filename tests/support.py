"""Helpers for tests: a real careweave server process, and a trace of the SQLite store's statements."""

from __future__ import annotations

import os
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class ServerProcess:
    """``careweave serve`` in a child process, on a free port."""

    def __init__(self, data_dir: Path, extra_env: dict[str, str] | None = None) -> None:
        self.data_dir = data_dir
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.extra_env = extra_env or {}
        self.proc: subprocess.Popen[bytes] | None = None
        self.log = data_dir.parent / "server.log"

    def start(self) -> ServerProcess:
        env = {**os.environ, **self.extra_env}
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.log = self.data_dir.parent / f"server-{self.port}.log"
        with open(self.log, "wb") as log:
            self.proc = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "careweave.cli",
                    "serve",
                    "--data",
                    str(self.data_dir),
                    "--port",
                    str(self.port),
                ],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(self.log.read_text())
            try:
                if httpx.get(self.url + "/health", timeout=1).status_code == 200:
                    return self
            except httpx.TransportError:
                time.sleep(0.1)
        raise RuntimeError("server did not start")

    def kill9(self) -> None:
        assert self.proc is not None
        self.proc.kill()
        self.proc.wait()

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def trace_sqlite(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every statement the SQLite store runs from now on, as SQLite itself traces it: each
    connection the store opens gets a trace callback that appends to the returned list."""
    statements: list[str] = []
    connect = sqlite3.connect

    def traced(*args: Any, **kwargs: Any) -> sqlite3.Connection:
        conn = connect(*args, **kwargs)
        conn.set_trace_callback(statements.append)
        return conn

    monkeypatch.setattr("careweave.store.sql.sqlite.sqlite3.connect", traced)
    return statements


def generated_resources(patients: int, organisations: int, seed: int) -> list[dict[str, Any]]:
    """Every resource of a small generated population (difficulty "hard"), in file order."""
    from careweave.generate import GeneratorConfig, generate

    config = GeneratorConfig(patients=patients, organisations=organisations, seed=seed, difficulty="hard",
                             formats=frozenset({"ndjson"}))
    out: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as tmp:
        generate(config, Path(tmp))
        for path in sorted(Path(tmp, "ndjson").glob("*.ndjson")):
            out.extend(orjson.loads(line) for line in path.read_bytes().splitlines() if line.strip())
    return out
