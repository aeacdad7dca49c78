"""Configuration: one frozen, validated ``Settings``, read once at start-up.

Sources, later ones winning: defaults, a TOML file (``--config`` or
``TIDINGS_CONFIG``; its ``[tidings]`` table or its top level), ``TIDINGS_*``
environment variables, command-line flags. :func:`load_settings` layers
them; ``Settings(...)`` alone is its arguments over the defaults and reads
nothing else (so tests and embedders never pick up the process environment).

Guarantees: a value of the wrong type (``port = true``, ``heartbeat_s =
[1]``, ``TIDINGS_PORT=abc``) is refused with :class:`~tidings.errors.InvalidInput`
naming the setting and the source it came from; secrets (keys, tokens,
passwords inside URLs) never appear in ``repr``/``str`` of ``Settings`` nor in
those messages, while attribute access returns the plain value callers use.
Nothing here opens a connection.
"""

from __future__ import annotations

import logging
import os
import tomllib
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit, urlunsplit

from pydantic import BeforeValidator, Field, ValidationError, field_validator
from pydantic_settings import (
    BaseSettings,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from tidings.errors import InvalidInput

ENV_PREFIX = "TIDINGS_"
MASK = "**********"
SECRET_SETTINGS = frozenset({"admin_key", "jwt_secret", "metrics_token", "session_secret"})
URL_SETTINGS = frozenset({"database_url", "smtp_url", "jwks_url"})  # may carry a password
SQLITE_SYNCHRONOUS = frozenset({"OFF", "NORMAL", "FULL", "EXTRA", "0", "1", "2", "3"})


def _comma_list(value: Any) -> Any:
    """``"a, b"`` (environment, TOML or flag) -> ``("a", "b")``; lists pass."""
    if isinstance(value, str):
        return tuple(part.strip() for part in value.split(",") if part.strip())
    return value


def _no_bool(value: Any) -> Any:
    # pydantic's lax mode reads True as 1: a number setting given a boolean
    # is a mistake in the file, not a value.
    if isinstance(value, bool):
        raise ValueError("a boolean is not a number")
    return value


def _empty_is_false(value: Any) -> Any:
    return False if value == "" else value  # TIDINGS_X= switches X off


LogFormat = Literal["text", "json"]
Names = Annotated[tuple[str, ...], NoDecode, BeforeValidator(_comma_list)]
Int = Annotated[int, BeforeValidator(_no_bool)]
Float = Annotated[float, BeforeValidator(_no_bool)]
Flag = Annotated[bool, BeforeValidator(_empty_is_false)]

DEFAULT_DATABASE_URL = "sqlite:///./tidings.db"
DEFAULT_MAX_EVENT_BYTES = 64 * 1024


class Settings(BaseSettings):
    """Every setting of a node; field descriptions are the ``serve --help`` text."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, frozen=True, extra="forbid")

    database_url: str = Field(
        default=DEFAULT_DATABASE_URL, description="Database URL: sqlite:///file or postgresql://..."
    )
    jwt_secret: str | None = Field(default=None, description="HS256 secret for user tokens")
    jwks_url: str | None = Field(default=None, description="JWKS URL for RS256 user tokens")
    jwt_audience: str | None = Field(
        default=None, description="Required 'aud' claim of user tokens"
    )
    admin_key: str | None = Field(default=None, description="Bootstrap admin key")
    host: str = Field(default="127.0.0.1", description="Bind address")
    port: Int = Field(default=8000, ge=0, le=65535, description="Port")
    # automation
    smtp_url: str | None = Field(
        default=None, description="smtp://user:pass@host:port?starttls=true&from=noreply@x"
    )
    allow_private_webhooks: Flag = Field(
        default=False, description="Allow webhooks to loopback/private addresses"
    )
    webhook_disable_after_failures: Int = Field(
        default=20, description="Consecutive failed deliveries that disable a webhook (0: never)"
    )
    webhook_disable_after_s: Float = Field(
        default=5 * 86400.0, description="... spanning at least this many seconds (Svix: 5 days)"
    )
    run_jobs: Flag = Field(default=True, description="This process runs a job worker")
    job_concurrency: Int = Field(default=16, description="Jobs run at once")
    job_lease_s: Float = Field(
        default=120.0, description="A claimed job is reclaimed after this (worker died)"
    )
    job_poll_s: Float = Field(default=1.0, description="Job queue poll interval")
    job_retention_days: Float = Field(
        default=30.0, description="Keep succeeded/discarded jobs this long (dead ones are kept)"
    )
    plugins: Names = Field(default=(), description="Modules with register(tidings): host actions")
    # publishing
    max_event_bytes: Int = Field(default=DEFAULT_MAX_EVENT_BYTES, description="Largest event")
    max_batch: Int = Field(default=1000, description="Most events in one publish request")
    max_body_bytes: Int = Field(
        default=16 * 1024 * 1024, description="Largest publish request body"
    )
    max_api_body_bytes: Int = Field(
        default=1 << 20, description="Largest body of every other API route (413)"
    )
    max_event_depth: Int = Field(
        default=32, description="Nesting levels of data, metadata and actor (at most 200)"
    )
    validate_payloads: Flag = Field(default=True, description="Check payloads against the catalog")
    publish_rate: Float = Field(
        default=0.0, description="Events/s per API key, burst the same; 0: off (per process)"
    )
    catalog_dirs: Names = Field(default=(), description="Extra catalog pack directories or files")
    # streams
    stream_aliases: Names = Field(
        default=("/qms/events",), description="More paths of the SSE stream"
    )
    heartbeat_s: Float = Field(default=15.0, description="Seconds between stream heartbeats")
    retry_ms: Int = Field(default=2000, description="SSE retry: sent to clients")
    max_buffer_bytes: Int = Field(
        default=1 << 20, description="Unsent bytes per stream (SSE and WebSocket), then reset"
    )
    stream_linger_s: Float = Field(
        default=120.0, description="A closed stream's client may take no byte this long"
    )
    max_replay: Int = Field(default=10_000, description="Most events replayed on resume")
    max_connections_per_user: Int = Field(default=100, description="Open streams per user")
    max_connections_per_tenant: Int = Field(default=50_000, description="Open streams per tenant")
    ticket_ttl_s: Float = Field(default=60.0, description="Lifetime of a stream ticket")
    # the Integration Manager (/admin)
    session_secret: str | None = Field(
        default=None,
        description="Signs admin UI sessions (default: derived from the admin key)",
    )
    admin_session_ttl_s: Float = Field(
        default=8 * 3600.0, gt=0, le=30 * 86400, description="Lifetime of an admin UI session"
    )
    # storage
    sqlite_synchronous: str = Field(default="FULL", description="SQLite PRAGMA synchronous")
    pool_size: Int = Field(default=5, description="Database connection pool size")
    auto_migrate: Flag = Field(default=True, description="Upgrade the schema at start")
    poll_s: Float = Field(default=2.0, description="Log poll interval (events of other nodes)")
    retention_days: Float = Field(
        default=0.0,
        description="Keep events this long; 0 keeps them forever (tenants may override)",
    )
    retention_interval_s: Float = Field(
        default=3600.0, description="Seconds between retention runs"
    )
    # operations
    log_level: str = Field(default="info", description="Log level")
    log_format: LogFormat = Field(
        default="text", description="Log lines as text or json (one JSON object per line)"
    )
    log_json: Flag = Field(default=False, description="Structured JSON logs (log_format json)")
    access_log: Flag = Field(
        default=True, description="One log line per HTTP request (method, route, status, time)"
    )
    metrics_per_tenant: Flag = Field(
        default=False,
        description="Per-tenant series on /metrics (a label per tenant: mind the cardinality)",
    )
    cache_ttl_s: Float = Field(
        default=5.0, description="Cache lifetime of keys, users and catalogs"
    )
    metrics_token: str | None = Field(
        default=None, description="Set: /metrics needs Authorization: Bearer <token>"
    )
    task_restart_s: Float = Field(
        default=1.0, description="First delay before a dead background task is restarted"
    )

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # Only the arguments: load_settings layers file, environment and
        # flags itself, so that an error can name the source of its value.
        return (init_settings,)

    @field_validator("sqlite_synchronous")
    @classmethod
    def _synchronous_level(cls, value: str) -> str:
        # interpolated into a PRAGMA: only SQLite's own levels get there
        if value.upper() not in SQLITE_SYNCHRONOUS:
            raise ValueError(f"expected one of {', '.join(sorted(SQLITE_SYNCHRONOUS))}")
        return value

    @field_validator("log_level")
    @classmethod
    def _known_level(cls, value: str) -> str:
        if value.upper() not in logging.getLevelNamesMapping():
            raise ValueError("expected a level such as debug, info, warning, error")
        return value

    @property
    def json_logs(self) -> bool:
        """Whether logs are JSON lines (``log_format = "json"``, or the older
        ``log_json`` switch)."""
        return self.log_json or self.log_format == "json"

    def replace(self, **changes: Any) -> Settings:
        """A copy with ``changes`` applied, validated like the original."""
        return Settings(**{**self.model_dump(), **changes})

    def __repr_args__(self) -> Iterator[tuple[str | None, Any]]:
        for name, value in super().__repr_args__():
            yield name, masked(name, value) if name else value


def masked(name: str, value: Any) -> Any:
    """``value`` as it may be shown: secrets and URL passwords blanked."""
    if value is None or value == "":
        return value
    if name in SECRET_SETTINGS:
        return MASK
    if name in URL_SETTINGS and isinstance(value, str):
        return mask_url(value)
    return value


def mask_url(url: str) -> str:
    """``scheme://user:secret@host/...`` -> ``scheme://user:**********@host/...``."""
    try:
        parts = urlsplit(url)
        password = parts.password
    except ValueError:
        return MASK
    if not password:
        return url
    user, _, host = parts.netloc.rpartition("@")
    name = user.split(":", 1)[0]
    return urlunsplit(parts._replace(netloc=f"{name}:{MASK}@{host}"))


def flag_of(name: str) -> str:
    """The ``tidings serve`` flag of a setting."""
    return "--" + name.replace("_", "-")


def load_settings(
    *, config_file: str | None = None, env: Mapping[str, str] | None = None, **overrides: Any
) -> Settings:
    """Settings from defaults < TOML file < ``TIDINGS_*`` in ``env`` < ``overrides``.

    ``env`` defaults to the process environment; ``None`` overrides are
    ignored (an unset flag). Raises :class:`~tidings.errors.InvalidInput`
    with one line naming the setting and its source.
    """
    env = os.environ if env is None else env
    path = config_file or env.get("TIDINGS_CONFIG")
    layers = [
        *([_file_layer(path)] if path else []),
        _env_layer(env),
        {name: (value, flag_of(name)) for name, value in overrides.items() if value is not None},
    ]
    values: dict[str, Any] = {}
    sources: dict[str, str] = {}
    for layer in layers:
        for name, (value, source) in layer.items():
            values[name] = value
            sources[name] = source
    try:
        return Settings(**values)
    except ValidationError as exc:
        raise _invalid(exc, sources) from None


Layer = dict[str, tuple[Any, str]]  # setting -> (value, where it came from)


def _file_layer(path: str) -> Layer:
    file = Path(path)
    try:
        if not file.is_file():
            raise FileNotFoundError(f"no such file: {path}")
        data = TomlConfigSettingsSource(Settings, toml_file=file).toml_data
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise InvalidInput(f"cannot read config file {path}: {exc}", field="config") from None
    section = data.get("tidings", data)
    layer: Layer = {}
    for key, value in section.items():
        name = key.replace("-", "_")
        if name not in Settings.model_fields:
            raise InvalidInput(f"unknown setting {key!r} in {path}", field=key)
        layer[name] = (value, path)
    return layer


def _env_layer(env: Mapping[str, str]) -> Layer:
    layer: Layer = {}
    for name in Settings.model_fields:
        variable = f"{ENV_PREFIX}{name.upper()}"
        if variable in env:
            layer[name] = (env[variable], variable)
    return layer


def _invalid(exc: ValidationError, sources: Mapping[str, str]) -> InvalidInput:
    problems = []
    first = ""
    for error in exc.errors(include_url=False):
        name = str(error["loc"][0]) if error["loc"] else ""
        first = first or name
        shown = masked(name, error.get("input"))
        value = MASK if shown is MASK else repr(shown)
        source = sources.get(name, "arguments")
        reason = error["msg"].removeprefix("Value error, ")
        problems.append(f"setting {name} from {source}: cannot use {value}: {reason}")
    return InvalidInput("; ".join(problems), field=first or None)
