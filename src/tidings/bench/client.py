"""The client process: ``python -m tidings.bench.client <spec.json>``.

Runs one workload of :mod:`tidings.bench.scenarios` on uvloop (publisher and
subscribers in this one process, so send and receive times share a clock)
and writes JSON lines to stdout: ``{"event": "progress", "phase", "done",
"total"}`` while it works, then one ``{"event": "result", "result": {...}}``
(or ``{"event": "error", "error": "..."}``). The runner starts it pinned to
the client core.
"""

from __future__ import annotations

import resource
import sys
import traceback
from pathlib import Path
from time import monotonic
from typing import Any

import orjson
import uvloop

from tidings.bench.scenarios import WORKLOADS

PROGRESS_EVERY_S = 0.2


def _line(payload: dict[str, Any]) -> None:
    sys.stdout.buffer.write(orjson.dumps(payload) + b"\n")
    sys.stdout.buffer.flush()


class Progress:
    """Throttled progress lines (the runner draws the bars)."""

    def __init__(self) -> None:
        self.last: dict[str, float] = {}

    def __call__(self, phase: str, done: float, total: float) -> None:
        now = monotonic()
        if done < total and now - self.last.get(phase, 0.0) < PROGRESS_EVERY_S:
            return
        self.last[phase] = now
        _line({"event": "progress", "phase": phase, "done": done, "total": total})


def raise_fd_limit() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = 65536 if hard == resource.RLIM_INFINITY else hard
    if soft != resource.RLIM_INFINITY and soft < wanted:
        resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))


def main() -> None:
    spec = orjson.loads(Path(sys.argv[1]).read_bytes())
    raise_fd_limit()
    workload = WORKLOADS[spec["workload"]]
    try:
        result = uvloop.run(workload(spec["target"], spec["params"], Progress()))
    except Exception as exc:
        traceback.print_exc()
        _line({"event": "error", "error": f"{type(exc).__name__}: {exc}"})
        sys.exit(1)
    _line({"event": "result", "result": result})


if __name__ == "__main__":
    main()
