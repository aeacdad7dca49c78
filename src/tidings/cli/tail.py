"""``tidings tail``: follow the live stream in a terminal.

One line per event: time, position, type, tenant, entity, actor and a short
view of the data, coloured by action (plain when the output is not a
terminal). With ``--json`` each event is printed as one raw JSON line (the
envelope as received), for piping into ``jq``. Status lines (connected,
reconnecting, reset) go to stderr so stdout holds only events. Reconnects
and resumes are the :class:`~tidings.sdk.subscriber.Subscriber`'s; errors
are :class:`~tidings.errors.TidingsError` (the CLI prints one line).
"""

from __future__ import annotations

import sys
from typing import Any

import orjson
from rich.console import Console
from rich.text import Text

from tidings.core.sse import log_position
from tidings.errors import InvalidInput
from tidings.sdk.subscriber import Subscriber, is_control

ACTION_STYLES = {
    "CREATED": "green",
    "UPDATED": "cyan",
    "DELETED": "red",
    "STATUS_CHANGED": "yellow",
    "ASSIGNED": "blue",
    "ACKNOWLEDGED": "bright_green",
}
DATA_WIDTH = 60
TAIL_MAX_RETRIES = 5  # failed attempts in a row before tail gives up


def short_json(value: Any, width: int = DATA_WIDTH) -> str:
    """Compact JSON, cut to ``width`` characters with an ellipsis."""
    if not value:
        return ""
    text = orjson.dumps(value).decode()
    return text if len(text) <= width else text[: width - 1] + "…"


def _clock(timestamp: Any) -> str:
    """``HH:MM:SS.mmm`` out of an ISO-8601 timestamp (UTC as sent)."""
    text = str(timestamp or "")
    return text[11:23] if len(text) >= 19 and text[10] == "T" else text[:12]


def _actor(actor: Any) -> str:
    if not isinstance(actor, dict):
        return ""
    return str(actor.get("name") or actor.get("userId") or "")


def event_line(event: dict[str, Any]) -> Text:
    """The readable line for one event."""
    entity = ":".join(str(p) for p in (event.get("entityType"), event.get("entityId")) if p)
    line = Text(no_wrap=True, overflow="ellipsis")
    line.append(f"{_clock(event.get('timestamp')):12} ", style="dim")
    line.append(f"#{event.get('position', '?'):<7} ", style="bold")
    style = ACTION_STYLES.get(str(event.get("action")), "magenta")
    line.append(str(event.get("type", "?")), style=style)
    line.append(f"  {event.get('tenantId') or '-'}", style="dim")
    if entity:
        line.append(f"  {entity}")
    actor = _actor(event.get("actor"))
    if actor:
        line.append(f"  by {actor}", style="italic")
    data = short_json(event.get("data") or event.get("metadata"))
    if data:
        line.append(f"  {data}", style="dim")
    return line


def status_line(message: dict[str, Any]) -> Text:
    """A stderr line for a control message (connected, reset, ...)."""
    kind = str(message.get("type"))
    if kind == "connected":
        where = message.get("tenantId") or "all tenants"
        return Text(f"connected ({where}, log at #{message.get('position')})", style="green")
    reason = message.get("reason") or ""
    if kind == "reset":
        return Text(f"reset ({reason}): events were skipped; refetch if you need them", "yellow")
    if kind == "reconnect":
        return Text(f"reconnecting ({reason})", style="yellow")
    return Text(f"stream closed by the server ({reason})", style="red")


async def run_tail(
    url: str,
    token: str,
    *,
    types: str | None = None,
    tenant: str | None = None,
    last_event_id: str | None = None,
    as_json: bool = False,
    count: int | None = None,
) -> None:
    """Print events until interrupted, the server closes the stream, or
    ``count`` events were printed."""
    if count is not None and count < 1:
        raise InvalidInput("--count must be at least 1", field="--count")
    if last_event_id is not None and log_position(last_event_id) is None:
        raise InvalidInput("--last-event-id must be a log position", field="--last-event-id")
    out = Console(highlight=False)
    err = Console(stderr=True, highlight=False)
    printed = 0
    async with Subscriber(
        url,
        token=token or None,
        types=types,
        tenant=tenant,
        last_event_id=last_event_id,
        control=True,
        max_retries=TAIL_MAX_RETRIES,
    ) as subscriber:
        async for event in subscriber:
            if is_control(event):
                if as_json and event.get("type") == "reset":
                    _write_json(event)
                err.print(status_line(event), soft_wrap=True)
                continue
            if as_json:
                _write_json(event)
            else:
                # one line per event: cut to the terminal's width, whole when piped
                out.print(event_line(event), soft_wrap=not out.is_terminal)
            printed += 1
            if count is not None and printed >= count:
                return


def _write_json(event: dict[str, Any]) -> None:
    sys.stdout.write(orjson.dumps(event).decode() + "\n")
    sys.stdout.flush()
