"""``tidings rules``, ``tidings jobs``, ``tidings replay`` and ``tidings
worker``: automation from the command line, straight on the database (like
``tidings migrate``). Running servers pick changes up through a control
message (PostgreSQL) or their rule refresh (a few seconds)."""

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

from tidings.cli.commands import ConfigOpt, DatabaseOpt, app, fail, settings_from
from tidings.core.envelope import iso_utc, parse_instant
from tidings.errors import InvalidInput, TidingsError
from tidings.node import Tidings
from tidings.services.auth import OPERATOR

T = TypeVar("T")
rules_app = typer.Typer(help="Automation rules.", no_args_is_help=True)
jobs_app = typer.Typer(help="Automation jobs and dead letters.", no_args_is_help=True)
app.add_typer(rules_app, name="rules")
app.add_typer(jobs_app, name="jobs")
TenantOpt = Annotated[
    str | None, typer.Option("--tenant", help="Tenant id (default: all / global)")
]


def with_node(
    config: str | None, database: str | None, work: Callable[[Tidings], Awaitable[T]]
) -> T:
    """Run ``work`` against a started node (no HTTP, no worker)."""
    settings = settings_from(config, database_url=database, run_jobs=False)

    async def run() -> T:
        tidings = Tidings(settings)
        await tidings.start()
        try:
            return await work(tidings)
        finally:
            await tidings.stop()

    try:
        return asyncio.run(run())
    except TidingsError as exc:
        fail(str(exc))
        raise  # unreachable


def _print(table: Table) -> None:
    """Tables keep one row per line when piped (grep-able)."""
    Console(width=None if sys.stdout.isatty() else 240).print(table)


def _echo_json(value: Any) -> None:
    typer.echo(json.dumps(value, indent=2, ensure_ascii=False))


# -- rules -------------------------------------------------------------------


@rules_app.command("list")
def rules_list(
    config: ConfigOpt = None, database: DatabaseOpt = None, tenant: TenantOpt = None
) -> None:
    """List rules."""

    async def work(tidings: Tidings) -> None:
        table = Table("id", "name", "scope", "trigger", "action", "enabled")
        for r in await tidings.rules.list_rules(OPERATOR, tenant):
            table.add_row(
                r.id,
                r.name,
                r.tenant_id or "global",
                r.spec["trigger"]["type"],
                r.spec["action"]["type"],
                "yes" if r.enabled else f"no ({r.disabled_reason or 'off'})",
            )
        _print(table)

    with_node(config, database, work)


@rules_app.command("show")
def rules_show(rule_id: str, config: ConfigOpt = None, database: DatabaseOpt = None) -> None:
    """One rule as JSON."""
    from tidings.automation.rules import rule_json

    async def work(tidings: Tidings) -> None:
        _echo_json(rule_json(await tidings.rules.get(OPERATOR, rule_id), tidings.actions))

    with_node(config, database, work)


@rules_app.command("add")
def rules_add(
    file: Annotated[Path, typer.Argument(help="A rule (or a list of rules) as JSON or YAML")],
    config: ConfigOpt = None,
    database: DatabaseOpt = None,
) -> None:
    """Create rules from a file."""
    try:
        loaded = yaml.safe_load(file.read_text())
    except (OSError, yaml.YAMLError) as exc:
        fail(f"cannot read {file}: {exc}".splitlines()[0])
    bodies = loaded if isinstance(loaded, list) else [loaded]

    async def work(tidings: Tidings) -> None:
        for body in bodies:
            saved = await tidings.rules.create(OPERATOR, body, author="cli")
            extra = f"  secret {saved.secret}" if saved.secret else ""
            typer.echo(f"{saved.record.id}  {saved.record.name}{extra}")

    with_node(config, database, work)


@rules_app.command("delete")
def rules_delete(rule_id: str, config: ConfigOpt = None, database: DatabaseOpt = None) -> None:
    """Delete a rule (its jobs stay, for the record)."""

    async def work(tidings: Tidings) -> None:
        await tidings.rules.delete(OPERATOR, rule_id)
        typer.echo(f"deleted {rule_id}")

    with_node(config, database, work)


@rules_app.command("test")
def rules_test(
    rule_id: str,
    event: Annotated[Path, typer.Argument(help="A sample event envelope (JSON)")],
    config: ConfigOpt = None,
    database: DatabaseOpt = None,
) -> None:
    """Dry run: would the rule fire for this event, with what configuration?"""
    try:
        sample = json.loads(event.read_text())
    except (OSError, ValueError) as exc:
        fail(f"cannot read {event}: {exc}".splitlines()[0])

    async def work(tidings: Tidings) -> None:
        _echo_json(await tidings.rules.test(OPERATOR, rule_id, sample))

    with_node(config, database, work)


@rules_app.command("packs")
def rules_packs() -> None:
    """The rule packs shipped with Tidings."""
    from tidings.automation.packs import read_pack, shipped_packs

    for name in shipped_packs():
        typer.echo(f"{name}: {read_pack(name).get('description', '')}")


@rules_app.command("load-pack")
def rules_load_pack(
    pack: Annotated[str, typer.Argument(help="A shipped pack name (see 'rules packs') or a file")],
    tenant: TenantOpt = None,
    config: ConfigOpt = None,
    database: DatabaseOpt = None,
) -> None:
    """Install a rule pack (again: replaces its rules, never duplicates)."""
    from tidings.automation.packs import read_pack

    async def work(tidings: Tidings) -> None:
        for record in await tidings.rules.install(OPERATOR, read_pack(pack), tenant):
            typer.echo(f"{record.id}  {record.name}")

    with_node(config, database, work)


# -- jobs --------------------------------------------------------------------


@jobs_app.command("list")
def jobs_list(
    status: Annotated[str | None, typer.Option(help="pending,failed,dead,... (comma list)")] = None,
    tenant: TenantOpt = None,
    rule: Annotated[str | None, typer.Option(help="Rule id")] = None,
    limit: Annotated[int, typer.Option(help="At most this many, newest first")] = 50,
    config: ConfigOpt = None,
    database: DatabaseOpt = None,
) -> None:
    """List jobs (dead letters: --status dead)."""
    from tidings.store.base import JobFilter

    query = JobFilter(
        statuses=tuple(s for s in (status or "").split(",") if s),
        rule_id=rule,
        limit=limit,
    )

    async def work(tidings: Tidings) -> None:
        table = Table(
            "id", "status", "tenant", "rule", "event", "attempts", "last error", "created"
        )
        for j in await tidings.jobs.list_jobs(OPERATOR, query, tenant_id=tenant):
            table.add_row(
                str(j.id),
                j.status,
                j.tenant_id,
                j.rule_id,
                f"{j.event_type} {j.event_id}",
                str(j.attempts),
                (j.last_error or "")[:60],
                iso_utc(j.created_at),
            )
        _print(table)

    with_node(config, database, work)


@jobs_app.command("retry")
def jobs_retry(
    ids: Annotated[list[int], typer.Argument(help="Job ids")],
    config: ConfigOpt = None,
    database: DatabaseOpt = None,
) -> None:
    """Queue failed, dead or finished jobs again now."""

    async def work(tidings: Tidings) -> None:
        typer.echo(f"retried {await tidings.jobs.retry_many(OPERATOR, ids)}")

    with_node(config, database, work)


@jobs_app.command("discard")
def jobs_discard(
    ids: Annotated[list[int], typer.Argument(help="Job ids")],
    reason: Annotated[str, typer.Option(help="Why (kept with the job)")],
    config: ConfigOpt = None,
    database: DatabaseOpt = None,
) -> None:
    """Give up on jobs, with a reason."""

    async def work(tidings: Tidings) -> None:
        count = await tidings.jobs.discard_many(OPERATOR, ids, reason)
        typer.echo(f"discarded {count}")

    with_node(config, database, work)


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
) -> None:
    """Run a time range of the log through the rules again (seed 001)."""
    try:
        since, until = parse_instant(from_, "--from"), parse_instant(to, "--to")
    except TidingsError as exc:
        fail(str(exc), 2)
    if until <= since:
        fail("the range is empty: --to must be after --from", 2)

    async def work(tidings: Tidings) -> None:
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

            report = await tidings.jobs.replay(
                OPERATOR,
                since=since,
                until=until,
                tenant_id=tenant,
                rule_id=rule,
                dry_run=dry_run,
                force=force,
                progress=progress,
            )
        verb = "would queue" if dry_run else "queued"
        existing = ", ".join(f"{n} {s}" for s, n in sorted(report.existing.items())) or "none"
        typer.echo(
            f"{report.scanned} events, {report.matched} rule matches: {verb} {report.queued} "
            f"jobs (already had jobs: {existing})"
        )

    with_node(config, database, work)


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
