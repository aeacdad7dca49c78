"""A minimal keep-alive HTTP/1.1 client for publishers: an asyncio Protocol
with httptools parsing the responses, one request in flight per connection.

A general-purpose client (httpx) costs a few hundred microseconds per request
on the client core, which would cap the publish scenarios below what the
servers can take; this one costs a few microseconds.
"""

from __future__ import annotations

import asyncio
from typing import cast

import httptools


def build_request(
    method: str, host: str, port: int, path: str, *, auth: str | None, body: bytes = b""
) -> bytes:
    head = [f"{method} {path} HTTP/1.1", f"Host: {host}:{port}"]
    if auth:
        head.append(f"Authorization: {auth}")
    if method != "GET":
        head.append("Content-Type: application/json")
        head.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + body


class HTTPConnection(asyncio.Protocol):
    """One keep-alive connection; ``send`` writes a request and resolves with
    ``(status, body)`` when the response has been parsed."""

    def __init__(self) -> None:
        self.parser = httptools.HttpResponseParser(self)
        self.transport: asyncio.Transport | None = None
        self.waiter: asyncio.Future[tuple[int, bytes]] | None = None
        self.body: list[bytes] = []

    # -- asyncio.Protocol --------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass

    def data_received(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self._fail(ConnectionError(f"bad HTTP response: {exc}"))

    def connection_lost(self, exc: Exception | None) -> None:
        self._fail(ConnectionError(f"connection lost: {exc}"))

    # -- httptools callbacks -----------------------------------------------

    def on_body(self, body: bytes) -> None:
        self.body.append(body)

    def on_message_complete(self) -> None:
        status = self.parser.get_status_code()
        body = b"".join(self.body)
        self.body = []
        waiter, self.waiter = self.waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_result((status, body))

    # -- API ---------------------------------------------------------------

    def _fail(self, exc: Exception) -> None:
        waiter, self.waiter = self.waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_exception(exc)

    def send(self, request: bytes) -> asyncio.Future[tuple[int, bytes]]:
        if self.transport is None or self.transport.is_closing():
            raise ConnectionError("connection closed")
        self.waiter = asyncio.get_running_loop().create_future()
        self.transport.write(request)
        return self.waiter

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()


async def connect(host: str, port: int) -> HTTPConnection:
    _transport, protocol = await asyncio.get_running_loop().create_connection(
        HTTPConnection, host, port
    )
    return protocol
