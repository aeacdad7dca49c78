"""Live streams: one object per open SSE or WebSocket connection.

Delivery guarantees (DESIGN §3, centrifuge ``DisconnectSlow``):

* A stream receives events in position order, each at most once; while it
  replays history (``live`` is False) the hub skips it and the replay reads
  the log up to the hub's position before going live, so nothing falls in
  between.
* Writes are bounded in bytes, on every transport, by the one setting
  ``max_buffer_bytes``: when a client's unsent bytes exceed it (SSE: the
  transport's write buffer; WebSocket and queued SSE: the stream's queue,
  ahead of the server's own bounded write buffer, see :class:`QueueStream`)
  the stream is closed with an explicit ``reset`` message naming the last
  position sent (WebSocket: then close code 4008, reason
  ``slow_consumer``). The client resumes from its own ``Last-Event-ID``:
  nothing is silently lost, and the slow client never delays the others.
* The reset is the last thing written, and a closing connection is never
  cut while its client still takes bytes: SSE aborts only after
  ``linger_s`` of *no progress at all*, the WebSocket writer gives up
  ``linger_s`` after the close (the server's keep-alive pings end a dead
  one sooner). A client that stops reading for a while and then resumes
  still reads every byte up to the reset. What a closing connection pins
  meanwhile is bounded by what it held plus the reset frame.
* Every close says why: ``reconnect`` (shutdown, token expired; clients come
  back), ``closed`` (user deleted, tenant suspended; clients stay away and
  reconnects answer 204), ``reset`` (slow consumer, too far behind).
"""

from __future__ import annotations

import abc
import asyncio
import logging
import random
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import orjson

from tidings.core.audience import Viewer
from tidings.core.cloudevents import structured_json
from tidings.core.patterns import TypeFilter
from tidings.core.sse import encode_comment, encode_event, encode_message

HEARTBEAT = encode_comment("heartbeat")
log = logging.getLogger("tidings.hub")


class Frame:
    """One event (or control message) encoded once, shared by every stream
    with the same redaction variant: its JSON (WebSocket), its SSE message,
    and that message as one HTTP/1.1 chunk (SSE under uvicorn). Its
    CloudEvents framing is built on first use and kept with it, so it too
    is encoded once per event and variant, whatever the number of streams."""

    __slots__ = ("_cloudevent", "chunk", "json", "position", "sse")

    def __init__(self, position: int | None, json_bytes: bytes, sse: bytes | None = None) -> None:
        self.position = position
        self.json = json_bytes
        self._cloudevent: Frame | None = None
        if sse is not None:  # a comment (heartbeat): SSE only
            self.sse = sse
        elif position is None:
            self.sse = encode_message(json_bytes)
        else:
            self.sse = encode_event(position, json_bytes)
        self.chunk = b"%x\r\n%s\r\n" % (len(self.sse), self.sse)

    def cloudevent(self) -> Frame | None:
        """The same event as a structured CloudEvent (``?format=cloudevents``),
        its ``id:`` the same position; None (logged) if the envelope cannot
        be mapped. A control frame (no position) stays as it is."""
        if self.position is None:
            return self
        if self._cloudevent is None:
            try:
                body = structured_json(orjson.loads(self.json))
            except Exception:  # never let one event stop a dispatch
                log.exception("event at position %d has no CloudEvents form", self.position)
                return None
            self._cloudevent = Frame(self.position, body)
        return self._cloudevent


HEARTBEAT_FRAME = Frame(None, b"", HEARTBEAT)


def control_frame(
    kind: str, fields: dict[str, Any] | None = None, *, position: int | None = None
) -> Frame:
    """A non-event message (connected, reset, reconnect, closed). With a
    ``position`` it carries ``id:``, moving the client's resume point."""
    return Frame(position, orjson.dumps({"type": kind, **(fields or {})}))


@dataclass(frozen=True, slots=True)
class CloseReason:
    kind: str  # reconnect | closed | reset
    reason: str
    ws_code: int

    def frame(self, last_position: int | None, retry_ms: int | None = None) -> Frame:
        """The close message; ``retry`` repeats the SSE ``retry:`` in the JSON,
        where a browser's EventSource (which hides ``retry:``) and a WebSocket
        client can read it."""
        fields: dict[str, Any] = {"reason": self.reason}
        if last_position is not None:
            fields["lastEventId"] = str(last_position)
        if retry_ms is not None:
            fields["retry"] = retry_ms
        return control_frame(self.kind, fields)


SHUTDOWN = CloseReason("reconnect", "shutdown", 1012)
TOKEN_EXPIRED = CloseReason("reconnect", "token_expired", 4001)
USER_DELETED = CloseReason("closed", "user_deleted", 4003)
TENANT_SUSPENDED = CloseReason("closed", "tenant_suspended", 4003)
KEY_REVOKED = CloseReason("closed", "key_revoked", 4003)
SLOW_CONSUMER = CloseReason("reset", "slow_consumer", 4008)
LOG_REWOUND = CloseReason("reset", "log_rewound", 4009)


class BaseStream(abc.ABC):
    """State every stream shares; subclasses say how bytes leave."""

    kind = "sse"  # the client's transport, as metrics label it: "sse" or "ws"

    def __init__(
        self, viewer: Viewer, types: TypeFilter, *, user_key: tuple[str, str] | None
    ) -> None:
        self.viewer = viewer
        self.types: TypeFilter | None = types or None  # None: every type (cheapest check)
        self.user_key = user_key
        self.key_id: str | None = None  # the API key it was opened with (revocation closes it)
        self.live = False
        self.closed = False
        self.last_position = 0
        self.close_reason: CloseReason | None = None
        self.on_close: Callable[[BaseStream], None] | None = None
        self._timer: asyncio.TimerHandle | None = None

    @abc.abstractmethod
    def heartbeat(self) -> None:
        """Keep idle connections (and proxies) from timing out."""

    def expire_at(self, loop_time: float) -> None:
        loop = asyncio.get_running_loop()
        self._timer = loop.call_at(loop_time, self.close, TOKEN_EXPIRED)

    def _closed(self, reason: CloseReason) -> bool:
        if self.closed:
            return False
        self.closed = True
        self.live = False
        self.close_reason = reason
        if self._timer is not None:
            self._timer.cancel()
        if self.on_close is not None:
            self.on_close(self)
        return True

    @abc.abstractmethod
    def deliver(self, frame: Frame) -> None: ...

    @abc.abstractmethod
    def deliver_many(self, frames: list[Frame], *, replay: bool = False) -> None:
        """Several frames in one write. ``replay`` writes are paced by
        :meth:`drain` instead of counting as a slow consumer."""

    @abc.abstractmethod
    def write_control(self, frame: Frame) -> None: ...

    @abc.abstractmethod
    def close(self, reason: CloseReason, retry_ms: int | None = None) -> None: ...

    @abc.abstractmethod
    async def drain(self) -> None: ...


class TransportSSE(BaseStream):
    """SSE written straight to the connection's transport (uvicorn).

    The hot path is one ``transport.write`` of pre-encoded bytes: no task
    wake-up and no per-connection encoding.
    """

    def __init__(
        self,
        transport: asyncio.WriteTransport,
        viewer: Viewer,
        types: TypeFilter,
        *,
        chunked: bool,
        user_key: tuple[str, str] | None,
        max_buffer: int,
        linger_s: float,
    ) -> None:
        super().__init__(viewer, types, user_key=user_key)
        self.transport = transport
        self.chunked = chunked
        self.max_buffer = max_buffer
        self.linger_s = linger_s

    def _write(self, sse: bytes) -> None:
        if self.chunked:
            self.transport.write(b"%x\r\n%s\r\n" % (len(sse), sse))
        else:
            self.transport.write(sse)

    def deliver(self, frame: Frame) -> None:
        self.transport.write(frame.chunk if self.chunked else frame.sse)
        self.last_position = frame.position or self.last_position
        if self.transport.get_write_buffer_size() > self.max_buffer:
            self.close(SLOW_CONSUMER)

    def deliver_many(self, frames: list[Frame], *, replay: bool = False) -> None:
        self._write(b"".join(f.sse for f in frames))
        self.last_position = frames[-1].position or self.last_position
        if not replay and self.transport.get_write_buffer_size() > self.max_buffer:
            self.close(SLOW_CONSUMER)

    def write_control(self, frame: Frame) -> None:
        if not self.transport.is_closing():
            self._write(frame.sse)

    def write_raw(self, sse: bytes) -> None:
        if not self.transport.is_closing():
            self._write(sse)

    def heartbeat(self) -> None:
        self.write_raw(HEARTBEAT)

    async def drain(self) -> None:
        """Wait until the client has taken most of what was written (used
        while replaying history, so replay never floods memory)."""
        while self.transport.get_write_buffer_size() > self.max_buffer // 4:
            if self.transport.is_closing():
                self.closed = True
                return
            await asyncio.sleep(0.01)

    def close(self, reason: CloseReason, retry_ms: int | None = None) -> None:
        last = self.last_position if reason.kind == "reset" else None
        if not self._closed(reason) or self.transport.is_closing():
            return
        tail = reason.frame(last, retry_ms).sse
        if retry_ms is not None:
            tail = b"retry: %d\n\n" % retry_ms + tail
        if self.chunked:
            self.transport.write(b"%x\r\n%s\r\n0\r\n\r\n" % (len(tail), tail))
        else:
            self.transport.write(tail)
        self.transport.close()  # graceful: the transport flushes, then sends FIN
        pending = self.transport.get_write_buffer_size()
        if pending:
            self._watch_flush(pending, 0.0)

    def _watch_flush(self, pending: int, idle_s: float) -> None:
        """Abort a closing connection only once its client has taken no byte
        for ``linger_s``: a client that stopped reading and comes back within
        that still reads every byte up to the reset, and a dead one does not
        pin its buffer forever (it resumes from its own Last-Event-ID)."""
        step = min(1.0, self.linger_s)

        def check() -> None:
            left = self.transport.get_write_buffer_size()
            if not left:  # flushed (or the connection is gone)
                return
            idle = 0.0 if left < pending else idle_s + step
            if idle >= self.linger_s:
                self.transport.abort()
                return
            self._watch_flush(left, idle)

        asyncio.get_running_loop().call_later(step, check)


class QueueStream(BaseStream):
    """A stream drained by a writer task through an async ``send`` callable:
    WebSocket text frames, or SSE on servers without transport access.

    The queue is bounded in bytes: a dispatch that finds the client has not
    taken the previous ones, and leaves more than ``max_buffer`` bytes
    queued, resets the stream (so a fast client takes a large batch, and a
    silent one holds at most ``max_buffer`` plus one dispatch). The reset's
    ``lastEventId`` is a resume point: every event of this stream up to it
    reaches the client before the reset does, none after it.
    """

    def __init__(
        self,
        viewer: Viewer,
        types: TypeFilter,
        *,
        as_json: bool,
        user_key: tuple[str, str] | None,
        max_buffer: int,
        linger_s: float,
    ) -> None:
        super().__init__(viewer, types, user_key=user_key)
        self.as_json = as_json
        self.kind = "ws" if as_json else "sse"
        self.max_buffer = max_buffer
        self.linger_s = linger_s
        self._queue: deque[Frame] = deque()
        self.queued_bytes = 0  # bytes in _queue: what the writer has not taken
        self.ended = asyncio.Event()  # set when the server closed the stream
        self._wake = asyncio.Event()
        self.retry_ms: int | None = None

    def _put(self, frame: Frame) -> None:
        self._queue.append(frame)
        self.queued_bytes += len(frame.json if self.as_json else frame.sse)
        self._wake.set()

    def deliver(self, frame: Frame) -> None:
        # The hot path for WebSocket streams: _put inlined.
        backlog = self.queued_bytes
        self._queue.append(frame)
        self.queued_bytes = backlog + len(frame.json if self.as_json else frame.sse)
        self._wake.set()
        self.last_position = frame.position or self.last_position
        if backlog and self.queued_bytes > self.max_buffer:
            self.close(SLOW_CONSUMER)

    def deliver_many(self, frames: list[Frame], *, replay: bool = False) -> None:
        backlog = self.queued_bytes
        for frame in frames:
            self._put(frame)
        self.last_position = frames[-1].position or self.last_position
        if not replay and backlog and self.queued_bytes > self.max_buffer:
            self.close(SLOW_CONSUMER)

    def write_control(self, frame: Frame) -> None:
        self._put(frame)

    def heartbeat(self) -> None:
        if not self.as_json:  # WebSocket keep-alive is the server's ping frames
            self._put(HEARTBEAT_FRAME)

    async def drain(self) -> None:
        while self.queued_bytes > self.max_buffer // 4 and not self.closed:
            await asyncio.sleep(0.01)

    def close(self, reason: CloseReason, retry_ms: int | None = None) -> None:
        if not self._closed(reason):
            return
        self.retry_ms = retry_ms
        last = None
        if reason.kind == "reset":
            last = self.last_position
        if reason is SLOW_CONSUMER:
            last = self._resume_point()
            self._queue.clear()  # the client resumes from the log
            self.queued_bytes = 0
        self._put(reason.frame(last, retry_ms))
        self.ended.set()

    def _resume_point(self) -> int:
        """Just before the first event the writer has not taken: every event
        of this stream up to here reaches the client before the reset."""
        for frame in self._queue:
            if frame.position is not None:
                return frame.position - 1
        return self.last_position

    def close_quietly(self) -> None:
        """The client left: stop without writing anything more."""
        self.closed = True
        self.live = False
        self._wake.set()

    async def pump(self, send: Callable[[bytes], Awaitable[None]]) -> None:
        """Send queued frames until the stream is closed and drained."""
        queue, as_json = self._queue, self.as_json
        while True:
            while queue:
                frame = queue.popleft()
                data = frame.json if as_json else frame.sse
                self.queued_bytes -= len(data)
                await send(data)
            if self.closed:
                return
            self._wake.clear()
            await self._wake.wait()


def _as_cloudevents(frames: list[Frame]) -> list[Frame]:
    converted = [f.cloudevent() for f in frames]
    return [f for f in converted if f is not None]


class CloudEventsSSE(TransportSSE):
    """Transport SSE whose events are framed as CloudEvents; control
    messages (connected, reset, reconnect, closed) are the native ones."""

    def deliver(self, frame: Frame) -> None:
        converted = frame.cloudevent()
        if converted is not None:
            super().deliver(converted)

    def deliver_many(self, frames: list[Frame], *, replay: bool = False) -> None:
        converted = _as_cloudevents(frames)
        if converted:
            super().deliver_many(converted, replay=replay)


class CloudEventsQueue(QueueStream):
    """A queued stream (WebSocket, or SSE on other servers) whose events are
    framed as CloudEvents; control messages stay native."""

    def deliver(self, frame: Frame) -> None:
        converted = frame.cloudevent()
        if converted is not None:
            super().deliver(converted)

    def deliver_many(self, frames: list[Frame], *, replay: bool = False) -> None:
        converted = _as_cloudevents(frames)
        if converted:
            super().deliver_many(converted, replay=replay)


def jittered_retry_ms(base_ms: int) -> int:
    """Spread reconnects after a restart so clients do not stampede."""
    return int(base_ms * (1 + random.random()))
