"""Many SSE subscribers in one process: a raw asyncio Protocol per
connection (on uvloop), httptools for the response head and chunked
transfer-encoding, an inline SSE splitter and orjson for the ``data:`` JSON.

Every subscriber reports to one :class:`Collector`, which owns the publish
send times (indexed by ``data.seq``) and records, per received event, the
latency from "just before the publish request was written" to "the
subscriber has parsed the event" on the same ``perf_counter`` clock.
"""

from __future__ import annotations

import asyncio
import contextlib
from array import array
from collections import Counter
from collections.abc import Callable, Sequence
from time import perf_counter
from typing import cast

import httptools
import orjson

CONTROL_KINDS = frozenset({"reset", "reconnect", "closed"})


class Collector:
    """What every subscriber of a run saw."""

    def __init__(self) -> None:
        self.send_times: list[float] = []  # by seq; 0.0 = not sent (yet)
        self.latencies = array("d")
        self.received = 0
        self.duplicates = 0
        self.stray = 0  # events whose seq this run did not send
        self.last_receive = 0.0
        self.connected = 0
        self.refused: Counter[int] = Counter()  # HTTP status -> count
        self.controls: Counter[str] = Counter()  # reset / reconnect / closed messages
        self.dropped = 0  # connections that ended while we still wanted them
        self.errors: Counter[str] = Counter()
        self.wanted = 0
        self._ready: asyncio.Event | None = None

    def expect_connected(self, count: int) -> asyncio.Event:
        self.wanted = count
        self._ready = asyncio.Event()
        self._check_ready()
        return self._ready

    @property
    def answered(self) -> int:
        return self.connected + sum(self.refused.values())

    def _check_ready(self) -> None:
        if self._ready is not None and self.answered >= self.wanted:
            self._ready.set()

    def on_connected(self) -> None:
        self.connected += 1
        self._check_ready()

    def on_refused(self, status: int) -> None:
        self.refused[status] += 1
        self._check_ready()


def merged(collectors: Sequence[Collector]) -> Collector:
    """One :class:`Collector` adding up ``collectors`` (a snapshot; the
    first one itself when there is only one)."""
    if len(collectors) == 1:
        return collectors[0]
    total = Collector()
    total.send_times = collectors[0].send_times
    for part in collectors:
        total.latencies.extend(part.latencies)
        total.received += part.received
        total.duplicates += part.duplicates
        total.stray += part.stray
        total.last_receive = max(total.last_receive, part.last_receive)
        total.connected += part.connected
        total.refused.update(part.refused)
        total.controls.update(part.controls)
        total.dropped += part.dropped
        total.errors.update(part.errors)
    return total


class SSEConnection(asyncio.Protocol):
    __slots__ = (
        "buffer",
        "closing",
        "collector",
        "count",
        "crlf",
        "parser",
        "request",
        "seen",
        "status",
        "transport",
    )

    def __init__(self, request: bytes, collector: Collector) -> None:
        self.request = request
        self.collector = collector
        self.parser = httptools.HttpResponseParser(self)
        self.transport: asyncio.Transport | None = None
        self.buffer = b""
        self.crlf: bool | None = None  # lines end in CRLF (decided on the first body bytes)
        self.status = 0
        self.count = 0
        self.seen = bytearray()  # seen[seq] = 1 once received (concurrent publishers
        # commit in any order, so "seq went down" is not a duplicate)
        self.closing = False

    # -- asyncio.Protocol --------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass
        self.transport.write(self.request)

    def data_received(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self.collector.errors[f"parse: {exc}"] += 1
            self.close()

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.closing:
            self.collector.dropped += 1
        self.closing = True

    # -- httptools callbacks -----------------------------------------------

    def on_headers_complete(self) -> None:
        self.status = self.parser.get_status_code()
        if self.status != 200:
            self.collector.on_refused(self.status)

    def on_body(self, body: bytes) -> None:
        """Split SSE messages and record events. The hot path of the whole
        client (every delivery of every run), so it is written flat: for the
        usual ``id: N\\ndata: {json}\\n\\n`` it finds the ``data:`` field and the
        end of its line instead of scanning the message for a blank line."""
        if self.status != 200:
            return
        buffer = self.buffer + body if self.buffer else body
        if self.crlf is None:
            self.crlf = b"\r\n" in buffer
        if self.crlf:
            buffer = buffer.replace(b"\r\n", b"\n")
        find = buffer.find
        size = len(buffer)
        start = 0
        while start < size:
            i = find(b"data:", start)
            if i >= 0 and find(b"\n\n", start, i) < 0:
                eol = find(b"\n", i)
                if eol < 0:
                    break  # the rest has not arrived yet
                if eol + 1 < size and buffer[eol + 1] == 10:  # one data line, then the end
                    raw = buffer[i + 6 : eol] if buffer[i + 5] == 32 else buffer[i + 5 : eol]
                    end = eol
                else:
                    end = find(b"\n\n", start)
                    if end < 0:
                        break
                    raw = data_of(buffer[start:end])
                message = orjson.loads(raw)
                data = message.get("data")
                seq = data.get("seq") if type(data) is dict else None
                if seq is None:
                    self._control(message)
                else:
                    self._event(seq)
            else:  # a comment, a retry: or an id: without data
                end = find(b"\n\n", start)
                if end < 0:
                    break
            start = end + 2
        self.buffer = buffer[start:] if start < size else b""

    def on_message_complete(self) -> None:
        if self.status == 200 and not self.closing:
            self.collector.dropped += 1
            self.closing = True

    # -- SSE ---------------------------------------------------------------

    def _event(self, seq: int) -> None:
        now = perf_counter()
        collector = self.collector
        seen = self.seen
        if seq >= len(seen):
            seen.extend(bytes(seq + 1024 - len(seen)))
        elif seen[seq]:
            collector.duplicates += 1
            return
        seen[seq] = 1
        send_times = collector.send_times
        sent = send_times[seq] if seq < len(send_times) else 0.0
        if not sent:
            collector.stray += 1
            return
        self.count += 1
        collector.received += 1
        collector.latencies.append(now - sent)
        collector.last_receive = now

    def _control(self, message: dict[str, object]) -> None:
        kind = message.get("type")
        if kind == "connected":
            self.collector.on_connected()
        elif isinstance(kind, str) and kind in CONTROL_KINDS:
            self.collector.controls[kind] += 1

    def close(self) -> None:
        self.closing = True
        if self.transport is not None:
            self.transport.close()


def data_of(block: bytes) -> bytes:
    """The data of an SSE message with several ``data:`` lines (or fields after it)."""
    lines = [line for line in block.split(b"\n") if line.startswith(b"data:")]
    return b"\n".join(line[6:] if line[5:6] == b" " else line[5:] for line in lines)


def stream_request(host: str, port: int, path: str, auth: str | None) -> bytes:
    head = [
        f"GET {path} HTTP/1.1",
        f"Host: {host}:{port}",
        "Accept: text/event-stream",
        "Cache-Control: no-cache",
    ]
    if auth:
        head.append(f"Authorization: {auth}")
    return ("\r\n".join(head) + "\r\n\r\n").encode("latin-1")


async def open_subscribers(
    host: str,
    port: int,
    path: str,
    auths: Sequence[str],
    count: int,
    collector: Collector,
    *,
    wave: int = 500,
    timeout: float = 60.0,
    progress: Callable[[int], None] | None = None,
) -> list[SSEConnection]:
    """Open ``count`` streams in waves of ``wave`` (a wave is connected and
    has its first message before the next starts, so the server's accept
    backlog never overflows). Returns the connections that opened."""
    loop = asyncio.get_running_loop()
    requests = [stream_request(host, port, path, a) for a in auths] or [
        stream_request(host, port, path, None)
    ]
    opened: list[SSEConnection] = []
    deadline = loop.time() + timeout

    async def one(i: int) -> SSEConnection | None:
        for attempt in range(4):
            try:
                _t, protocol = await loop.create_connection(
                    lambda: SSEConnection(requests[i % len(requests)], collector), host, port
                )
                return protocol
            except OSError as exc:
                if attempt == 3:
                    collector.errors[f"connect: {type(exc).__name__}"] += 1
                    return None
                await asyncio.sleep(0.2 * (attempt + 1))
        return None

    for first in range(0, count, wave):
        batch = range(first, min(count, first + wave))
        answered = collector.answered
        results = await asyncio.gather(*(one(i) for i in batch))
        made = [r for r in results if r is not None]
        opened.extend(made)
        ready = collector.expect_connected(answered + len(made))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(ready.wait(), max(0.1, deadline - loop.time()))
        if progress is not None:
            progress(collector.connected)
        if loop.time() >= deadline:
            collector.errors["connect: timed out"] += 1
            break
    return opened


def close_all(connections: Sequence[SSEConnection]) -> None:
    for connection in connections:
        connection.close()
