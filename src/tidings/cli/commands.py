"""The ``tidings`` command line. Errors print one line and exit non-zero."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from tidings.cli.settings_flags import plain, with_setting_flags
from tidings.config import Settings, load_settings
from tidings.errors import TidingsError

if TYPE_CHECKING:
    from tidings.cli.export import Exported
    from tidings.node import Tidings

app = typer.Typer(
    name="tidings",
    help="Tidings: a multi-tenant domain-event hub.",
    no_args_is_help=True,
    add_completion=True,  # --install-completion / --show-completion
    pretty_exceptions_enable=False,
    rich_markup_mode=None,  # a usage error is click's plain "Error: ..." line, not a box
)

ConfigOpt = Annotated[str | None, typer.Option("--config", help="TOML configuration file")]
DatabaseOpt = Annotated[
    str | None, typer.Option("--database", help="Database URL (TIDINGS_DATABASE_URL)")
]
DEFAULT_URL = "http://127.0.0.1:8000"
UrlOpt = Annotated[str, typer.Option("--url", envvar="TIDINGS_URL", help="Tidings server URL")]
TokenOpt = Annotated[
    str | None,
    typer.Option(
        "--token",
        "--key",
        envvar=["TIDINGS_TOKEN", "TIDINGS_API_KEY"],
        help="Bearer credential: API key, admin key or user JWT",
    ),
]
KeyOpt = TokenOpt  # the operator commands call it a key; the same option
RemoteUrlOpt = Annotated[
    str | None,
    typer.Option("--url", help="A running server: run there over HTTP (default: on the database)"),
]


class OutputFormat(StrEnum):
    table = "table"
    json = "json"


class CatalogFormat(StrEnum):
    asyncapi = "asyncapi"
    jsonschema = "jsonschema"


def _print_version(value: bool) -> None:
    if value:
        from importlib.metadata import version

        typer.echo(f"tidings {version('tidings')}")
        raise typer.Exit()


@app.callback()
def root(
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_print_version, is_eager=True, help="Print the version, exit"
        ),
    ] = False,
) -> None:
    """Tidings: a multi-tenant domain-event hub."""


def fail(message: str, code: int = 1) -> None:
    typer.echo(f"tidings: {message}", err=True)
    raise typer.Exit(code)


def settings_from(config: str | None, **overrides: Any) -> Settings:
    try:
        return load_settings(config_file=config, **plain(overrides))
    except TidingsError as exc:
        fail(str(exc), 2)
        raise  # unreachable; for type checkers


@app.command()
@with_setting_flags
def serve(config: ConfigOpt = None, **flags: Any) -> None:
    """Run the server (production). Every setting is a flag (see --help)."""
    settings = settings_from(config, **flags)
    from tidings.http.server import run

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
    from tidings.cli.demo import DEMO_HOST, port_taken, run_demo

    if port_taken(DEMO_HOST, port):
        fail(f"port {port} is taken (another server?): try tidings demo --port {port + 1}", 2)
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
    from tidings.cli.tail import run_tail

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
def export(
    url: Annotated[
        str | None,
        typer.Option(
            "--url", envvar="TIDINGS_URL", help=f"Tidings server URL (default: {DEFAULT_URL})"
        ),
    ] = None,
    token: TokenOpt = None,
    config: ConfigOpt = None,
    database: DatabaseOpt = None,
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write here (default: stdout)")
    ] = None,
    types: Annotated[str | None, typer.Option(help="Type patterns, e.g. 'qms.*,tasks.*'")] = None,
    tenant: Annotated[str | None, typer.Option(help="Tenant (for admin credentials)")] = None,
    entity_type: Annotated[str | None, typer.Option(help="Only this entity type")] = None,
    entity_id: Annotated[str | None, typer.Option(help="Only this entity id")] = None,
    entity_id_contains: Annotated[
        str | None, typer.Option(help="Entity ids containing this text")
    ] = None,
    since: Annotated[str | None, typer.Option(help="From this instant (ISO-8601)")] = None,
    until: Annotated[str | None, typer.Option(help="Up to this instant (ISO-8601)")] = None,
    after: Annotated[str | None, typer.Option(help="Resume after this log position")] = None,
) -> None:
    """Export the log as NDJSON (one envelope per line, oldest first), from a
    server (--url) or straight from a database (--database or --config)."""
    from tidings.cli.export import position_of, run_export

    on_database = database is not None or config is not None
    if on_database and url is not None:
        fail("give --url (a server) or --database/--config (a database), not both", 2)
    try:
        filters = {
            "types": types,
            "tenantId": tenant,
            "entityType": entity_type,
            "entityId": entity_id,
            "entityIdContains": entity_id_contains,
            "since": since,
            "until": until,
            "after": position_of(after),
        }
        if on_database:
            done = _export_from_database(config, database, filters, output)
        else:
            done = run_export(url or DEFAULT_URL, token or "", filters, output=output)
    except TidingsError as exc:
        fail(str(exc))
    except KeyboardInterrupt:
        fail("export interrupted", 130)
    where = f" to {output}" if output else ""
    last = f" (last position {done.last_position})" if done.last_position is not None else ""
    typer.echo(f"exported {done.count} events{where}{last}", err=True)


def _export_from_database(
    config: str | None, database: str | None, filters: dict[str, str | None], output: Path | None
) -> Exported:
    """The export read on the database by a node of this process, as the
    operator (every tenant; ``tenantId`` in ``filters`` narrows it)."""
    from tidings.cli.export import export_from, log_request
    from tidings.cli.targets import on_node
    from tidings.services.auth import OPERATOR

    settings = settings_from(config, database_url=database, run_jobs=False)
    request = log_request(filters)

    async def work(tidings: Tidings) -> Exported:
        viewer = tidings.history.reader(OPERATOR, filters["tenantId"])
        return await export_from(tidings.history, viewer, request, output=output)

    return on_node(settings, work)


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
    from tidings.services.auth import mint_token

    typer.echo(mint_token(secret or "", tenant_id=tenant, user_id=user, ttl_s=ttl))


@app.command()
def bench(
    scenarios: Annotated[
        str | None,
        typer.Option(
            help="Comma list of s1,s2,s3,publish,memory,validation,automation,outbox,portal,scale "
            "(default: all; scale only with --database)"
        ),
    ] = None,
    quick: Annotated[bool, typer.Option(help="Smaller numbers, for a smoke run")] = False,
    baseline: Annotated[
        bool,
        typer.Option("--baseline/--no-baseline", help="Also measure the sse-starlette baseline"),
    ] = True,
    output: Annotated[Path | None, typer.Option(help="Write the JSON results here")] = None,
    database: Annotated[
        str | None,
        typer.Option(
            "--database",
            help="PostgreSQL URL, or 'auto' for a temporary server: adds publish on PostgreSQL "
            "vs SQLite and the scale scenario (1 vs 2 processes)",
        ),
    ] = None,
    admin_pages: Annotated[
        int,
        typer.Option(
            min=0,
            max=10,
            help="Also run s1-s3 with this many browsers on the live log and health pages "
            "(needs Playwright and Chromium)",
        ),
    ] = 0,
    rounds: Annotated[
        int,
        typer.Option(
            min=1,
            max=10,
            help="With --admin-pages: without and with the browsers this many times, "
            "alternately (the medians are reported)",
        ),
    ] = 1,
) -> None:
    """Benchmark a real server with real clients on loopback."""
    try:
        from tidings.bench.run import main as bench_main
    except ImportError as exc:  # the bench extra: sse-starlette for the baseline
        fail(f"tidings bench needs the bench extra (pip install 'tidings[bench]'): {exc}")
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    bench_main(
        scenarios.split(",") if scenarios is not None else None,
        quick=quick,
        baseline=baseline,
        output=output,
        database=database,
        admin_browsers=admin_pages,
        rounds=rounds,
    )


def main() -> None:
    try:
        app()
    except TidingsError as exc:
        typer.echo(f"tidings: {exc}", err=True)
        sys.exit(1)


catalog_app = typer.Typer(help="The event catalog.", no_args_is_help=True)
app.add_typer(catalog_app, name="catalog")


PacksOpt = Annotated[
    list[Path] | None,
    typer.Option(
        "--packs", help="Extra pack directory or file (repeat); added to the shipped packs"
    ),
]


def _load_catalog(packs: list[Path] | None) -> Any:
    from tidings.catalog import load_catalog
    from tidings.core.catalog import CatalogError

    try:
        return load_catalog(packs or [])
    except CatalogError as exc:
        fail(str(exc))


@catalog_app.command("list")
def catalog_list(
    module: Annotated[str | None, typer.Option(help="Only this module")] = None,
    category: Annotated[str | None, typer.Option(help="Only this category")] = None,
    search: Annotated[
        str | None, typer.Option("--search", "-q", help="Text in name/title/description")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="JSON lines")] = False,
    packs: PacksOpt = None,
) -> None:
    """List the event types of the shipped packs."""
    catalog = _load_catalog(packs)
    for event_type in catalog.search(module=module, category=category, text=search):
        if as_json:
            typer.echo(json.dumps(event_type.summary_json(), ensure_ascii=False))
        else:
            typer.echo(
                f"{event_type.name:42} v{event_type.latest}  {event_type.category:18} "
                f"{event_type.title or event_type.description.get('en', '')}"
            )


@catalog_app.command("show")
def catalog_show(
    event_type: Annotated[str, typer.Argument(help="Event type, e.g. TICKET_STATUS_CHANGED")],
    version: Annotated[int | None, typer.Option(help="Only this version")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="The full JSON description")] = False,
    packs: PacksOpt = None,
) -> None:
    """One event type: descriptions, audiences, sensitive fields, schemas."""
    catalog = _load_catalog(packs)
    found = catalog.find(event_type)
    if found is None:
        fail(f"unknown event type {event_type!r}")
    detail = found.detail_json()
    if version is not None:
        detail["versions"] = [v for v in detail["versions"] if v["version"] == version]
        if not detail["versions"]:
            fail(f"{event_type} has no version {version} (latest: {found.latest})")
    if as_json:
        typer.echo(json.dumps(detail, indent=2, ensure_ascii=False))
        return
    typer.echo(f"{found.name}  ({found.title})")
    for lang, text in sorted(found.description.items()):
        typer.echo(f"  description[{lang}]: {text}")
    typer.echo(f"  module: {found.module}  category: {found.category}  pack: {found.pack}")
    typer.echo(f"  entityType: {found.entity_type}  action: {found.action}  active: {found.active}")
    typer.echo(f"  audiences: {', '.join(found.audiences) or '(none: publishers must give them)'}")
    for path, permission in sorted(found.sensitive.items()):
        typer.echo(f"  sensitive: {path} (needs {permission})")
    for entry in detail["versions"]:
        typer.echo(f"  {entry['schema']}:")
        if "fields" in entry:
            typer.echo(f"    fields: {entry['fields']}")
        if "compatibility" in entry:
            verdict = "backward compatible" if entry["compatibility"]["compatible"] else "BREAKING"
            typer.echo(f"    vs v{entry['version'] - 1}: {verdict}")
        typer.echo("    " + json.dumps(entry["jsonSchema"], ensure_ascii=False))


@catalog_app.command("validate")
def catalog_validate(
    paths: Annotated[
        list[Path] | None, typer.Argument(help="Extra pack directories or files")
    ] = None,
    only: Annotated[bool, typer.Option("--only", help="Check only the given packs")] = False,
) -> None:
    """Load every pack, check the conventions, report the first problem."""
    from tidings.catalog import catalog_of, load_packs
    from tidings.core.catalog import CatalogError
    from tidings.core.conventions import ref_collisions

    try:
        packs = load_packs(paths or [], shipped=not only)
        catalog = catalog_of(packs)
    except CatalogError as exc:
        fail(str(exc))
    for ref, names in ref_collisions(catalog):
        typer.echo(f"note: {', '.join(names)} share the schema name {ref}", err=True)
    versions = sum(len(t.versions) for t in catalog)
    typer.echo(f"ok: {len(catalog)} event types, {versions} schema versions in {len(packs)} packs")


@catalog_app.command("export")
def catalog_export(
    fmt: Annotated[
        CatalogFormat, typer.Option("--format", help="The document to write")
    ] = CatalogFormat.asyncapi,
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write here (default: stdout)")
    ] = None,
    host: Annotated[
        str, typer.Option(help="Server host in the AsyncAPI document")
    ] = "localhost:8000",
    packs: PacksOpt = None,
) -> None:
    """Export the shipped catalog as AsyncAPI 3.0 or a JSON Schema bundle.
    (A tenant's catalog, with its own types: GET /api/catalog/asyncapi.json.)"""
    from tidings import __version__
    from tidings.core.export import asyncapi_document, schema_bundle

    catalog = _load_catalog(packs)
    if fmt is CatalogFormat.asyncapi:
        document = asyncapi_document(
            catalog, title="Tidings events (shipped packs)", version=__version__, host=host
        )
    else:
        document = schema_bundle(catalog, catalog_id="shipped")
    text = json.dumps(document, indent=2, ensure_ascii=False) + "\n"
    if output is None:
        typer.echo(text, nl=False)
    else:
        try:
            output.write_text(text, encoding="utf-8")
        except OSError as exc:
            fail(f"cannot write {output}: {exc.strerror}")
        typer.echo(f"wrote {output}", err=True)


@catalog_app.command("diff")
def catalog_diff(
    event_type: Annotated[str | None, typer.Argument(help="Compare this type's versions")] = None,
    old: Annotated[
        int | None, typer.Option("--from", help="Old version (default: latest - 1)")
    ] = None,
    new: Annotated[int | None, typer.Option("--to", help="New version (default: latest)")] = None,
    old_packs: Annotated[
        list[Path] | None, typer.Option("--old", help="Old pack file or directory (repeat)")
    ] = None,
    new_packs: Annotated[
        list[Path] | None, typer.Option("--new", help="New pack file or directory (repeat)")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="The report as JSON")] = False,
) -> None:
    """Is a new schema version backward compatible? Exit 0 if so, 1 if not.

    Either one type's versions (``diff TYPE [--from N --to M]``) or two sets
    of packs (``diff --old old/ --new new/``: every type's latest versions,
    and types removed)."""
    from tidings.core.compat import compare

    reports: list[dict[str, Any]] = []
    if old_packs or new_packs:
        if not (old_packs and new_packs):
            fail("give both --old and --new", 2)
        before = _load_only(old_packs or [])
        after = _load_only(new_packs or [])
        for item in before:
            if event_type and item.name != event_type:
                continue
            later = after.find(item.name)
            if later is None:
                reports.append({"type": item.name, "removed": True, "compatible": False})
                continue
            report = compare(item.versions[item.latest], later.versions[later.latest]).to_json()
            reports.append({"type": item.name, "from": item.latest, "to": later.latest, **report})
    else:
        if event_type is None:
            fail("give an event type, or --old and --new pack sets", 2)
        found = _load_catalog(None).find(event_type or "")
        if found is None:
            fail(f"unknown event type {event_type!r}")
        to = new or found.latest
        frm = old or to - 1
        for number in (frm, to):
            if number not in found.versions:
                fail(f"{event_type} has no version {number} (versions: {sorted(found.versions)})")
        report = compare(found.versions[frm], found.versions[to]).to_json()
        reports.append({"type": found.name, "from": frm, "to": to, **report})
    compatible = all(r["compatible"] for r in reports)
    if as_json:
        typer.echo(json.dumps({"compatible": compatible, "types": reports}, indent=2))
    else:
        for r in reports:
            if r.get("removed"):
                typer.echo(f"{r['type']}: REMOVED (breaking)")
                continue
            if not r["changes"]:
                continue
            verdict = "backward compatible" if r["compatible"] else "BREAKING"
            typer.echo(f"{r['type']} v{r['from']} -> v{r['to']}: {verdict}")
            for change in r["changes"]:
                breaks = [d for d in ("backward", "forward") if not change[d]]
                note = f"  (breaks {' and '.join(breaks)})" if breaks else ""
                typer.echo(f"  {change['pointer'] or '/'}: {change['detail']}{note}")
        typer.echo("compatible" if compatible else "not backward compatible")
    if not compatible:
        raise typer.Exit(1)


def _load_only(paths: list[Path]) -> Any:
    from tidings.catalog import load_catalog
    from tidings.core.catalog import CatalogError

    try:
        return load_catalog(paths, shipped=False)
    except CatalogError as exc:
        fail(str(exc))
