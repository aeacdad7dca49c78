"""``tidings rules``, ``tidings jobs``, ``tidings replay`` and ``tidings
worker``: automation from the command line, straight on the database (like
``tidings migrate``) or, with ``--url`` and a key, on a running server over
its HTTP API (:mod:`tidings.cli.targets`; both print the same). Running
servers pick database changes up through a control message (PostgreSQL) or
their rule refresh (a few seconds)."""

from __future__ import annotations

import asyncio
import json
import signal
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
import yaml
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from tidings.cli.commands import (
    ConfigOpt,
    DatabaseOpt,
    KeyOpt,
    OutputFormat,
    RemoteUrlOpt,
    app,
    fail,
    settings_from,
)
from tidings.cli.targets import (
    Automation,
    JobQuery,
    OnDatabase,
    ReplayQuery,
    on_node,
    on_server,
    remote_error,
)
from tidings.core.envelope import parse_instant
from tidings.errors import InvalidInput, TidingsError

T = TypeVar("T")
rules_app = typer.Typer(help="Automation rules.", no_args_is_help=True)
jobs_app = typer.Typer(help="Automation jobs and dead letters.", no_args_is_help=True)
app.add_typer(rules_app, name="rules")
app.add_typer(jobs_app, name="jobs")
TenantOpt = Annotated[
    str | None, typer.Option("--tenant", help="Tenant id (default: all / global)")
]
FormatOpt = Annotated[OutputFormat, typer.Option("--format", help="A table or JSON")]


def run(
    config: str | None,
    database: str | None,
    url: str | None,
    key: str | None,
    work: Callable[[Automation], Awaitable[T]],
) -> T:
    """Run ``work`` on the server at ``url`` (with ``key``), or else on the
    database; an error is one line."""
    try:
        if url is not None:
            if database is not None or config is not None:
                fail("give --url (a server) or --database/--config (a database), not both", 2)
            try:
                return on_server(url, key, work)
            except TidingsError as exc:
                fail(remote_error(url, exc))
        settings = settings_from(config, database_url=database, run_jobs=False)
        return on_node(settings, lambda tidings: work(OnDatabase(tidings)))
    except TidingsError as exc:
        fail(str(exc))
    raise AssertionError("unreachable: fail() exits")


def _print(table: Table) -> None:
    """Tables keep one row per line when piped (grep-able)."""
    Console(width=None if sys.stdout.isatty() else 240).print(table)


def _echo_json(value: Any) -> None:
    typer.echo(json.dumps(value, indent=2, ensure_ascii=False))


# -- rules -------------------------------------------------------------------


@rules_app.command("list")
def rules_list(
    config: ConfigOpt = None,
    database: DatabaseOpt = None,
    url: RemoteUrlOpt = None,
    key: KeyOpt = None,
    tenant: TenantOpt = None,
    fmt: FormatOpt = OutputFormat.table,
) -> None:
    """List rules."""

    async def work(on: Automation) -> None:
        rules = await on.list_rules(tenant)
        if fmt is OutputFormat.json:
            _echo_json(rules)
            return
        table = Table("id", "name", "scope", "trigger", "action", "enabled")
        for r in rules:
            table.add_row(
                r["id"],
                r["name"],
                r["tenantId"] or "global",
                r["trigger"]["type"],
                r["action"]["type"],
                "yes" if r["enabled"] else f"no ({r['disabledReason'] or 'off'})",
            )
        _print(table)

    run(config, database, url, key, work)


@rules_app.command("show")
def rules_show(
    rule_id: str,
    config: ConfigOpt = None,
    database: DatabaseOpt = None,
    url: RemoteUrlOpt = None,
    key: KeyOpt = None,
) -> None:
    """One rule as JSON."""

    async def work(on: Automation) -> None:
        _echo_json(await on.get_rule(rule_id))

    run(config, database, url, key, work)


@rules_app.command("add")
def rules_add(
    file: Annotated[Path, typer.Argument(help="A rule (or a list of rules) as JSON or YAML")],
    config: ConfigOpt = None,
    database: DatabaseOpt = None,
    url: RemoteUrlOpt = None,
    key: KeyOpt = None,
) -> None:
    """Create rules from a file."""
    try:
        loaded = yaml.safe_load(file.read_text())
    except (OSError, yaml.YAMLError) as exc:
        fail(f"cannot read {file}: {exc}".splitlines()[0])
    bodies = loaded if isinstance(loaded, list) else [loaded]

    async def work(on: Automation) -> None:
        for body in bodies:
            saved = await on.create_rule(body)
            extra = f"  secret {saved['secret']}" if saved.get("secret") else ""
            typer.echo(f"{saved['id']}  {saved['name']}{extra}")

    run(config, database, url, key, work)


@rules_app.command("delete")
def rules_delete(
    rule_id: str,
    config: ConfigOpt = None,
    database: DatabaseOpt = None,
    url: RemoteUrlOpt = None,
    key: KeyOpt = None,
) -> None:
    """Delete a rule (its jobs stay, for the record)."""

    async def work(on: Automation) -> None:
        await on.delete_rule(rule_id)
        typer.echo(f"deleted {rule_id}")

    run(config, database, url, key, work)


@rules_app.command("test")
def rules_test(
    rule_id: str,
    event: Annotated[Path, typer.Argument(help="A sample event envelope (JSON)")],
    config: ConfigOpt = None,
    database: DatabaseOpt = None,
    url: RemoteUrlOpt = None,
    key: KeyOpt = None,
) -> None:
    """Dry run: would the rule fire for this event, with what configuration?"""
    try:
        sample = json.loads(event.read_text())
    except (OSError, ValueError) as exc:
        fail(f"cannot read {event}: {exc}".splitlines()[0])

    async def work(on: Automation) -> None:
        _echo_json(await on.test_rule(rule_id, sample))

    run(config, database, url, key, work)


@rules_app.command("packs")
def rules_packs() -> None:
    """The rule packs shipped with Tidings."""
    from tidings.automation.packs import read_pack, shipped_packs

    for name in shipped_packs():
        typer.echo(f"{name}: {read_pack(name).get('description', '')}")


@rules_app.command("load-pack")
def rules_load_pack(
    pack: Annotated[
        str,
        typer.Argument(help="A shipped pack name (see 'rules packs'), or a pack file"),
    ],
    tenant: TenantOpt = None,
    config: ConfigOpt = None,
    database: DatabaseOpt = None,
    url: RemoteUrlOpt = None,
    key: KeyOpt = None,
) -> None:
    """Install a rule pack (again: replaces its rules, never duplicates)."""

    async def work(on: Automation) -> None:
        for rule in await on.install_pack(pack, tenant):
            typer.echo(f"{rule['id']}  {rule['name']}")

    run(config, database, url, key, work)


# -- jobs --------------------------------------------------------------------


@jobs_app.command("list")
def jobs_list(
    status: Annotated[str | None, typer.Option(help="pending,failed,dead,... (comma list)")] = None,
    tenant: TenantOpt = None,
    rule: Annotated[str | None, typer.Option(help="Rule id")] = None,
    limit: Annotated[
        int, typer.Option(min=1, max=1000, help="At most this many, newest first")
    ] = 50,
    config: ConfigOpt = None,
    database: DatabaseOpt = None,
    url: RemoteUrlOpt = None,
    key: KeyOpt = None,
    fmt: FormatOpt = OutputFormat.table,
) -> None:
    """List jobs (dead letters: --status dead)."""
    query = JobQuery(status=status, tenant_id=tenant, rule_id=rule, limit=limit)

    async def work(on: Automation) -> None:
        jobs = await on.list_jobs(query)
        if fmt is OutputFormat.json:
            _echo_json(jobs)
            return
        table = Table(
            "id", "status", "tenant", "rule", "event", "attempts", "last error", "created"
        )
        for j in jobs:
            table.add_row(
                str(j["id"]),
                j["status"],
                j["tenantId"],
                j["ruleId"],
                f"{j['eventType']} {j['eventId']}",
                str(j["attemptCount"]),
                (j["lastError"] or "")[:60],
                j["createdAt"],
            )
        _print(table)

    run(config, database, url, key, work)


@jobs_app.command("retry")
def jobs_retry(
    ids: Annotated[list[int], typer.Argument(help="Job ids")],
    config: ConfigOpt = None,
    database: DatabaseOpt = None,
    url: RemoteUrlOpt = None,
    key: KeyOpt = None,
) -> None:
    """Queue failed, dead or finished jobs again now."""

    async def work(on: Automation) -> None:
        typer.echo(f"retried {await on.retry_jobs(ids)}")

    run(config, database, url, key, work)


@jobs_app.command("discard")
def jobs_discard(
    ids: Annotated[list[int], typer.Argument(help="Job ids")],
    reason: Annotated[str, typer.Option(help="Why (kept with the job)")],
    config: ConfigOpt = None,
    database: DatabaseOpt = None,
    url: RemoteUrlOpt = None,
    key: KeyOpt = None,
) -> None:
    """Give up on jobs, with a reason."""

    async def work(on: Automation) -> None:
        typer.echo(f"discarded {await on.discard_jobs(ids, reason)}")

    run(config, database, url, key, work)


# -- replay and worker ---------------------------------------------------------


@app.command()
def replay(
    from_: Annotated[str, typer.Option("--from", help="Start (ISO-8601 or epoch seconds)")],
    to: Annotated[str, typer.Option("--to", help="End, exclusive (ISO-8601 or epoch seconds)")],
    tenant: TenantOpt = None,
    rule: Annotated[str | None, typer.Option("--rule", help="Only this rule")] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Count, queue nothing")] = False,
    force: Annotated[
        bool, typer.Option("--force", help="Also re-run jobs that already succeeded")
    ] = False,
    config: ConfigOpt = None,
    database: DatabaseOpt = None,
    url: RemoteUrlOpt = None,
    key: KeyOpt = None,
) -> None:
    """Run a time range of the log through the rules again (seed 001)."""
    try:
        since, until = parse_instant(from_, "--from"), parse_instant(to, "--to")
    except TidingsError as exc:
        fail(str(exc), 2)
    if until <= since:
        fail("the range is empty: --to must be after --from", 2)
    query = ReplayQuery(since, until, tenant, rule, dry_run=dry_run, force=force)

    async def work(on: Automation) -> None:
        columns = (
            TextColumn("replay"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
        )
        with Progress(*columns, console=Console(stderr=True)) as bar:
            task = bar.add_task("replay", total=None)

            def progress(done: int, total: int) -> None:
                bar.update(task, completed=done, total=total)

            report = await on.replay(query, progress)
        verb = "would queue" if dry_run else "queued"
        existing = ", ".join(f"{n} {s}" for s, n in sorted(report["existing"].items())) or "none"
        typer.echo(
            f"{report['scanned']} events, {report['matched']} rule matches: {verb} "
            f"{report['queued']} jobs (already had jobs: {existing})"
        )

    run(config, database, url, key, work)


@app.command()
def worker(
    concurrency: Annotated[int | None, typer.Option(help="Jobs at once")] = None,
    metrics_port: Annotated[
        int | None,
        typer.Option(
            help="Serve Prometheus metrics at http://<host>:PORT/metrics"
            " (host: the host setting; the metrics token applies)",
            min=1,
            max=65535,
        ),
    ] = None,
    config: ConfigOpt = None,
    database: DatabaseOpt = None,
) -> None:
    """Run a job worker without the HTTP server (scale workers separately)."""
    from tidings.http.metrics import Metrics, serve_metrics
    from tidings.logs import configure_logging
    from tidings.node import Tidings

    settings = settings_from(
        config, database_url=database, job_concurrency=concurrency, run_jobs=True
    )
    configure_logging(settings.log_level, json=settings.json_logs)

    async def run() -> None:
        tidings = Tidings(settings)
        exporter = None
        if metrics_port is not None:
            try:
                exporter = serve_metrics(
                    Metrics(tidings),
                    asyncio.get_running_loop(),
                    host=settings.host,
                    port=metrics_port,
                    token=settings.metrics_token,
                )
            except OSError as exc:
                where = f"{settings.host}:{metrics_port}"
                raise InvalidInput(
                    f"cannot serve metrics on {where}: {exc.strerror}", field="metrics_port"
                ) from None
        await tidings.start()
        typer.echo(f"worker {tidings.worker.id if tidings.worker else '?'} running", err=True)
        stop = asyncio.Event()
        for signum in (signal.SIGTERM, signal.SIGINT):
            asyncio.get_running_loop().add_signal_handler(signum, stop.set)
        try:
            await stop.wait()  # then finish running jobs (or leave them to the lease)
        finally:
            if exporter is not None:
                await asyncio.to_thread(exporter.shutdown)
            await tidings.stop()

    try:
        asyncio.run(run())
    except TidingsError as exc:
        fail(str(exc))
