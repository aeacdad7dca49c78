"""Configuration: one frozen dataclass, read once at start-up.

Sources, later ones winning: defaults, a TOML file (``--config`` or
``TIDINGS_CONFIG``), ``TIDINGS_*`` environment variables, command-line
flags. Nothing here opens a connection.
"""

from __future__ import annotations

import dataclasses
import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from tidings.errors import InvalidInput

DEFAULT_DATABASE_URL = "sqlite:///./tidings.db"
DEFAULT_MAX_EVENT_BYTES = 64 * 1024


@dataclass(frozen=True)
class Settings:
    database_url: str = DEFAULT_DATABASE_URL
    jwt_secret: str | None = None
    jwks_url: str | None = None
    jwt_audience: str | None = None
    admin_key: str | None = None
    host: str = "127.0.0.1"
    port: int = 8000
    # automation
    smtp_url: str | None = None  # smtp://user:pass@host:port?starttls=true&from=noreply@x
    allow_private_webhooks: bool = False  # webhooks to loopback/private addresses
    webhook_disable_after_failures: int = 20  # consecutive failed deliveries (0: never disable)
    webhook_disable_after_s: float = 5 * 86400.0  # ... spanning at least this long (Svix: 5 days)
    run_jobs: bool = True  # this process runs a job worker
    job_concurrency: int = 16
    job_lease_s: float = 120.0  # a claimed job is reclaimed after this (worker died)
    job_poll_s: float = 1.0
    job_retention_days: float = 30.0  # succeeded/discarded jobs; dead ones are kept
    plugins: tuple[str, ...] = ()  # modules with register(tidings): host actions
    # publishing
    max_event_bytes: int = DEFAULT_MAX_EVENT_BYTES
    max_batch: int = 1000
    max_body_bytes: int = 16 * 1024 * 1024
    max_api_body_bytes: int = 1 << 20  # every FastAPI route's body (admin, rules...): 413
    max_event_depth: int = 32  # nesting levels of data, metadata and actor (at most 200)
    validate_payloads: bool = True
    publish_rate: float = 0.0  # events/s per API key, burst the same; 0: off (per process)
    catalog_dirs: tuple[str, ...] = ()  # extra catalog pack directories or files
    # streams
    stream_aliases: tuple[str, ...] = ("/qms/events",)
    heartbeat_s: float = 15.0
    retry_ms: int = 2000
    max_buffer_bytes: int = 1 << 20  # unsent bytes per stream (SSE and WebSocket), then reset
    stream_linger_s: float = 120.0  # a closed stream's client may take no byte this long
    max_replay: int = 10_000
    max_connections_per_user: int = 100
    max_connections_per_tenant: int = 50_000
    ticket_ttl_s: float = 60.0
    # storage
    sqlite_synchronous: str = "FULL"
    pool_size: int = 5
    auto_migrate: bool = True
    poll_s: float = 2.0
    retention_days: float = 0.0  # 0 keeps the log forever; tenants may override
    retention_interval_s: float = 3600.0
    # operations
    log_level: str = "info"
    log_json: bool = False
    cache_ttl_s: float = 5.0
    metrics_token: str | None = None  # set: /metrics needs Authorization: Bearer <token>
    task_restart_s: float = 1.0  # first delay before a dead background task is restarted

    def replace(self, **changes: Any) -> Settings:
        return dataclasses.replace(self, **changes)


def _coerce(name: str, kind: Any, value: Any) -> Any:
    text = str(kind)
    try:
        if isinstance(value, str):
            if "bool" in text:
                if value.lower() in {"1", "true", "yes", "on"}:
                    return True
                if value.lower() in {"0", "false", "no", "off", ""}:
                    return False
                raise ValueError(value)
            if "tuple" in text:
                return tuple(v.strip() for v in value.split(",") if v.strip())
            if "int" in text:
                return int(value)
            if "float" in text:
                return float(value)
        if "tuple" in text and isinstance(value, list):
            return tuple(value)
        return value
    except ValueError:
        raise InvalidInput(f"setting {name}: cannot read {value!r} as {text}", field=name) from None


def load_settings(
    *, config_file: str | None = None, env: Mapping[str, str] | None = None, **overrides: Any
) -> Settings:
    env = os.environ if env is None else env
    values: dict[str, Any] = {}
    types = {f.name: f.type for f in fields(Settings)}
    path = config_file or env.get("TIDINGS_CONFIG")
    if path:
        try:
            data = tomllib.loads(Path(path).read_text())
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise InvalidInput(f"cannot read config file {path}: {exc}", field="config") from None
        section = data.get("tidings", data)
        for key, value in section.items():
            name = key.replace("-", "_")
            if name not in types:
                raise InvalidInput(f"unknown setting {key!r} in {path}", field=key)
            values[name] = _coerce(name, types[name], value)
    for name, kind in types.items():
        raw = env.get(f"TIDINGS_{name.upper()}")
        if raw is not None:
            values[name] = _coerce(name, kind, raw)
    for name, value in overrides.items():
        if value is not None:
            values[name] = _coerce(name, types[name], value)
    return Settings(**values)
