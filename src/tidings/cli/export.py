"""``tidings export``: the log as NDJSON from a server's
``GET /api/events/export`` (the same filters, reader and redaction as its
history), to a file or stdout, with a progress bar on stderr.

Lines are written as the server sends them, one envelope each, oldest
first, so memory stays flat for any size. An export cut short (the server
or the network went away) says the last position written: run it again
with ``--after`` that position to continue without a gap or a duplicate.
Errors are :class:`~tidings.errors.TidingsError` (the CLI prints one line).
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import httpx
import orjson
from rich.console import Console
from rich.progress import Progress, SpinnerColumn, TaskID, TextColumn, TimeElapsedColumn

from tidings.errors import InvalidInput, Unavailable
from tidings.sdk.client import USER_AGENT, error_from_response

EXPORT_PATH = "/api/events/export"
READ_TIMEOUT_S = 60.0  # between two chunks: the server streams pages as it reads them


@dataclass(frozen=True, slots=True)
class Exported:
    count: int
    last_position: int | None  # None: nothing was written


def position_of(value: str | None) -> str | None:
    """``--after`` as the server takes it: a log position (ASCII digits)."""
    if value is None:
        return None
    if not (value.isascii() and value.isdigit()):
        raise InvalidInput(
            f"--after must be a log position (digits), not {value!r}", field="--after"
        )
    return value


def run_export(
    url: str,
    token: str,
    filters: Mapping[str, str | None],
    *,
    output: Path | None,
    err: Console | None = None,
) -> Exported:
    """Write the export to ``output`` (None: stdout); what was written."""
    err = err or Console(stderr=True, highlight=False)
    params = {name: value for name, value in filters.items() if value}
    headers = {"User-Agent": USER_AGENT, "Accept": "application/x-ndjson"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    timeout = httpx.Timeout(10.0, read=READ_TIMEOUT_S)
    count, last = 0, None
    with ExitStack() as stack:
        sink = _open(output, stack)
        try:
            answer = stack.enter_context(
                httpx.stream(
                    "GET",
                    url.rstrip("/") + EXPORT_PATH,
                    params=params,
                    headers=headers,
                    timeout=timeout,
                )
            )
            if not answer.is_success:  # refused before any line: no bar shown
                answer.read()
                raise error_from_response(answer)
            progress = stack.enter_context(_progress(err))
            task = progress.add_task("exporting", total=None, count=0, rate="")
            try:
                for line in answer.iter_lines():
                    if not line:
                        continue
                    sink.write(line + "\n")
                    last = int(orjson.loads(line)["position"])
                    count += 1
                    if count % 500 == 0:
                        _advance(progress, task, count)
            finally:
                _advance(progress, task, count)
                sink.flush()
        except httpx.TransportError as exc:
            if last is None:
                raise Unavailable(f"cannot reach {url}: {type(exc).__name__}") from None
            raise Unavailable(
                f"export cut short after {count} events ({exc}); resume with --after {last}"
            ) from None
    return Exported(count, last)


def _open(output: Path | None, stack: ExitStack) -> IO[str]:
    if output is None:
        return sys.stdout
    try:
        return stack.enter_context(output.open("w", encoding="utf-8"))
    except OSError as exc:
        raise InvalidInput(f"cannot write {output}: {exc.strerror}", field="--output") from None


def _progress(err: Console) -> Progress:
    return Progress(
        SpinnerColumn(),
        TextColumn("[bold]{task.fields[count]:,}[/] events"),
        TextColumn("{task.fields[rate]}"),
        TimeElapsedColumn(),
        console=err,
        transient=False,
    )


def _advance(progress: Progress, task: TaskID, count: int) -> None:
    elapsed = progress.tasks[0].elapsed or 0.0
    rate = f"{count / elapsed:,.0f}/s" if elapsed > 0 else ""
    progress.update(task, count=count, rate=rate)
