"""Settings: one table, loaded once into a frozen object.

Rules:
1. Every setting is a :class:`Setting` row in :data:`SETTINGS`: its field name, the environment
   variable ``CAREWEAVE_<NAME>``, a default, a parser and a help text. ``docs/settings.md`` documents
   every row (a test checks it).
2. Precedence: explicit overrides (CLI options) > environment > a TOML file (``CAREWEAVE_CONFIG``) >
   default. The result is a frozen :class:`Settings`; nothing reads ``os.environ`` elsewhere.
3. This module imports nothing from careweave.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

__all__ = [
    "SETTINGS",
    "TENANT_SETTINGS",
    "Setting",
    "Settings",
    "from_environment",
    "load_settings",
    "to_environment",
]


def _bool(value: str) -> bool:
    lowered = value.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off", ""):
        return False
    raise ValueError(f"not a boolean: {value!r}")


def _choice(*options: str) -> Callable[[str], str]:
    def parse(value: str) -> str:
        if value not in options:
            raise ValueError(f"{value!r} is not one of {', '.join(options)}")
        return value

    return parse


@dataclass(frozen=True, slots=True)
class Setting:
    name: str
    default: Any
    parse: Callable[[str], Any]
    help: str

    @property
    def env(self) -> str:
        return "CAREWEAVE_" + self.name.upper()


SETTINGS: tuple[Setting, ...] = (
    Setting("data_dir", Path("data"), Path, "Directory for the embedded SQLite database and files."),
    Setting(
        "database",
        "",
        str,
        "Database URL. Empty: SQLite in data_dir. postgresql://... selects PostgreSQL.",
    ),
    Setting("host", "127.0.0.1", str, "Address the HTTP server listens on."),
    Setting("port", 8080, int, "Port the HTTP server listens on."),
    Setting(
        "server",
        "uvicorn",
        _choice("uvicorn", "granian"),
        "ASGI server that runs the HTTP API (see docs/benchmarks.md for the measured choice).",
    ),
    Setting(
        "base_url",
        "",
        str,
        "Public base URL (e.g. https://fhir.example.org). Empty: derived from each request's Host.",
    ),
    Setting("max_body_bytes", 64 * 1024 * 1024, int, "Largest request body accepted (413 above)."),
    Setting("default_count", 20, int, "Page size when a search or history does not give _count."),
    Setting("max_count", 1000, int, "Largest page size a client may ask for with _count."),
    Setting(
        "sqlite_synchronous",
        "FULL",
        _choice("OFF", "NORMAL", "FULL", "EXTRA"),
        "SQLite synchronous mode. FULL survives power loss; NORMAL survives a process crash.",
    ),
    Setting(
        "group_commit_max",
        256,
        int,
        "Most writes the SQLite writer commits together in one transaction (group commit).",
    ),
    Setting(
        "sqlite_wal_autocheckpoint",
        16384,
        int,
        "WAL pages after which a SQLite commit copies the WAL into the database (checkpoint).",
    ),
    Setting("reader_threads", 4, int, "Threads running searches against the database."),
    Setting("demo", False, _bool, "Load the demo data set into an empty default tenant on start."),
    Setting("log_level", "info", _choice("debug", "info", "warning", "error"), "Logging level."),
    Setting("access_log", False, _bool, "Log one line per HTTP request (method, path, status, time)."),
    Setting(
        "tenant_cache_seconds",
        1.0,
        float,
        "How long a known tenant (and its settings) is remembered between lookups. A new tenant is "
        "served at once; a removed one, or a changed setting, takes effect within this time.",
    ),
    Setting(
        "cursor_secret",
        "",
        str,
        "Secret that signs paging cursors. Empty: a random secret kept in data_dir.",
    ),
    # [postgres] settings
    Setting(
        "migrate_on_start",
        True,
        _bool,
        "PostgreSQL: apply pending schema migrations when a process starts (off: run `careweave "
        "migrate` first; start-up then fails while any is pending). SQLite always migrates.",
    ),
    Setting("pg_pool_size", 16, int, "PostgreSQL: connections each process keeps (readers and writers)."),
    # [events] settings
    Setting("events_worker", True, _bool, "Run the subscription delivery worker inside `careweave serve`."),
    Setting(
        "events_retry_first_s",
        5.0,
        float,
        "Subscription deliveries: the first retry waits up to this long (then doubling, full jitter).",
    ),
    Setting(
        "events_retry_cap_s", 3600.0, float, "Subscription deliveries: the longest wait between retries."
    ),
    Setting(
        "events_give_up_s",
        72 * 3600.0,
        float,
        "Subscription deliveries: give up this long after the first attempt (the subscription goes to "
        "error, its notifications to the dead-letter list).",
    ),
    Setting("events_poll_ms", 500, int, "How often the dispatcher looks for other processes' commits."),
    Setting(
        "events_lease_s",
        15.0,
        float,
        "How long a delivery worker holds a subscription's queue without renewing (another takes over).",
    ),
    Setting(
        "events_secret",
        "",
        str,
        "Secret that signs notifications (X-Careweave-Signature) and websocket binding tokens. Empty: a "
        "random secret kept in data_dir.",
    ),
    Setting("events_nats_url", "", str, "NATS server for the JetStream channel (empty: no NATS channel)."),
    Setting(
        "events_topics",
        "",
        str,
        "A JSON file of built-in SubscriptionTopics (R4B/R5 JSON, one or a list) offered to every tenant.",
    ),
    # [hl7] settings
    Setting("mllp_port", 0, int, "Port of the HL7 v2 MLLP listener started with the server (0: none)."),
    Setting("mllp_host", "127.0.0.1", str, "Address the HL7 v2 MLLP listener listens on."),
    Setting(
        "hl7_timezone",
        "Europe/London",
        str,
        "Time zone of HL7 v2 timestamps that carry no offset (an IANA name).",
    ),
    Setting(
        "hl7_workers",
        0,
        int,
        "Processes mapping, validating and indexing HL7 v2 messages (0: in the server process).",
    ),
    Setting("mllp_tls_cert", "", str, "PEM certificate chain for MLLP over TLS (empty: plain TCP)."),
    Setting("mllp_tls_key", "", str, "PEM private key of mllp_tls_cert (empty: the key is in that file)."),
    Setting("mllp_tls_client_ca", "", str, "PEM CA file: MLLP clients must present a certificate it signed."),
    # [mpi] settings
    Setting("mpi_enabled", True, _bool, "Match every Patient write into the master patient index (serve)."),
    Setting(
        "mpi_model",
        "",
        str,
        "Match model JSON (careweave mpi estimate). Empty: the packaged default model.",
    ),
    Setting(
        "mpi_certain_threshold",
        10.0,
        float,
        "Match weight (log2 odds) at or above which records are linked automatically. Part of the "
        "model version recorded with every link.",
    ),
    Setting(
        "mpi_possible_threshold",
        0.0,
        float,
        "Match weight at or above which a pair goes to the review queue (level2 link).",
    ),
    Setting("mpi_poll_seconds", 0.25, float, "How often the MPI follower looks for new changes when idle."),
    Setting("mpi_batch", 500, int, "Change-log entries the MPI follower applies per transaction."),
)


# Settings each tenant has on its own (``careweave tenant set NAME KEY VALUE``), kept in the store.
TENANT_SETTINGS: tuple[Setting, ...] = (
    Setting(
        "validate_profiles",
        False,
        _bool,
        "Also check the profiles a resource claims in meta.profile (the base R4 rules are always checked).",
    ),
    Setting(
        "conditional_delete_multiple",
        False,
        _bool,
        "A conditional delete matching several resources deletes them all (up to 1,000) instead of 412.",
    ),
)


@dataclass(frozen=True, slots=True)
class Settings:
    data_dir: Path = Path("data")
    database: str = ""
    host: str = "127.0.0.1"
    port: int = 8080
    server: str = "uvicorn"
    base_url: str = ""
    max_body_bytes: int = 64 * 1024 * 1024
    default_count: int = 20
    max_count: int = 1000
    sqlite_synchronous: str = "FULL"
    group_commit_max: int = 256
    sqlite_wal_autocheckpoint: int = 16384
    reader_threads: int = 4
    demo: bool = False
    log_level: str = "info"
    access_log: bool = False
    tenant_cache_seconds: float = 1.0
    cursor_secret: str = ""
    # [postgres] fields
    migrate_on_start: bool = True
    pg_pool_size: int = 16
    # [events] fields
    events_worker: bool = True
    events_retry_first_s: float = 5.0
    events_retry_cap_s: float = 3600.0
    events_give_up_s: float = 72 * 3600.0
    events_poll_ms: int = 500
    events_lease_s: float = 15.0
    events_secret: str = ""
    events_nats_url: str = ""
    events_topics: str = ""
    # [hl7] fields
    mllp_port: int = 0
    mllp_host: str = "127.0.0.1"
    hl7_timezone: str = "Europe/London"
    hl7_workers: int = 0
    mllp_tls_cert: str = ""
    mllp_tls_key: str = ""
    mllp_tls_client_ca: str = ""
    # [mpi] fields
    mpi_enabled: bool = True
    mpi_model: str = ""
    mpi_certain_threshold: float = 10.0
    mpi_possible_threshold: float = 0.0
    mpi_poll_seconds: float = 0.25
    mpi_batch: int = 500

    def with_overrides(self, **overrides: Any) -> Settings:
        """A copy with the given fields replaced; ``None`` values are ignored (unset CLI options)."""
        return replace(self, **{k: v for k, v in overrides.items() if v is not None})


def load_settings(environ: Mapping[str, str], overrides: Mapping[str, Any] | None = None) -> Settings:
    """Settings from a TOML file (``CAREWEAVE_CONFIG``), the environment, then ``overrides``."""
    by_name = {s.name: s for s in SETTINGS}
    values: dict[str, Any] = {s.name: s.default for s in SETTINGS}
    config_file = environ.get("CAREWEAVE_CONFIG")
    if config_file:
        with open(config_file, "rb") as f:
            for key, raw in tomllib.load(f).items():
                if key not in by_name:
                    raise ValueError(f"{config_file}: unknown setting {key!r}")
                values[key] = by_name[key].parse(str(raw)) if isinstance(raw, str) else raw
    for setting in SETTINGS:
        if setting.env in environ:
            try:
                values[setting.name] = setting.parse(environ[setting.env])
            except ValueError as exc:
                raise ValueError(f"{setting.env}: {exc}") from exc
    for key, value in (overrides or {}).items():
        if value is not None:
            values[key] = value
    names = {f.name for f in fields(Settings)}
    return Settings(**{k: v for k, v in values.items() if k in names})


def from_environment(overrides: Mapping[str, Any] | None = None) -> Settings:
    """Settings from this process's environment (the one place that reads it)."""
    return load_settings(os.environ, overrides)


def to_environment(settings: Settings) -> dict[str, str]:
    """The environment variables that reproduce ``settings`` (for server worker processes)."""
    out: dict[str, str] = {}
    for setting in SETTINGS:
        value = getattr(settings, setting.name)
        out[setting.env] = ("true" if value else "false") if isinstance(value, bool) else str(value)
    return out
