"""What the embedding tests read of a host app (test-only, not part of the
recipe): where the hub is mounted (``HOST_HUB_PREFIX``: "" = the root,
else e.g. "/hub"), and, once the host's lifespan has ended, a JSON report
at ``HOST_REPORT`` of whether the node stopped and which of its asyncio
tasks are still alive."""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path

import tidings
from tidings import TidingsApp

PREFIX = os.environ.get("HOST_HUB_PREFIX", "")
PACKAGE = str(Path(tidings.__file__).parent) + os.sep  # not "/tidings/": a checkout may be named so


def tidings_tasks() -> list[str]:
    """The running tasks whose coroutine is Tidings' code."""
    current = asyncio.current_task()
    found = []
    for task in asyncio.all_tasks():
        code = getattr(task.get_coro(), "cr_code", None)
        if task is not current and code is not None and code.co_filename.startswith(PACKAGE):
            found.append(f"{task.get_name()}: {code.co_qualname}")
    return sorted(found)


def write_report(hub: TidingsApp) -> None:
    path = os.environ.get("HOST_REPORT")
    if path:
        report = {"started": hub.tidings.started, "tasks": tidings_tasks()}
        Path(path).write_text(json.dumps(report))
