"""``tidings export``: the log as NDJSON from a server's
``GET /api/events/export`` (the same filters, reader and redaction as its
history), or straight from a database through the same use case
(:meth:`tidings.services.history.History.export`, as the operator), to a
file or stdout, with a progress bar on stderr. Both write the same bytes:
one ``orjson`` line per envelope.

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

from tidings.core.audience import Viewer
from tidings.core.envelope import parse_instant
from tidings.core.patterns import TypeFilter
from tidings.errors import InvalidInput, Unavailable
from tidings.sdk.client import USER_AGENT, error_from_response
from tidings.services.history import History, LogRequest

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


class Writer:
    """Lines to the output, counted, with the progress bar on stderr."""

    def __init__(self, sink: IO[str], progress: Progress) -> None:
        self.sink, self.progress = sink, progress
        self.task = progress.add_task("exporting", total=None, count=0, rate="")
        self.count = 0
        self.last: int | None = None  # None: nothing was written

    def line(self, text: str, position: int) -> None:
        self.sink.write(text + "\n")
        self.count, self.last = self.count + 1, position
        if self.count % 500 == 0:
            _advance(self.progress, self.task, self.count)

    def finish(self) -> Exported:
        """The final count on the bar, the output flushed; what was written."""
        _advance(self.progress, self.task, self.count)
        self.sink.flush()
        return Exported(self.count, self.last)


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
    writer: Writer | None = None
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
            writer = Writer(sink, stack.enter_context(_progress(err)))
            try:
                for line in answer.iter_lines():
                    if line:
                        writer.line(line, int(orjson.loads(line)["position"]))
            finally:
                done = writer.finish()  # also when cut short: the bar shows how far
        except httpx.TransportError as exc:
            if writer is None or writer.last is None:
                raise Unavailable(f"cannot reach {url}: {type(exc).__name__}") from None
            raise Unavailable(
                f"export cut short after {writer.count} events ({exc}); "
                f"resume with --after {writer.last}"
            ) from None
        return done


def log_request(filters: Mapping[str, str | None]) -> LogRequest:
    """The HTTP export's query parameters (``types``, ``entityType``, ...,
    ``after``) as the history use case takes them."""
    since, until, after = filters.get("since"), filters.get("until"), filters.get("after")
    return LogRequest(
        types=TypeFilter.parse(filters.get("types")),
        entity_type=filters.get("entityType"),
        entity_id=filters.get("entityId"),
        entity_id_contains=filters.get("entityIdContains") or None,
        since=None if since is None else parse_instant(since, "--since"),
        until=None if until is None else parse_instant(until, "--until"),
        cursor=None if after is None else int(after),
    )


async def export_from(
    history: History,
    viewer: Viewer,
    request: LogRequest,
    *,
    output: Path | None,
    err: Console | None = None,
) -> Exported:
    """The export of ``viewer``'s log to ``output`` (None: stdout), read by
    the history use case itself (no server)."""
    err = err or Console(stderr=True, highlight=False)
    with ExitStack() as stack:
        writer = Writer(_open(output, stack), stack.enter_context(_progress(err)))
        async for item in history.export(viewer, request):
            writer.line(orjson.dumps(item).decode(), int(item["position"]))
        return writer.finish()


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
