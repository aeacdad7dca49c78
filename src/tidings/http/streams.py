"""The live endpoints: SSE at ``GET /api/events`` (and its aliases) and
WebSocket at ``GET /ws/events``. Raw ASGI, in front of FastAPI's
middleware, so the SSE handler can reach uvicorn's transport and write
pre-encoded frames straight to it (the generic queued path serves other
ASGI servers).

Answers: 200 ``text/event-stream``; 204 when the server closed this user's
streams on purpose (deleted, suspended), so browsers stop retrying; 4xx
problem+json for bad credentials or parameters. Never a 5xx by design.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import Any
from urllib.parse import parse_qs

from tidings.core.audience import Viewer
from tidings.core.patterns import TypeFilter
from tidings.core.sse import encode_retry
from tidings.errors import InvalidInput, RateLimited, StreamGone, TidingsError
from tidings.http.params import ascii_int, header
from tidings.http.problems import send_problem
from tidings.hub.stream import (
    BaseStream,
    CloudEventsQueue,
    CloudEventsSSE,
    QueueStream,
    TransportSSE,
    control_frame,
)
from tidings.node import Tidings
from tidings.services.auth import Principal

Scope = dict[str, Any]
SSE_HEADERS = [
    (b"content-type", b"text/event-stream; charset=utf-8"),
    (b"cache-control", b"no-cache"),
    (b"x-accel-buffering", b"no"),
]


def _query(scope: Scope) -> dict[str, str]:
    raw = scope.get("query_string", b"").decode("latin-1")
    return {k: v[-1] for k, v in parse_qs(raw, keep_blank_values=True).items()}


class StreamRequest:
    """What a stream request asks for, validated before any byte is sent."""

    def __init__(
        self,
        principal: Principal,
        viewer: Viewer,
        types: TypeFilter,
        last_id: int | None,
        *,
        cloudevents: bool = False,
    ) -> None:
        self.principal = principal
        self.viewer = viewer
        self.types = types
        self.last_id = last_id
        self.cloudevents = cloudevents  # ?format=cloudevents: events framed as CloudEvents

    @property
    def user_key(self) -> tuple[str, str] | None:
        user = self.principal.user
        return (user.tenant_id, user.user_id) if user is not None else None


async def open_request(tidings: Tidings, scope: Scope) -> StreamRequest:
    query = _query(scope)
    principal = await _principal(tidings, scope, query)
    viewer = tidings.history.reader(principal, query.get("tenantId") or None)
    types = TypeFilter.parse(query.get("types"))
    from_header = header(scope, b"last-event-id") or None
    last_id = ascii_int(
        from_header or query.get("lastEventId") or None,
        "Last-Event-ID" if from_header else "lastEventId",
    )
    cloudevents = _format(query.get("format") or None)
    _check_limits(tidings, principal, viewer)
    return StreamRequest(principal, viewer, types, last_id, cloudevents=cloudevents)


def _format(value: str | None) -> bool:
    """Whether ``format`` asks for CloudEvents framing (``native``, the
    default, is the Tidings envelope)."""
    if value is None or value == "native":
        return False
    if value == "cloudevents":
        return True
    raise InvalidInput("format must be native or cloudevents", field="format")


async def _principal(tidings: Tidings, scope: Scope, query: dict[str, str]) -> Principal:
    ticket = query.get("ticket")
    if ticket:
        return await tidings.tickets.redeem(ticket)
    return await tidings.auth.authenticate(header(scope, b"authorization"))


def _check_limits(tidings: Tidings, principal: Principal, viewer: Viewer) -> None:
    settings = tidings.settings
    user = principal.user
    if user is not None and (
        tidings.hub.connections_of_user(user.tenant_id, user.user_id)
        >= settings.max_connections_per_user
    ):
        raise RateLimited(f"at most {settings.max_connections_per_user} open streams per user")
    tenant = viewer.tenant_id
    if (
        tenant is not None
        and tidings.hub.connections_of(tenant) >= settings.max_connections_per_tenant
    ):
        raise RateLimited(f"at most {settings.max_connections_per_tenant} open streams per tenant")


def _connected(tidings: Tidings, request: StreamRequest) -> bytes:
    """The first message. Fresh streams get ``id: <position>`` so a browser
    that reconnects resumes from here; resuming streams keep their own id.
    ``retry`` repeats the ``retry:`` line before it (a browser's EventSource
    never shows that field to scripts, and tidings.js replaces its retry)."""
    user = request.principal.user
    fields = {
        "data": {"message": "Connected to event stream"},
        "tenantId": request.viewer.tenant_id,
        "userId": user.user_id if user else None,
        "position": tidings.hub.position,
        "retry": tidings.settings.retry_ms,
    }
    position = tidings.hub.position if request.last_id is None else None
    return control_frame("connected", fields, position=position).sse


async def _start_stream(tidings: Tidings, stream: BaseStream, request: StreamRequest) -> None:
    hub = tidings.hub
    stream.key_id = request.principal.key_id
    hub.attach(stream)
    expires = request.principal.expires_at
    if expires is not None:
        stream.expire_at(asyncio.get_running_loop().time() + max(0.0, expires - time.time()))
    if request.last_id is None:
        stream.last_position = hub.position
        stream.live = True
    else:
        await tidings.history.catch_up(stream, request.last_id)


async def _refuse(send: Any, error: TidingsError, path: str) -> None:
    if isinstance(error, StreamGone):
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})
        return
    await send_problem(send, error, path)


def _transport_of(send: Any) -> tuple[asyncio.WriteTransport, bool] | None:
    """uvicorn's connection transport behind ``send``, and whether the
    response is chunked; None on other servers (the queued path is used).
    Looks through the front router's :class:`~tidings.http.observe.Exchange`
    (``inner``), which has seen the response start by then."""
    cycle = getattr(getattr(send, "inner", send), "__self__", None)
    transport = getattr(cycle, "transport", None)
    chunked = getattr(cycle, "chunked_encoding", None)
    if transport is None or chunked is None or not hasattr(transport, "get_write_buffer_size"):
        return None
    return transport, bool(chunked)


async def sse_endpoint(tidings: Tidings, scope: Scope, receive: Any, send: Any) -> None:
    try:
        request = await open_request(tidings, scope)
    except TidingsError as error:
        await _refuse(send, error, scope["path"])
        return
    await send({"type": "http.response.start", "status": 200, "headers": SSE_HEADERS})
    first = encode_retry(tidings.settings.retry_ms) + _connected(tidings, request)
    fast = _transport_of(send)
    if fast is None:
        await _queued_sse(tidings, request, first, receive, send)
        return
    transport, chunked = fast
    kind = CloudEventsSSE if request.cloudevents else TransportSSE
    stream = kind(
        transport,
        request.viewer,
        request.types,
        chunked=chunked,
        user_key=request.user_key,
        max_buffer=tidings.settings.max_buffer_bytes,
        linger_s=tidings.settings.stream_linger_s,
    )
    stream.write_raw(first)
    try:
        await _start_stream(tidings, stream, request)
        while (await receive())["type"] != "http.disconnect":
            pass
    finally:
        tidings.hub.detach(stream)


async def _queued_sse(
    tidings: Tidings, request: StreamRequest, first: bytes, receive: Any, send: Any
) -> None:
    stream = _queue_stream(tidings, request, as_json=False)
    await send({"type": "http.response.body", "body": first, "more_body": True})

    async def write(data: bytes) -> None:
        await send({"type": "http.response.body", "body": data, "more_body": True})

    await _run_queued(tidings, stream, request, write, receive, "http.disconnect")
    await send({"type": "http.response.body", "body": b"", "more_body": False})


def _queue_stream(tidings: Tidings, request: StreamRequest, *, as_json: bool) -> QueueStream:
    """A queued stream bounded by the same byte budget as transport SSE."""
    kind = CloudEventsQueue if request.cloudevents else QueueStream
    return kind(
        request.viewer,
        request.types,
        as_json=as_json,
        user_key=request.user_key,
        max_buffer=tidings.settings.max_buffer_bytes,
        linger_s=tidings.settings.stream_linger_s,
    )


async def _run_queued(
    tidings: Tidings,
    stream: QueueStream,
    request: StreamRequest,
    write: Any,
    receive: Any,
    gone: str,
) -> bool:
    """Pump ``stream`` until the client leaves or the server closed it and
    its last message (the close reason) was sent. Returns whether that last
    message went out; a client that takes nothing for ``linger_s`` after the
    server closed the stream is given up on (False)."""
    loop = asyncio.get_running_loop()
    pump = loop.create_task(stream.pump(write))

    async def watch() -> None:
        while (await receive())["type"] != gone:
            pass
        stream.close_quietly()

    watcher = loop.create_task(watch())
    ended = loop.create_task(stream.ended.wait())
    try:
        await _start_stream(tidings, stream, request)
        await asyncio.wait({pump, watcher, ended}, return_when=asyncio.FIRST_COMPLETED)
        if not (pump.done() or watcher.done()):  # closed by us: the close reason is queued
            await asyncio.wait(
                {pump, watcher}, timeout=stream.linger_s, return_when=asyncio.FIRST_COMPLETED
            )
        return pump.done() and not pump.cancelled() and pump.exception() is None
    finally:
        tidings.hub.detach(stream)
        for task in (pump, watcher, ended):
            task.cancel()
        await asyncio.gather(pump, watcher, ended, return_exceptions=True)


async def ws_endpoint(tidings: Tidings, scope: Scope, receive: Any, send: Any) -> None:
    message = await receive()
    if message["type"] != "websocket.connect":
        return
    try:
        request = await open_request(tidings, scope)
    except TidingsError as error:
        code = 4403 if error.status in (204, 403) else 4000 + error.status
        await send({"type": "websocket.close", "code": code, "reason": error.detail[:120]})
        return
    await send({"type": "websocket.accept"})
    stream = _queue_stream(tidings, request, as_json=True)
    connected = control_frame(
        "connected",
        {
            "data": {"message": "Connected to event stream"},
            "tenantId": request.viewer.tenant_id,
            "position": tidings.hub.position,
            "retry": tidings.settings.retry_ms,  # no retry: field here: the wait before a reconnect
        },
    )
    await send({"type": "websocket.send", "text": connected.json.decode()})

    async def write(data: bytes) -> None:
        await send({"type": "websocket.send", "text": data.decode()})

    flushed = await _run_queued(tidings, stream, request, write, receive, "websocket.disconnect")
    if flushed and stream.close_reason is not None:
        await _ws_close(send, stream.close_reason.ws_code, stream.close_reason.reason)


async def _ws_close(send: Any, code: int, reason: str) -> None:
    with contextlib.suppress(OSError, RuntimeError):  # the client may be gone already
        await send({"type": "websocket.close", "code": code, "reason": reason})
