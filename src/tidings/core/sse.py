"""Server-Sent Events framing: encoding (server) and parsing (SDK, tail,
benchmark clients).

Security invariant (mercure ``hardening_test.go``): no CR, LF or NUL can reach
an ``id:`` or ``event:`` line; multi-line data becomes several ``data:``
lines, so a payload can never inject a field or end a message early.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

_UNSAFE = str.maketrans({"\r": None, "\n": None, "\0": None})


def _field_value(value: str) -> str:
    return value.translate(_UNSAFE)


def encode_message(
    data: str | bytes,
    *,
    id: str | int | None = None,
    event: str | None = None,
    retry_ms: int | None = None,
) -> bytes:
    """Encode one SSE message. ``data`` may contain newlines of any style."""
    parts: list[bytes] = []
    if id is not None:
        parts.append(b"id: " + _field_value(str(id)).encode())
    if event is not None:
        parts.append(b"event: " + _field_value(event).encode())
    if retry_ms is not None:
        parts.append(b"retry: %d" % int(retry_ms))
    text = data.decode() if isinstance(data, bytes) else data
    for line in text.replace("\r\n", "\n").replace("\r", "\n").split("\n"):
        parts.append(b"data: " + line.replace("\0", "\ufffd").encode())
    return b"\n".join(parts) + b"\n\n"


def encode_event(position: int, json_bytes: bytes) -> bytes:
    """The hot-path frame for a log event. ``json_bytes`` comes from orjson,
    which never emits a raw newline, so one ``data:`` line is exact."""
    return b"id: %d\ndata: %s\n\n" % (position, json_bytes)


def encode_comment(text: str) -> bytes:
    return b": " + _field_value(text).encode() + b"\n\n"


def encode_retry(retry_ms: int) -> bytes:
    return b"retry: %d\n\n" % int(retry_ms)


@dataclass(slots=True)
class Message:
    data: str
    id: str | None = None
    event: str = "message"
    retry: int | None = None


class SSEParser:
    """Incremental parser per the HTML Living Standard's event-stream rules.

    Guarantees (property-tested against a whole-stream reference parser in
    ``tests/core/test_fuzz_parsers.py``, for any text cut into any chunks):

    * it never raises, whatever the stream holds;
    * a leading U+FEFF (BOM) is ignored, once, at the start of the stream;
    * lines end at CRLF, CR or LF, also when a CRLF is split across chunks;
    * a line without a colon is a field name with an empty value;
    * ``retry:`` is used only when its value is ASCII digits (``retry: ²``
      or fullwidth digits are ignored), and an ``id`` holding NUL is ignored;
    * a message ends at an empty line; a message cut off by the end of the
      stream is never dispatched.

    A message with only ``retry:`` is yielded as ``event="retry"`` (no data),
    so a client can honour it.
    """

    def __init__(self) -> None:
        self._buffer = ""
        self._started = False  # a BOM can only lead the stream
        self._skip_lf = False  # the last chunk ended with a CR: a LF next is its pair
        self._data: list[str] = []
        self._event = ""
        self._id: str | None = None
        self._retry: int | None = None
        self.last_event_id: str | None = None

    def feed(self, chunk: str) -> Iterator[Message]:
        if not chunk:
            return
        if not self._started:
            self._started = True
            chunk = chunk.removeprefix("\ufeff")
        if self._skip_lf:
            self._skip_lf = False
            chunk = chunk.removeprefix("\n")
        buffer = self._buffer + chunk
        start = 0
        while True:
            end = _line_end(buffer, start)
            if end is None:
                break
            line = buffer[start:end]
            if buffer.startswith("\r\n", end):
                start = end + 2
            else:
                start = end + 1
                self._skip_lf = start == len(buffer) and buffer[end] == "\r"
            message = self._line(line)
            if message is not None:
                yield message
        self._buffer = buffer[start:]

    def _line(self, line: str) -> Message | None:
        if line == "":
            return self._dispatch()
        if line.startswith(":"):
            return None
        name, _, value = line.partition(":")
        if value.startswith(" "):
            value = value[1:]
        if name == "data":
            self._data.append(value)
        elif name == "event":
            self._event = value
        elif name == "id" and "\0" not in value:
            self._id = value
        elif name == "retry" and value.isascii() and value.isdigit():
            self._retry = int(value)
        return None

    def _dispatch(self) -> Message | None:
        if self._id is not None:
            self.last_event_id = self._id
        if not self._data:
            self._event = ""
            retry, self._retry = self._retry, None
            if retry is not None:
                return Message(data="", id=self.last_event_id, event="retry", retry=retry)
            return None
        message = Message(
            data="\n".join(self._data),
            id=self.last_event_id,
            event=self._event or "message",
            retry=self._retry,
        )
        self._data, self._event, self._retry, self._id = [], "", None, None
        return message


def _line_end(buffer: str, start: int) -> int | None:
    """Where the line from ``start`` ends (a CR or LF), or None if it has
    not ended yet."""
    lf = buffer.find("\n", start)
    cr = buffer.find("\r", start, lf if lf >= 0 else len(buffer))
    if cr >= 0:
        return cr
    return lf if lf >= 0 else None


def log_position(event_id: str | None) -> int | None:
    """A stream id that is a log position (ASCII digits only: ``int()``
    also reads ``²`` and fullwidth digits), else None."""
    if event_id is None or not (event_id.isascii() and event_id.isdigit()):
        return None
    return int(event_id)
