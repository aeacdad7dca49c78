"""The benchmark runner behind ``tidings bench`` (also ``python -m tidings.bench.run``).

For each scenario and each system (Tidings, then the baseline) it starts a
fresh server pinned to core 0, provisions it, runs the client process
pinned to core 1, stops the server, and finally prints the JSON and a table
with the ratios and the targets.

With ``--database URL|auto`` (PostgreSQL) the ``publish`` scenario also runs
against Tidings on PostgreSQL, and ``scale`` runs the fan-out on PostgreSQL
with one and then two Tidings processes sharing the database. Each of those
runs gets a fresh ``bench_<random>`` database, dropped afterwards.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import importlib
import importlib.util
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import (
    BarColumn,
    Progress,
    ProgressColumn,
    Task,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)
from rich.text import Text

from tidings.bench import admin_pages, postgres, report, servers
from tidings.config import Settings

SYSTEMS = ("tidings", "baseline")
WATCHED = "tidings_admin"  # Tidings with --admin-pages browsers on its admin pages
WATCHED_WORKLOADS = frozenset({"fanout", "sustained"})
BASELINE = "Starlette + sse-starlette, asyncio.Queue per client, uvicorn (uvloop, httptools)"


@dataclass(frozen=True)
class Layout:
    """Where a system on PostgreSQL runs: one core (or None: not pinned) per
    Tidings process, and the client's core."""

    server_cores: tuple[int | None, ...]
    client_core: int | None = servers.CLIENT_CORE

    def to_json(self) -> dict[str, Any]:
        pin = servers.can_pin()
        return {
            "server_cores": [core if pin else None for core in self.server_cores],
            "client_core": self.client_core if pin else None,
        }


# Publish on PostgreSQL is laid out like the SQLite run (server on core 0,
# client on core 1). Scale is not pinned at all, with one process as with
# two: pinning two servers to cores 0 and 1 puts the client on a core with
# one of them, which starves that pair while core 0 idles; the scheduler
# spreads the load instead, and the client competes with the servers either way.
LAYOUTS: dict[str, Layout] = {
    "tidings_postgres": Layout((servers.SERVER_CORE,)),
    "one_process": Layout((None,), None),
    "two_processes": Layout((None, None), None),
}


@dataclass(frozen=True)
class Scenario:
    name: str
    title: str
    workload: str
    full: dict[str, Any]
    quick: dict[str, Any]
    timeout_s: float
    systems: tuple[str, ...] | None = None  # None: Tidings (then the baseline)
    needs_database: bool = False  # only with --database
    on_postgres_too: bool = False  # with --database, also Tidings on PostgreSQL

    def params(self, quick: bool) -> dict[str, Any]:
        return dict(self.quick if quick else self.full)

    def users(self, quick: bool) -> int:
        params = self.params(quick)
        wanted = params.get("subscribers") or params.get("connections") or 1
        return max(1, min(100, int(wanted)))


SCENARIOS: dict[str, Scenario] = {
    s.name: s
    for s in (
        Scenario(
            "s1",
            "1,000 subscribers, 200 events at 20/s (20k deliveries/s offered)",
            "fanout",
            {"subscribers": 1000, "events": 200, "rate": 20, "drain_cap_s": 20},
            {"subscribers": 200, "events": 40, "rate": 20, "drain_cap_s": 8},
            timeout_s=180,
        ),
        Scenario(
            "s2",
            "10,000 subscribers, 100 events at 10/s (100k deliveries/s offered)",
            "fanout",
            {"subscribers": 10_000, "events": 100, "rate": 10, "drain_cap_s": 40},
            {"subscribers": 2000, "events": 20, "rate": 10, "drain_cap_s": 10},
            timeout_s=300,
        ),
        Scenario(
            "s3",
            "100 subscribers, 4 publishers back to back",
            "sustained",
            {"subscribers": 100, "publishers": 4, "duration_s": 10, "drain_cap_s": 30},
            {"subscribers": 50, "publishers": 4, "duration_s": 2, "drain_cap_s": 8},
            timeout_s=180,
        ),
        Scenario(
            "publish",
            "durable publish: 16 concurrent single POSTs, then batches of 500",
            "publish",
            {"concurrency": 16, "duration_s": 10, "batch_concurrency": 4, "batch_size": 500},
            {"concurrency": 16, "duration_s": 2, "batch_concurrency": 4, "batch_size": 500},
            timeout_s=180,
            on_postgres_too=True,
        ),
        Scenario(
            "memory",
            "resident memory per idle SSE connection",
            "memory",
            {"connections": 10_000, "settle_s": 3.0},
            {"connections": 2000, "settle_s": 1.5},
            timeout_s=240,
        ),
        Scenario(
            "scale",
            "fan-out on PostgreSQL, 1 vs 2 Tidings processes: 2,000 subscribers split evenly, "
            "500 events at 50/s to process 1 (100k deliveries/s offered)",
            "fanout",
            {"subscribers": 2000, "events": 500, "rate": 50, "drain_cap_s": 30},
            {"subscribers": 1000, "events": 90, "rate": 30, "drain_cap_s": 10},
            timeout_s=240,
            systems=("one_process", "two_processes"),
            needs_database=True,
        ),
    )
}
OPTIONAL = ("validation", "automation", "outbox", "portal")  # modules with run(quick)
OPTIONAL_ON_POSTGRES = frozenset({"outbox"})  # run(quick, pg): also on --database's server


class CountColumn(ProgressColumn):
    """``done/total``, or nothing for open-ended tasks."""

    def render(self, task: Task) -> Text:
        if task.total is None:
            return Text("")
        return Text(f"{task.completed:>8,.0f}/{task.total:,.0f}")


def pin_self() -> None:
    """Keep the runner (progress bars, JSON) off the server's core."""
    if servers.can_pin() and hasattr(os, "sched_setaffinity"):
        with contextlib.suppress(OSError):
            os.sched_setaffinity(0, {servers.CLIENT_CORE})


def run_client(
    scenario: Scenario,
    system: str,
    target: servers.Target,
    params: dict[str, Any],
    workdir: Path,
    progress: Progress,
    core: int | None = servers.CLIENT_CORE,
) -> dict[str, Any]:
    """Run the client process for one scenario against one server."""
    spec_path = workdir / f"{scenario.name}-{system}.spec.json"
    spec_path.write_text(
        json.dumps({"workload": scenario.workload, "target": target.to_json(), "params": params})
    )
    log_path = workdir / f"{scenario.name}-{system}.client.log"
    env = dict(os.environ)
    command = [sys.executable, "-m", "tidings.bench.client", str(spec_path)]
    tasks: dict[str, TaskID] = {}
    outcome: dict[str, Any] = {"error": "the client ended without a result"}
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            servers.placed(command, core),
            stdout=subprocess.PIPE,
            stderr=log,
            env=env,
        )
        watchdog = threading.Timer(scenario.timeout_s, proc.kill)
        watchdog.start()
        try:
            assert proc.stdout is not None
            for raw in proc.stdout:
                line = json.loads(raw)
                if line["event"] == "progress":
                    phase = line["phase"]
                    if phase not in tasks:
                        label = f"{scenario.name} {system:8} {phase}"
                        tasks[phase] = progress.add_task(label, total=line["total"])
                    progress.update(tasks[phase], completed=line["done"], total=line["total"])
                elif line["event"] == "result":
                    outcome = line["result"]
                elif line["event"] == "error":
                    outcome = {"error": line["error"]}
            proc.wait()
        finally:
            watchdog.cancel()
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            for task in tasks.values():
                progress.remove_task(task)
    if "error" in outcome:
        tail = log_path.read_text(errors="replace")[-2000:]
        progress.console.print(f"[red]{scenario.name} {system}: {outcome['error']}[/]\n{tail}")
    return outcome


@contextlib.contextmanager
def deployed(
    scenario: Scenario,
    system: str,
    quick: bool,
    workdir: Path,
    pg: postgres.Postgres | None,
    admin_browsers: int = 0,
) -> Iterator[servers.Target]:
    """The provisioned server(s) of ``system`` for one run: on SQLite (or the
    baseline), or Tidings processes on a fresh PostgreSQL database."""
    name = f"{scenario.name}-{system}"
    users = scenario.users(quick)
    if system == WATCHED:
        with servers.running("tidings", workdir, name, users=users) as target:
            url = f"http://{target.host}:{target.port}"
            with admin_pages.watching(
                url, servers.ADMIN_KEY, admin_browsers, workdir / f"{name}.browsers.log"
            ) as answered:
                yield target
            polls = ", ".join(f"{path} {n}" for path, n in answered.items())
            print(f"  {name}: admin pages answered: {polls or 'nothing'}", file=sys.stderr)
        return
    if system not in LAYOUTS:
        with servers.running(system, workdir, name, users=users) as target:
            yield target
        return
    assert pg is not None, f"{system} needs --database"
    with (
        pg.fresh_database() as url,
        servers.running_cluster(
            workdir,
            name,
            database_url=url,
            cores=LAYOUTS[system].server_cores,
            users=users,
            database_pid=pg.postmaster_pid,
        ) as target,
    ):
        yield target


def start_label(scenario: Scenario, system: str) -> str:
    layout = LAYOUTS.get(system)
    count = len(layout.server_cores) if layout else 1
    what = "start server" if count == 1 else f"start {count} servers"
    if layout is not None:
        what += " on a fresh PostgreSQL database"
    return f"{scenario.name} {system:8} {what}"


def run_scenario(
    scenario: Scenario,
    system: str,
    quick: bool,
    workdir: Path,
    progress: Progress,
    pg: postgres.Postgres | None = None,
    admin_browsers: int = 0,
) -> dict[str, Any]:
    params = scenario.params(quick)
    load = round(os.getloadavg()[0], 2)
    started = time.monotonic()
    task = progress.add_task(start_label(scenario, system), total=None)
    try:
        with deployed(scenario, system, quick, workdir, pg, admin_browsers) as target:
            progress.remove_task(task)
            core = LAYOUTS[system].client_core if system in LAYOUTS else servers.CLIENT_CORE
            result = run_client(scenario, system, target, params, workdir, progress, core)
    except Exception as exc:  # a server that does not start: report, go on
        progress.remove_task(task)
        progress.console.print(f"[red]{scenario.name} {system}: {exc}[/]")
        result = {"error": f"{type(exc).__name__}: {exc}"}
    seconds = time.monotonic() - started
    result["loadavg_1m_at_start"] = load
    progress.console.print(f"  {scenario.name} {system}: done in {seconds:.1f}s (load {load})")
    return result


def run_optional(
    name: str, quick: bool, progress: Progress, pg: postgres.Postgres | None = None
) -> dict[str, Any]:
    """An in-process benchmark module ``tidings.bench.<name>`` (``run(quick)``):
    validation on vs off, automation (outbox cost, worker jobs/s), the
    transactional outbox's relay vs direct publishing (``run(quick, pg)``)."""
    module_name = f"tidings.bench.{name}"
    if importlib.util.find_spec(module_name) is None:
        return {"skipped": f"tidings/bench/{name}.py is not present"}
    task = progress.add_task(name, total=None)
    try:
        module = importlib.import_module(module_name)
        if name in OPTIONAL_ON_POSTGRES:
            return dict(module.run(quick, pg))
        return dict(module.run(quick))
    except Exception as exc:
        progress.console.print(f"[red]{name}: {exc}[/]")
        return {"error": f"{type(exc).__name__}: {exc}"}
    finally:
        progress.remove_task(task)


def machine() -> dict[str, Any]:
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpu": model,
        "cores": os.cpu_count(),
        "pinned": servers.can_pin(),
        "server_core": servers.SERVER_CORE if servers.can_pin() else None,
        "client_core": servers.CLIENT_CORE if servers.can_pin() else None,
    }


def scenario_names(scenarios: Sequence[str] | None, database: str | None) -> list[str]:
    """The scenarios to run (None: every one this run can do)."""
    if scenarios is None:
        every = [n for n, s in SCENARIOS.items() if database is not None or not s.needs_database]
        return [*every, *OPTIONAL]  # and the in-process ones (validation, automation)
    names = [n.strip() for n in scenarios if n.strip()]
    unknown = [n for n in names if n not in SCENARIOS and n not in OPTIONAL]
    if unknown:
        known = ", ".join([*SCENARIOS, *OPTIONAL])
        raise SystemExit(f"tidings bench: unknown scenario(s) {', '.join(unknown)} ({known})")
    needy = [n for n in names if n in SCENARIOS and SCENARIOS[n].needs_database]
    if needy and database is None:
        raise SystemExit(
            f"tidings bench: {', '.join(needy)} needs --database (a postgresql:// URL, or auto)"
        )
    return names


def uses_postgres(names: Sequence[str]) -> bool:
    scenarios = [SCENARIOS[n] for n in names if n in SCENARIOS]
    optional = any(n in OPTIONAL_ON_POSTGRES for n in names)
    return optional or any(s.needs_database or s.on_postgres_too for s in scenarios)


def systems_for(
    scenario: Scenario, baseline: bool, pg: postgres.Postgres | None, admin_browsers: int = 0
) -> list[str]:
    if scenario.systems is not None:
        return list(scenario.systems)
    systems = list(SYSTEMS if baseline else SYSTEMS[:1])
    if pg is not None and scenario.on_postgres_too:
        systems.append("tidings_postgres")
    if admin_browsers and scenario.workload in WATCHED_WORKLOADS:
        systems.append(WATCHED)
    return systems


@contextlib.contextmanager
def database_server(database: str | None, progress: Progress) -> Iterator[postgres.Postgres | None]:
    """The PostgreSQL server of ``--database`` (None without it); a
    one-line exit when it cannot be used."""
    if database is None:
        yield None
        return
    doing = "start a temporary server" if database == postgres.AUTO else "connect"
    task = progress.add_task(f"PostgreSQL: {doing}", total=None)
    shown = True
    try:
        with postgres.connect(database) as pg:
            progress.remove_task(task)
            shown = False
            yield pg
    except postgres.DatabaseError as exc:
        if shown:
            progress.remove_task(task)
        raise SystemExit(f"tidings bench: {exc}") from None


def postgres_meta(pg: postgres.Postgres) -> dict[str, Any]:
    return {
        **pg.describe(),
        "databases": "a fresh bench_<random> database per run, dropped afterwards",
        "layouts": {system: layout.to_json() for system, layout in LAYOUTS.items()},
    }


def metadata(
    started: float, load_before: tuple[float, ...], quick: bool, pg_meta: dict[str, Any] | None
) -> dict[str, Any]:
    meta: dict[str, Any] = {
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(started)),
        "duration_s": round(time.time() - started, 1),
        "quick": quick,
        "loadavg_before": [round(x, 2) for x in load_before],
        "loadavg_after": [round(x, 2) for x in os.getloadavg()],
        "machine": machine(),
        "tidings": {
            "database": f"sqlite (WAL, synchronous={Settings().sqlite_synchronous})",
            "processes": 1,
        },
        "baseline": BASELINE,
    }
    if pg_meta is not None:
        meta["postgresql"] = pg_meta
    return meta


def main(
    scenarios: Sequence[str] | None,
    *,
    quick: bool,
    baseline: bool,
    output: Path | None = None,
    database: str | None = None,
    admin_browsers: int = 0,
    rounds: int = 1,
) -> None:
    """Run ``scenarios`` (None: all; ``scale`` and the PostgreSQL publish run
    only with ``database``, a ``postgresql://`` URL or ``auto``;
    ``admin_browsers``: the fan-out scenarios once more with that many
    browsers on the admin pages; ``rounds``: without and with them that
    many times, alternately, the medians reported)."""
    names = scenario_names(scenarios, database)
    if admin_browsers and (why := admin_pages.missing()):
        raise SystemExit(f"tidings bench: {why}")
    if database is not None and database != postgres.AUTO:
        try:  # before any progress output: a bad URL is one line
            postgres.check_url(database)
        except postgres.DatabaseError as exc:
            raise SystemExit(f"tidings bench: {exc}") from None
    pin_self()
    console = Console(stderr=True)
    results: dict[str, Any] = {}
    pg_meta: dict[str, Any] | None = None
    started = time.time()
    load_before = os.getloadavg()
    with (
        tempfile.TemporaryDirectory(prefix="tidings-bench-") as tmp,
        Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            CountColumn(),
            TimeElapsedColumn(),
            console=console,
            refresh_per_second=4,
        ) as progress,
        database_server(database if uses_postgres(names) else None, progress) as pg,
    ):
        pg_meta = postgres_meta(pg) if pg is not None else None
        for name in names:
            if name in OPTIONAL:
                results[name] = run_optional(name, quick, progress, pg)
                continue
            scenario = SCENARIOS[name]
            entry: dict[str, Any] = {"title": scenario.title, "params": scenario.params(quick)}
            systems = systems_for(scenario, baseline, pg, admin_browsers)
            for system in systems:
                entry[system] = run_scenario(
                    scenario, system, quick, Path(tmp), progress, pg, admin_browsers
                )
            if WATCHED in systems and rounds > 1:
                entry.update(
                    alternated(
                        functools.partial(
                            run_scenario,
                            scenario=scenario,
                            quick=quick,
                            workdir=Path(tmp),
                            progress=progress,
                            pg=pg,
                            admin_browsers=admin_browsers,
                        ),
                        first={s: entry[s] for s in ("tidings", WATCHED)},
                        rounds=rounds,
                    )
                )
            results[name] = entry
    document = report.build(results, metadata(started, load_before, quick, pg_meta))
    text = json.dumps(document, indent=2)
    print(text)
    if output is not None:
        output.write_text(text + "\n")
    report.print_table(document, Console(width=None if sys.stdout.isatty() else 132))


def alternated(
    run: Callable[..., dict[str, Any]], *, first: dict[str, dict[str, Any]], rounds: int
) -> dict[str, Any]:
    """Without and with the admin pages ``rounds`` times in all (``first``:
    the round already run), alternately, so a drift of the machine falls on
    both alike; each figure is the median of its rounds, every round kept
    under ``rounds``."""
    runs: dict[str, list[dict[str, Any]]] = {system: [result] for system, result in first.items()}
    for _ in range(rounds - 1):
        for system in runs:
            runs[system].append(run(system=system))
    merged: dict[str, Any] = {system: median_result(each) for system, each in runs.items()}
    merged["rounds"] = runs
    return merged


def median_result(results: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """One result whose every number is the median of ``results``' (other
    values: the first result's)."""

    def merge(values: list[Any]) -> Any:
        head = values[0]
        if isinstance(head, dict):
            keys = [k for k in head if all(isinstance(v, dict) and k in v for v in values)]
            return {k: merge([v[k] for v in values]) for k in keys}
        numbers = [v for v in values if isinstance(v, int | float) and not isinstance(v, bool)]
        if len(numbers) == len(values):
            middle = statistics.median(numbers)
            return round(middle, 3) if isinstance(middle, float) else middle
        return head

    merged = merge(list(results))
    return dict(merged) if isinstance(merged, dict) else {}


def cli() -> None:
    parser = argparse.ArgumentParser(description="Benchmark Tidings against the baseline.")
    parser.add_argument(
        "--scenarios", help=f"comma list of {','.join(SCENARIOS)} (default: all that can run)"
    )
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--no-baseline", dest="baseline", action="store_false")
    parser.add_argument("--output", type=Path)
    parser.add_argument(
        "--database",
        help="PostgreSQL URL (postgresql://...) or 'auto' (a temporary server): adds the "
        "publish-on-PostgreSQL runs and the scale scenario",
    )
    parser.add_argument(
        "--admin-pages",
        type=int,
        default=0,
        help="also run the fan-out scenarios with this many browsers on the admin pages",
    )
    parser.add_argument(
        "--rounds",
        type=int,
        default=1,
        help="with --admin-pages: without and with the browsers this many times, alternately "
        "(the medians are reported)",
    )
    args = parser.parse_args()
    main(
        args.scenarios.split(",") if args.scenarios is not None else None,
        quick=args.quick,
        baseline=args.baseline,
        output=args.output,
        database=args.database,
        admin_browsers=args.admin_pages,
        rounds=args.rounds,
    )


if __name__ == "__main__":
    cli()
