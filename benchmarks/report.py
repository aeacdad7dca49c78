"""Targets, ratios, the JSON document and the table."""

from __future__ import annotations

import operator
from collections.abc import Callable
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
    return {
        "meta": meta,
        "results": results,
        "summary": rows,
        "targets": targets,
        "all_targets_met": all(t["met"] for t in targets) if targets else None,
        "notes": NOTES,
    }


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


def print_table(document: dict[str, Any], console: Console) -> None:
    quick = document["meta"].get("quick")
    title = "Tidings vs Starlette + sse-starlette"
    if quick:
        title += " (--quick: not the target sizes)"
    table = Table(title=title, show_lines=False)
    for column, justify in (
        ("scenario", "left"),
        ("metric", "left"),
        ("Tidings", "right"),
        ("baseline", "right"),
        ("ratio", "right"),
        ("target", "right"),
        ("met", "center"),
    ):
        table.add_column(column, justify=justify)  # type: ignore[arg-type]
    previous = None
    for row in document["summary"]:
        if previous is not None and row["scenario"] != previous:
            table.add_section()
        previous = row["scenario"]
        unit = row["unit"] if row["unit"] not in ("", "/s") else ""
        met = row.get("met")
        table.add_row(
            row["scenario"],
            row["metric"] + (f" ({unit})" if unit else ""),
            _number(row["tidings"], row["unit"]),
            _number(row["baseline"], row["unit"]),
            "-" if row["times_better"] is None else f"{row['times_better']:.2f}x",
            row.get("target", ""),
            "" if met is None else ("[green]yes[/]" if met else "[red]NO[/]"),
        )
    results = document["results"]
    for name, entry in results.items():
        if any(m.scenario == name for m in METRICS):
            for system in ("tidings", "baseline"):
                error = entry.get(system, {}).get("error") if isinstance(entry, dict) else None
                if error:
                    table.add_row(name, f"[red]{system} failed[/]", error[:60], "", "", "", "")
            continue
        table.add_section()
        for key, value in _extra_rows(name, entry):
            table.add_row(name, key, value, "", "", "", "")
    console.print(table)
    for note in document["notes"]:
        console.print(f"[dim]{note}[/]")
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
