"""Targets, ratios, the JSON document and the tables.

The main table compares Tidings with the baseline. With ``--database``,
:data:`COMPARISONS` add one table each that compares two runs of Tidings:
on SQLite vs on PostgreSQL (publish), and one vs two processes on
PostgreSQL (scale). Their ratio is the right column / the left column.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from rich.console import Console
from rich.table import Table

OPS: dict[str, Callable[[float, float], bool]] = {
    ">=": operator.ge,
    "<=": operator.le,
    "==": operator.eq,
}


@dataclass(frozen=True)
class Metric:
    scenario: str
    label: str
    path: tuple[str, ...]
    unit: str = ""
    higher_is_better: bool = True
    target: tuple[str, float] | None = None
    ratio: bool = True  # compare with the baseline

    def value(self, result: Any) -> float | None:
        for key in self.path:
            if not isinstance(result, dict) or key not in result:
                return None
            result = result[key]
        return result if isinstance(result, int | float) else None

    def times_better(self, tidings: float | None, baseline: float | None) -> float | None:
        """How many times better Tidings is (>1: better), whichever way
        "better" points for this metric."""
        if not self.ratio or tidings is None or baseline is None:
            return None
        if self.higher_is_better:
            return tidings / baseline if baseline > 0 else None
        return baseline / tidings if tidings > 0 else None


@dataclass(frozen=True)
class PerDeliveries(Metric):
    """``path`` (a CPU %) per 100,000 deliveries/s: what the fan-out costs."""

    def value(self, result: Any) -> float | None:
        used = super().value(result)
        rate = Metric(self.scenario, "", ("deliveries_per_s",)).value(result)
        return round(used * 100_000 / rate, 1) if used is not None and rate else None


def fanout_metrics(name: str, rate_target: float | None, p99_target: float | None) -> list[Metric]:
    return [
        Metric(
            name,
            "deliveries/s",
            ("deliveries_per_s",),
            "/s",
            target=(">=", rate_target) if rate_target else None,
        ),
        Metric(name, "latency p50", ("latency", "p50_ms"), "ms", False),
        Metric(
            name,
            "latency p99",
            ("latency", "p99_ms"),
            "ms",
            False,
            ("<=", p99_target) if p99_target else None,
        ),
        Metric(name, "loss", ("loss",), "", False, ("==", 0), ratio=False),
        Metric(name, "server CPU", ("server_cpu_pct",), "%", False, ratio=False),
        Metric(name, "client CPU", ("client_cpu_pct",), "%", False, ratio=False),
    ]


METRICS: list[Metric] = [
    *fanout_metrics("s1", None, 50),
    *fanout_metrics("s2", 80_000, 1000),
    Metric("s2", "stream opens/s", ("connects_per_s",), "/s"),
    Metric("s3", "publishes/s", ("publish_per_s",), "/s"),
    *fanout_metrics("s3", 100_000, None),
    Metric("publish", "single events/s †", ("single", "events_per_s"), "/s", target=(">=", 3000)),
    Metric("publish", "single p50 †", ("single", "latency", "p50_ms"), "ms", False),
    Metric("publish", "single p99 †", ("single", "latency", "p99_ms"), "ms", False, ("<=", 25)),
    Metric("publish", "batch events/s †", ("batch", "events_per_s"), "/s", target=(">=", 50_000)),
    Metric("publish", "batch (500) p50 †", ("batch", "latency", "p50_ms"), "ms", False),
    Metric("publish", "batch (500) p99 †", ("batch", "latency", "p99_ms"), "ms", False),
    Metric("memory", "connections open", ("subscribers",), "", ratio=False),
    Metric("memory", "stream opens/s", ("connects_per_s",), "/s"),
    Metric(
        "memory",
        "KiB per idle connection",
        ("kib_per_connection",),
        "KiB",
        False,
        ("<=", 16),
    ),
]
NOTES = [
    "ratio = how many times better Tidings is than the baseline (>1 = Tidings better).",
    "† the baseline has no authentication, audience index or durable log: "
    "publish numbers are not like for like.",
    "latency: just before the publish request is written -> the subscriber has parsed "
    "the event (same process, same clock). deliveries/s: received / (first send -> last "
    "receive).",
    "server/client CPU: % of one core over the delivery window (server on core 0, client "
    "on core 1).",
]


@dataclass(frozen=True)
class Column:
    key: str  # the system's key in the scenario's results
    label: str


@dataclass(frozen=True)
class Comparison:
    """Two runs of Tidings side by side; ratio = right / left."""

    scenario: str
    name: str
    title: str
    left: Column
    right: Column
    ratio_label: str
    metrics: tuple[Metric, ...]
    checked: tuple[str, ...]  # the columns held to the targets

    @property
    def columns(self) -> tuple[Column, Column]:
        return (self.left, self.right)


def _publish_pg_metrics() -> tuple[Metric, ...]:
    name = "publish"
    rows = [metric for metric in METRICS if metric.scenario == name]
    plain = [
        Metric(m.scenario, m.label.rstrip(" †"), m.path, m.unit, m.higher_is_better, m.target)
        for m in rows
    ]
    return (
        *plain,
        Metric(name, "single: server CPU", ("single", "server_cpu_pct"), "%", False),
        Metric(name, "single: PostgreSQL CPU", ("single", "database_cpu_pct"), "%", False),
        Metric(name, "batch: server CPU", ("batch", "server_cpu_pct"), "%", False),
        Metric(name, "batch: PostgreSQL CPU", ("batch", "database_cpu_pct"), "%", False),
    )


def _scale_metrics() -> tuple[Metric, ...]:
    name = "scale"
    rate, p50, p99, loss, _server, client = fanout_metrics(name, None, None)
    by_process = ("by_process", "1", "latency", "p99_ms"), ("by_process", "2", "latency", "p99_ms")
    return (
        Metric(name, "offered deliveries/s", ("offered_per_s",), "/s"),
        rate,
        p50,
        p99,
        Metric(name, "p99 on process 1 (publishes here)", by_process[0], "ms", False),
        Metric(name, "p99 on process 2 (via NOTIFY)", by_process[1], "ms", False),
        loss,
        Metric(name, "servers CPU (sum)", ("server_cpu_pct",), "%", False),
        PerDeliveries(name, "servers CPU per 100k deliveries/s", ("server_cpu_pct",), "%", False),
        Metric(name, "PostgreSQL CPU", ("database_cpu_pct",), "%", False),
        client,
        Metric(name, "publish ack p99", ("publish_ack", "p99_ms"), "ms", False),
        Metric(name, "stream opens/s", ("connects_per_s",), "/s"),
    )


def _watched(scenario: str, title: str, metrics: Sequence[Metric]) -> Comparison:
    """A fan-out scenario without and with browsers on the admin pages."""
    return Comparison(
        scenario,
        "admin_pages",
        f"{title}: without and with browsers on the admin pages (live log + health)",
        Column("tidings", "without"),
        Column("tidings_admin", "with"),
        "with/without",
        tuple(metrics),
        checked=("tidings_admin",),
    )


COMPARISONS: list[Comparison] = [
    _watched("s1", "s1", [m for m in METRICS if m.scenario == "s1"]),
    _watched("s2", "s2", [m for m in METRICS if m.scenario == "s2"]),
    _watched("s3", "s3", [m for m in METRICS if m.scenario == "s3"]),
    Comparison(
        "publish",
        "postgres_vs_sqlite",
        "Durable publish: Tidings on PostgreSQL vs on SQLite (1 process)",
        Column("tidings", "SQLite"),
        Column("tidings_postgres", "PostgreSQL"),
        "PG/SQLite",
        _publish_pg_metrics(),
        checked=("tidings_postgres",),
    ),
    Comparison(
        "scale",
        "one_vs_two_processes",
        "Fan-out on PostgreSQL: 1 vs 2 Tidings processes",
        Column("one_process", "1 process"),
        Column("two_processes", "2 processes"),
        "2/1",
        _scale_metrics(),
        checked=("one_process", "two_processes"),
    ),
]
NOTES_POSTGRES = [
    "PostgreSQL tables: ratio = right column / left column (PG/SQLite; 2/1 = scaling), "
    "not 'times better'; latencies: > 1 means the right one is slower.",
    "PostgreSQL runs: each gets a fresh database; Tidings processes share it (deliveries to "
    "process 2 go through LISTEN/NOTIFY and a log read). PostgreSQL itself is not pinned: "
    "its CPU (% of one core, the postmaster and its backends, when it runs on this machine) "
    "comes from either core.",
    "publish on PostgreSQL: laid out like the SQLite run (Tidings on core 0, client on core 1).",
    "scale: nothing is pinned (1 process and 2 alike): the OS spreads the Tidings "
    "process(es), the client and PostgreSQL over the 2 cores, so the client competes with "
    "the servers for CPU and 2 processes cannot get 2 cores of their own. Process 1 receives "
    "every publish; subscribers are split evenly. Pinning the servers to cores 0 and 1 puts "
    "the client on a server's core and leaves the other core idle part of the time.",
]


NOTES_ADMIN = [
    "admin pages (--admin-pages N): the same scenario once more while N browsers (Debian's "
    "Chromium, niced, on the client's core) each keep the live log and the health page open; "
    "with/without = their cost to the hub (latencies: > 1 means slower with them).",
]


def table_notes(tables: Sequence[dict[str, Any]]) -> list[str]:
    """The notes that explain the comparison tables present."""
    names = {table["name"] for table in tables}
    notes = list(NOTES_ADMIN) if "admin_pages" in names else []
    if names - {"admin_pages"}:
        notes += NOTES_POSTGRES
    return notes


def _compare_row(comparison: Comparison, metric: Metric, entry: dict[str, Any]) -> dict[str, Any]:
    values = {c.key: metric.value(entry.get(c.key)) for c in comparison.columns}
    left, right = values[comparison.left.key], values[comparison.right.key]
    ratio = right / left if metric.ratio and left and right is not None else None
    row: dict[str, Any] = {
        "scenario": comparison.scenario,
        "metric": metric.label,
        "unit": metric.unit,
        **values,
        "ratio": None if ratio is None else round(ratio, 2),
    }
    if metric.target is not None:
        op, bound = metric.target
        checked = [values[key] for key in comparison.checked]
        row["target"] = f"{op} {bound:g}"
        row["met"] = all(v is not None and OPS[op](v, bound) for v in checked)
    return row


def build_comparison(comparison: Comparison, entry: dict[str, Any]) -> dict[str, Any]:
    return {
        "scenario": comparison.scenario,
        "name": comparison.name,
        "title": comparison.title,
        "columns": {c.key: c.label for c in comparison.columns},
        "ratio": comparison.ratio_label,
        "rows": [_compare_row(comparison, m, entry) for m in comparison.metrics],
    }


def _comparison_targets(comparison: Comparison, table: dict[str, Any]) -> list[dict[str, Any]]:
    """Each checked column's value against each target of ``comparison``."""
    out = []
    for metric, row in zip(comparison.metrics, table["rows"], strict=True):
        if metric.target is None:
            continue
        op, bound = metric.target
        for key in comparison.checked:
            value = row[key]
            out.append(
                {
                    "scenario": f"{comparison.scenario} ({table['columns'][key]})",
                    "metric": metric.label,
                    "target": f"{op} {bound:g}{metric.unit}",
                    "value": value,
                    "met": value is not None and OPS[op](value, bound),
                }
            )
    return out


def comparisons(results: dict[str, Any]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The comparison tables whose runs are in ``results``, and their targets."""
    tables, targets = [], []
    for comparison in COMPARISONS:
        entry = results.get(comparison.scenario)
        if not isinstance(entry, dict) or not any(c.key in entry for c in comparison.columns):
            continue
        if comparison.right.key not in entry:
            continue  # publish without --database: the main table has it
        table = build_comparison(comparison, entry)
        tables.append(table)
        targets += _comparison_targets(comparison, table)
    return tables, targets


def build(results: dict[str, Any], meta: dict[str, Any]) -> dict[str, Any]:
    rows = []
    targets = []
    for metric in METRICS:
        entry = results.get(metric.scenario)
        if not isinstance(entry, dict) or "tidings" not in entry:
            continue
        tidings = metric.value(entry.get("tidings"))
        baseline = metric.value(entry.get("baseline"))
        ratio = metric.times_better(tidings, baseline)
        row: dict[str, Any] = {
            "scenario": metric.scenario,
            "metric": metric.label,
            "unit": metric.unit,
            "tidings": tidings,
            "baseline": baseline,
            "times_better": None if ratio is None else round(ratio, 2),
        }
        if metric.target is not None:
            op, bound = metric.target
            met = tidings is not None and OPS[op](tidings, bound)
            row["target"] = f"{op} {bound:g}"
            row["met"] = met
            targets.append(
                {
                    "scenario": metric.scenario,
                    "metric": metric.label.rstrip(" †"),
                    "target": f"{op} {bound:g}{metric.unit}",
                    "value": tidings,
                    "met": met,
                }
            )
        rows.append(row)
    tables, more_targets = comparisons(results)
    targets += more_targets
    document = {
        "meta": meta,
        "results": results,
        "summary": rows,
        "targets": targets,
        "all_targets_met": all(t["met"] for t in targets) if targets else None,
        "notes": NOTES + table_notes(tables),
    }
    if tables:
        document["comparisons"] = tables
    return document


def _number(value: float | None, unit: str) -> str:
    if value is None:
        return "-"
    if unit == "/s" or abs(value) >= 1000:
        return f"{value:,.0f}"
    if isinstance(value, int):
        return str(value)
    return f"{value:,.2f}" if abs(value) < 100 else f"{value:,.1f}"


def _extra_rows(name: str, entry: Any) -> list[tuple[str, str]]:
    """Rows for results without a metric list (e.g. ``validation``)."""
    out: list[tuple[str, str]] = []

    def walk(prefix: str, value: Any) -> None:
        if isinstance(value, dict):
            for key, inner in value.items():
                walk(f"{prefix}.{key}" if prefix else str(key), inner)
        elif isinstance(value, int | float | str | bool) and len(out) < 40:
            out.append((prefix, str(value)))

    walk("", entry)
    return out


def _new_table(title: str, values: Sequence[str]) -> Table:
    table = Table(title=title, show_lines=False)
    table.add_column("scenario", justify="left")
    table.add_column("metric", justify="left")
    for heading in values:
        table.add_column(heading, justify="right")
    table.add_column("target", justify="right")
    table.add_column("met", justify="center")
    return table


def _label(row: dict[str, Any]) -> str:
    unit = row["unit"] if row["unit"] not in ("", "/s") else ""
    return str(row["metric"]) + (f" ({unit})" if unit else "")


def _met(row: dict[str, Any]) -> str:
    met = row.get("met")
    return "" if met is None else ("[green]yes[/]" if met else "[red]NO[/]")


def _ratio(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}x"


def _error_rows(table: Table, name: str, entry: Any, systems: Sequence[str], width: int) -> None:
    for system in systems:
        error = entry.get(system, {}).get("error") if isinstance(entry, dict) else None
        if error:
            table.add_row(name, f"[red]{system} failed[/]", error[:60], *[""] * (width - 3))


def main_table(document: dict[str, Any], suffix: str) -> Table:
    table = _new_table(
        f"Tidings vs Starlette + sse-starlette{suffix}", ("Tidings", "baseline", "ratio")
    )
    previous = None
    for row in document["summary"]:
        if previous is not None and row["scenario"] != previous:
            table.add_section()
        previous = row["scenario"]
        table.add_row(
            row["scenario"],
            _label(row),
            _number(row["tidings"], row["unit"]),
            _number(row["baseline"], row["unit"]),
            _ratio(row["times_better"]),
            row.get("target", ""),
            _met(row),
        )
    compared_only = {c.scenario for c in COMPARISONS} - {m.scenario for m in METRICS}
    for name, entry in document["results"].items():
        if any(m.scenario == name for m in METRICS):
            _error_rows(table, name, entry, ("tidings", "baseline"), 7)
        elif name not in compared_only:
            table.add_section()
            for key, value in _extra_rows(name, entry):
                table.add_row(name, key, value, "", "", "", "")
    return table


def comparison_table(compared: dict[str, Any], entry: Any, suffix: str) -> Table:
    keys = list(compared["columns"])
    headings = [*compared["columns"].values(), compared["ratio"]]
    table = _new_table(compared["title"] + suffix, headings)
    for row in compared["rows"]:
        table.add_row(
            row["scenario"],
            _label(row),
            *(_number(row[key], row["unit"]) for key in keys),
            _ratio(row["ratio"]),
            row.get("target", ""),
            _met(row),
        )
    _error_rows(table, compared["scenario"], entry, keys, 7)
    return table


def postgres_line(meta: dict[str, Any]) -> str | None:
    pg = meta.get("postgresql")
    if not isinstance(pg, dict):
        return None
    settings = ", ".join(f"{k}={v}" for k, v in pg.get("settings", {}).items())
    pinned = ", not pinned" if pg.get("pinned") is False else ""
    return f"PostgreSQL {pg.get('server')} ({pg.get('origin')}{pinned}): {settings}"


def print_table(document: dict[str, Any], console: Console) -> None:
    quick = document["meta"].get("quick")
    suffix = " (--quick: not the target sizes)" if quick else ""
    compared = document.get("comparisons", [])
    table = main_table(document, suffix)
    if table.row_count or not compared:
        console.print(table)
    for entry in compared:
        console.print(comparison_table(entry, document["results"].get(entry["scenario"]), suffix))
    for note in document["notes"]:
        console.print(f"[dim]{note}[/]")
    line = postgres_line(document["meta"])
    if line:
        console.print(f"[dim]{line}[/]")
    loads = document["meta"].get("loadavg_before"), document["meta"].get("loadavg_after")
    if all(loads):
        console.print(
            f"[dim]load average (1/5/15 min) before {loads[0]}, after {loads[1]} on "
            f"{document['meta']['machine']['cores']} cores: anything else running shares "
            "the cores and skews the numbers.[/]"
        )
    met = document["all_targets_met"]
    if met is not None:
        verdict = "[green]all targets met[/]" if met else "[red]some targets missed[/]"
        console.print(verdict + (" (quick run: indicative only)" if quick else ""))
