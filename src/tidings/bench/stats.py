"""Small measurement helpers: percentiles, process CPU time and memory."""

from __future__ import annotations

import math
import os
from collections.abc import Sequence

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def percentile(sorted_values: Sequence[float], q: float) -> float | None:
    """Nearest-rank percentile of already sorted values (``q`` in 0..100)."""
    if not sorted_values:
        return None
    rank = max(0, min(len(sorted_values) - 1, math.ceil(q / 100 * len(sorted_values)) - 1))
    return sorted_values[rank]


def latency_summary(seconds: Sequence[float]) -> dict[str, float | None]:
    """p50/p99/max in milliseconds."""
    values = sorted(seconds)

    def ms(value: float | None) -> float | None:
        return None if value is None else round(value * 1000, 3)

    return {
        "p50_ms": ms(percentile(values, 50)),
        "p99_ms": ms(percentile(values, 99)),
        "max_ms": ms(values[-1] if values else None),
    }


def rss_kib(pid: int) -> int:
    """Resident set size of ``pid`` in KiB (``VmRSS`` of /proc/<pid>/status)."""
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for pid {pid}")


def _stat_fields(pid: int) -> list[str]:
    """Fields of /proc/<pid>/stat after the command name (``state`` first)."""
    with open(f"/proc/{pid}/stat") as stat:
        text = stat.read()
    return text[text.rindex(")") + 2 :].split()


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of ``pid`` so far."""
    fields = _stat_fields(pid)
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def tree_cpu_seconds(root: int) -> float:
    """CPU time of ``root`` and its children so far, including children that
    have ended and been reaped (a postmaster and its backends)."""
    fields = _stat_fields(root)
    total = sum(int(f) for f in fields[11:15])
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            child = _stat_fields(int(entry.name))
        except (OSError, ValueError):
            continue  # gone meanwhile
        if child[1] == str(root):
            total += sum(int(f) for f in child[11:15])
    return total / CLOCK_TICKS


class CpuMeter:
    """CPU use of a process over a window, as a percentage of one core."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.cpu0 = 0.0
        self.wall0 = 0.0

    def seconds(self) -> float:
        return cpu_seconds(self.pid)

    def start(self, wall: float) -> None:
        self.cpu0 = self.seconds()
        self.wall0 = wall

    def percent(self, wall: float) -> float | None:
        elapsed = wall - self.wall0
        if elapsed <= 0:
            return None
        try:
            return round(100 * (self.seconds() - self.cpu0) / elapsed, 1)
        except OSError:
            return None


class TreeCpuMeter(CpuMeter):
    """:class:`CpuMeter` for a process and its children (PostgreSQL)."""

    def seconds(self) -> float:
        return tree_cpu_seconds(self.pid)
