"""The ``tidings`` command line. Errors print one line and exit non-zero."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from tidings.config import Settings, load_settings
from tidings.errors import TidingsError

app = typer.Typer(
    name="tidings",
    help="Tidings: a multi-tenant domain-event hub.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

ConfigOpt = Annotated[str | None, typer.Option("--config", help="TOML configuration file")]
DatabaseOpt = Annotated[
    str | None, typer.Option("--database", help="Database URL (TIDINGS_DATABASE_URL)")
]
UrlOpt = Annotated[str, typer.Option("--url", envvar="TIDINGS_URL", help="Tidings server URL")]
TokenOpt = Annotated[
    str | None,
    typer.Option(
        "--token", envvar="TIDINGS_TOKEN", help="Bearer credential: API key, admin key or user JWT"
    ),
]


def fail(message: str, code: int = 1) -> None:
    typer.echo(f"tidings: {message}", err=True)
    raise typer.Exit(code)


def settings_from(config: str | None, **overrides: Any) -> Settings:
    try:
        return load_settings(config_file=config, **overrides)
    except TidingsError as exc:
        fail(str(exc), 2)
        raise  # unreachable; for type checkers


@app.command()
def serve(
    config: ConfigOpt = None,
    database: DatabaseOpt = None,
    host: Annotated[str | None, typer.Option(help="Bind address (TIDINGS_HOST)")] = None,
    port: Annotated[int | None, typer.Option(help="Port (TIDINGS_PORT)")] = None,
    admin_key: Annotated[
        str | None, typer.Option(help="Bootstrap admin key (TIDINGS_ADMIN_KEY)")
    ] = None,
    jwt_secret: Annotated[str | None, typer.Option(help="HS256 secret for user tokens")] = None,
    log_json: Annotated[
        bool | None, typer.Option("--log-json/--log-text", help="Structured JSON logs")
    ] = None,
) -> None:
    """Run the server (production)."""
    settings = settings_from(
        config,
        database_url=database,
        host=host,
        port=port,
        admin_key=admin_key,
        jwt_secret=jwt_secret,
        log_json=log_json,
    )
    from tidings.server import run

    run(settings)


@app.command()
def migrate(config: ConfigOpt = None, database: DatabaseOpt = None) -> None:
    """Create or upgrade the database schema (safe to run twice)."""
    settings = settings_from(config, database_url=database)
    from tidings.store.migrate import upgrade

    try:
        revision = asyncio.run(upgrade(settings.database_url))
    except TidingsError as exc:
        fail(str(exc))
    except Exception as exc:  # driver errors: one line, not a traceback
        fail(f"migration failed: {type(exc).__name__}: {exc}".splitlines()[0])
    typer.echo(f"schema at revision {revision} ({settings.database_url})")


@app.command()
def demo(
    port: Annotated[int, typer.Option(help="Port to serve on")] = 8000,
    database: Annotated[str, typer.Option(help="Database URL")] = "sqlite:///./tidings-demo.db",
    rate: Annotated[float, typer.Option(help="Demo events per second")] = 1.0,
    duration: Annotated[float | None, typer.Option(help="Stop after this many seconds")] = None,
) -> None:
    """Run a demo hub on SQLite with a tenant, users and a live producer."""
    from tidings.demo import run_demo

    run_demo(port=port, database_url=database, rate=rate, duration=duration)


@app.command()
def publish(
    event_type: Annotated[
        str | None, typer.Argument(help="Event type, e.g. qms.car.updated")
    ] = None,
    url: UrlOpt = "http://127.0.0.1:8000",
    token: TokenOpt = None,
    tenant: Annotated[str | None, typer.Option(help="tenantId")] = None,
    data: Annotated[str | None, typer.Option(help="data as JSON")] = None,
    audience: Annotated[
        list[str] | None, typer.Option("--audience", "-a", help="An audience (repeat)")
    ] = None,
    entity_id: Annotated[str | None, typer.Option(help="entityId")] = None,
    file: Annotated[
        Path | None, typer.Option("--file", "-f", help="A JSON file with the whole envelope")
    ] = None,
) -> None:
    """Publish one event (from flags or a JSON file) and print its position."""
    envelope: dict[str, Any] = {}
    try:
        if file is not None:
            envelope = json.loads(file.read_text())
        if event_type:
            envelope["type"] = event_type
        if tenant:
            envelope["tenantId"] = tenant
        if data:
            envelope["data"] = json.loads(data)
        if audience:
            envelope["audiences"] = list(audience)
        if entity_id:
            envelope["entityId"] = entity_id
    except (OSError, ValueError) as exc:
        fail(f"cannot read the event: {exc}", 2)
    if "type" not in envelope:
        fail("give an event type (argument) or --file", 2)
    from tidings.sdk.client import TidingsClient

    try:
        with TidingsClient(url, token=token or "") as client:
            result = client.publish(envelope)
    except TidingsError as exc:
        fail(str(exc))
    typer.echo(json.dumps(result))


@app.command()
def tail(
    url: UrlOpt = "http://127.0.0.1:8000",
    token: TokenOpt = None,
    types: Annotated[str | None, typer.Option(help="Type patterns, e.g. 'qms.*,tasks.*'")] = None,
    tenant: Annotated[str | None, typer.Option(help="Tenant (for admin credentials)")] = None,
    last_event_id: Annotated[str | None, typer.Option(help="Resume after this position")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print raw JSON lines")] = False,
    count: Annotated[int | None, typer.Option(help="Stop after this many events")] = None,
) -> None:
    """Follow the live stream in the terminal."""
    from tidings.tail import run_tail

    try:
        asyncio.run(
            run_tail(
                url,
                token or "",
                types=types,
                tenant=tenant,
                last_event_id=last_event_id,
                as_json=as_json,
                count=count,
            )
        )
    except TidingsError as exc:
        fail(str(exc))
    except KeyboardInterrupt:
        pass


@app.command()
def token(
    tenant: Annotated[str, typer.Option(help="Tenant id")],
    user: Annotated[str, typer.Option(help="User id")],
    ttl: Annotated[int, typer.Option(help="Lifetime in seconds")] = 3600,
    secret: Annotated[
        str | None, typer.Option(envvar="TIDINGS_JWT_SECRET", help="HS256 secret")
    ] = None,
) -> None:
    """Mint an HS256 user token (for trying things out; hosts mint their own)."""
    if not secret:
        fail("set TIDINGS_JWT_SECRET or --secret", 2)
    from tidings.auth import mint_token

    typer.echo(mint_token(secret or "", tenant_id=tenant, user_id=user, ttl_s=ttl))


@app.command()
def bench(
    scenarios: Annotated[
        str, typer.Option(help="Comma list: s1,s2,s3,publish,memory")
    ] = "s1,s2,s3,publish,memory",
    quick: Annotated[bool, typer.Option(help="Smaller numbers, for a smoke run")] = False,
    baseline: Annotated[
        bool,
        typer.Option("--baseline/--no-baseline", help="Also measure the sse-starlette baseline"),
    ] = True,
    output: Annotated[Path | None, typer.Option(help="Write the JSON results here")] = None,
) -> None:
    """Benchmark a real server with real clients on loopback."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
    try:
        from benchmarks.run import main as bench_main
    except ImportError:
        fail("the benchmarks/ folder is not available (run from a source checkout)")
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    bench_main(scenarios.split(","), quick=quick, baseline=baseline, output=output)


def main() -> None:
    try:
        app()
    except TidingsError as exc:
        typer.echo(f"tidings: {exc}", err=True)
        sys.exit(1)


catalog_app = typer.Typer(help="The event catalog.", no_args_is_help=True)
app.add_typer(catalog_app, name="catalog")


@catalog_app.command("list")
def catalog_list(
    module: Annotated[str | None, typer.Option(help="Only this module")] = None,
) -> None:
    """List the event types of the shipped packs."""
    from tidings.catalog import load_catalog

    for event_type in load_catalog():
        if module is None or event_type.module == module:
            typer.echo(
                f"{event_type.name:48} v{event_type.latest}  {event_type.description.get('en', '')}"
            )


@catalog_app.command("validate")
def catalog_validate(
    paths: Annotated[list[Path] | None, typer.Argument(help="Extra pack directories")] = None,
) -> None:
    """Load every pack and report the first problem."""
    from tidings.catalog import load_catalog
    from tidings.core.catalog import CatalogError

    try:
        catalog = load_catalog(paths or [])
    except CatalogError as exc:
        fail(str(exc))
    typer.echo(f"ok: {len(catalog)} event types")
