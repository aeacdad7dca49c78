"""Follow a Tidings event stream from Python: an async iterator over the
events of ``GET /api/events`` (Server-Sent Events).

    async with Subscriber(url, token=get_token, types="qms.*") as events:
        async for event in events:
            if is_control(event):  # {"type": "reset", "reason": ...}
                refetch()          # events may have been skipped: reload state
            else:
                handle(event)      # the envelope, as a dict

Guarantees:

* Events arrive in log order, each at most once: the subscriber keeps the
  last position it handed out and resumes after it (``Last-Event-ID``)
  whenever the connection ends, so a reconnect loses nothing and repeats
  nothing (a repeated position is dropped, should a server ever send one).
* Reconnects wait what the server asked (``retry:``) after a planned close,
  and back off exponentially with jitter after failures. A closed stream
  whose token expired reconnects at once with a fresh token when ``token``
  is a callable.
* It stops (the iteration ends) when the server closes the stream for good:
  a ``closed`` message or a ``204`` answer; :attr:`Subscriber.closed_reason`
  says why. Credential and input errors raise the matching
  :class:`~tidings.errors.TidingsError`; after ``max_retries`` failed
  attempts in a row it raises :class:`~tidings.errors.Unavailable`.
* ``reset`` messages are always yielded (``{"type": "reset", "reason": ...}``).
  ``too_far_behind`` and ``unknown_position``: the server skipped events and
  the stream goes on from the present, so the caller should refetch;
  ``slow_consumer``: the server dropped a connection that read too slowly,
  and the subscriber resumes where it was (nothing is lost).
* A connection silent for ``read_timeout`` seconds (the server sends a
  heartbeat every 15 s by default) counts as broken and is replaced.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import json
from collections.abc import AsyncGenerator, Awaitable, Callable, Sequence
from typing import Any, Self

import httpx

from tidings.core.sse import Message, SSEParser, log_position
from tidings.errors import InvalidInput, TidingsError, Unavailable
from tidings.sdk.client import USER_AGENT, backoff_s, error_from_response
from tidings.sdk.closing import AsyncClosing

TokenSource = str | Callable[[], str] | Callable[[], Awaitable[str]]
Event = dict[str, Any]
CONTROL_TYPES = frozenset({"connected", "reconnect", "closed", "reset"})
RETRYABLE_STATUSES = frozenset({408, 429, 500, 502, 503, 504})


class _Reconnect(Exception):
    """The server ended the connection and asked to be called again after
    ``delay`` seconds."""

    def __init__(self, delay: float) -> None:
        self.delay = delay


class Subscriber(AsyncClosing):
    """An async iterator over the events a user (or admin) may see.

    ``token`` is a bearer credential or a callable (sync or async) returning
    a fresh one for each connection. ``types`` narrows by type pattern
    (``"qms.*"`` or a list). ``last_event_id`` resumes after a position.
    ``tenant`` picks the tenant for admin credentials. With ``control=True``
    the ``connected``, ``reconnect`` and ``closed`` messages are yielded too.
    """

    def __init__(
        self,
        url: str,
        *,
        token: TokenSource | None = None,
        types: str | Sequence[str] | None = None,
        last_event_id: str | int | None = None,
        tenant: str | None = None,
        path: str = "/api/events",
        control: bool = False,
        min_backoff: float = 0.5,
        max_backoff: float = 30.0,
        max_retries: int | None = None,
        read_timeout: float = 45.0,
        http: httpx.AsyncClient | None = None,
    ) -> None:
        self.url = url.rstrip("/") + path
        self.token = token
        self.types = types if types is None or isinstance(types, str) else ",".join(types)
        self.last_event_id = None if last_event_id is None else str(last_event_id)
        self.tenant = tenant
        self.control = control
        self.min_backoff = min_backoff
        self.max_backoff = max_backoff
        self.max_retries = max_retries
        self.retry_ms: int | None = None  # the server's latest ``retry:``
        self.connected = False
        self.closed_reason: str | None = None
        self._owns_http = http is None
        self._http = http or httpx.AsyncClient(
            timeout=httpx.Timeout(10.0, read=read_timeout), headers={"User-Agent": USER_AGENT}
        )
        self._position = log_position(self.last_event_id)
        if self.last_event_id is not None and self._position is None:
            raise InvalidInput("last_event_id must be a log position", field="last_event_id")
        self._events: AsyncGenerator[Event, None] | None = None

    # -- iteration and lifetime ------------------------------------------------

    def __aiter__(self) -> Self:
        return self

    async def __anext__(self) -> Event:
        if self._events is None:
            self._events = self._run()
        return await self._events.__anext__()

    async def aclose(self) -> None:
        """Close the connection (and the HTTP client if this made it)."""
        events, self._events = self._events, None
        if events is not None:
            await events.aclose()
        if self._owns_http:
            await self._http.aclose()

    # -- the connection loop -----------------------------------------------------

    async def _run(self) -> AsyncGenerator[Event, None]:
        failures = 0
        delay = 0.0
        while self.closed_reason is None:
            if delay > 0:
                await asyncio.sleep(delay)
            self.connected = False
            try:
                async with contextlib.aclosing(self._connect()) as events:
                    async for event in events:
                        yield event
                if self.closed_reason is not None:
                    return
                error: TidingsError = Unavailable(f"the stream from {self.url} ended early")
            except _Reconnect as planned:
                failures, delay = 0, planned.delay
                continue
            except httpx.TransportError as exc:
                error = Unavailable(f"cannot stream from {self.url}: {type(exc).__name__} {exc}")
            except TidingsError as exc:
                if not exc.retryable:
                    raise
                error = exc
            if self.connected:
                failures = 0  # the last attempt did connect: start backing off anew
            if self.max_retries is not None and failures >= self.max_retries:
                raise error
            wait = error.extra.get("retry_after")
            delay = max(
                float(wait) if wait is not None else 0.0,
                backoff_s(failures, self._base_delay(), self.max_backoff),
            )
            failures += 1

    def _base_delay(self) -> float:
        return self.retry_ms / 1000 if self.retry_ms is not None else self.min_backoff

    async def _headers(self) -> dict[str, str]:
        headers = {"Accept": "text/event-stream", "Cache-Control": "no-cache"}
        token = self.token
        if callable(token):
            value = token()
            token = await value if inspect.isawaitable(value) else value
        if token:
            headers["Authorization"] = f"Bearer {token}"
        if self.last_event_id is not None:
            headers["Last-Event-ID"] = self.last_event_id
        return headers

    def _params(self) -> dict[str, str]:
        params = {"types": self.types, "tenantId": self.tenant}
        return {k: v for k, v in params.items() if v}

    async def _connect(self) -> AsyncGenerator[Event, None]:
        """One connection: yields events; ends by returning (stream over
        for good), raising :class:`_Reconnect` or an error."""
        headers = await self._headers()
        async with self._http.stream(
            "GET", self.url, params=self._params(), headers=headers
        ) as response:
            if response.status_code == 204:
                self.closed_reason = "closed"
                return
            if response.status_code != 200:
                await response.aread()
                error = error_from_response(response)
                if response.status_code in RETRYABLE_STATUSES and not error.retryable:
                    error = Unavailable(error.detail, **error.extra)
                raise error
            parser = SSEParser()
            async for chunk in response.aiter_text():
                for message in parser.feed(chunk):
                    event = self._handle(message)
                    if event is None:
                        continue
                    control = is_control(event)
                    if self.control or not control or event["type"] == "reset":
                        yield event
                    if self.closed_reason is not None:
                        return
                    if control and event["type"] == "reconnect":
                        token_expired = event.get("reason") == "token_expired"
                        raise _Reconnect(0.0 if token_expired else self._base_delay())

    def _handle(self, message: Message) -> Event | None:
        """What one SSE message means: an event or a control message (as a
        dict), or None for what carries nothing (retry-only, not JSON)."""
        if message.retry is not None:
            self.retry_ms = message.retry
        if not message.data:
            return None
        try:
            data = json.loads(message.data, parse_constant=_no_constant)
        except (ValueError, RecursionError):  # not JSON, or nested too deep to be ours
            return None
        if not isinstance(data, dict):
            return None
        if not is_control(data):
            return self._event(message, data)
        kind = data["type"]
        if kind == "connected":
            self.connected = True
            self._move_to(message.id)
        elif kind == "reset":
            self._move_to(message.id)
        elif kind == "closed":
            self.closed_reason = str(data.get("reason") or "closed")
        return data

    def _event(self, message: Message, data: Event) -> Event | None:
        position = log_position(message.id)
        if position is not None:
            if self._position is not None and position <= self._position:
                return None  # already handed out
            self._position = position
            self.last_event_id = message.id
        return data

    def _move_to(self, event_id: str | None) -> None:
        """A control message with ``id:`` sets the resume point (a fresh
        stream's start, or the position a reset continues from)."""
        position = log_position(event_id)
        if position is not None:
            self._position = position
            self.last_event_id = event_id


def is_control(message: Event) -> bool:
    """Whether a yielded dict is a control message (``connected``, ``reset``,
    ``reconnect``, ``closed``) rather than an event envelope."""
    return message.get("type") in CONTROL_TYPES and "schema" not in message


def _no_constant(name: str) -> Any:
    """Strict JSON, as the server writes it: ``NaN`` and ``Infinity`` are not."""
    raise ValueError(f"{name} is not JSON")
