"""Every request's request id, access-log line and HTTP metrics, taken in
the front router (:class:`~tidings.http.app.TidingsApp`), so the raw ASGI
routes (publish, SSE, WebSocket) are covered as well as FastAPI's and the
admin pages'.

Request ids: a client's ``X-Request-ID`` is kept when it is 1 to
:data:`MAX_REQUEST_ID` characters of ``A-Z a-z 0-9 . _ : -`` (safe in a log
line, a header and a job row); anything else is replaced by a new one (32
hex digits). The id is echoed on the response (``X-Request-ID``; on a
WebSocket, on the accept) and put in the scope under :data:`SCOPE_KEY` for
the handlers (publish hands it to the jobs the events cause).

Cost per request: a header scan, a wrapped ``send`` (one call more per
message), two metric updates and, with ``access_log`` on, one log record.
"""

from __future__ import annotations

import logging
import re
import secrets
import time
from collections.abc import MutableMapping
from typing import Any

from tidings.http.metrics import UNMATCHED, HttpMetrics

REQUEST_ID_HEADER = b"x-request-id"
SCOPE_KEY = "tidings.request_id"
MAX_REQUEST_ID = 128
_SAFE_ID = re.compile(rb"[A-Za-z0-9._:\-]{1,%d}" % MAX_REQUEST_ID)
GONE = 499  # no response was started: the client left first (nginx's code for it)
access = logging.getLogger("tidings.access")


def request_id(scope: dict[str, Any]) -> bytes:
    """The client's ``X-Request-ID`` when it is safe, else a new id."""
    for name, value in scope.get("headers", ()):
        if name == REQUEST_ID_HEADER:
            if _SAFE_ID.fullmatch(value):
                return bytes(value)
            break
    return secrets.token_hex(16).encode()


class Exchange:
    """The ``send`` a request is answered through: remembers the status and
    adds ``X-Request-ID`` to the response's (or WebSocket accept's) headers.
    ``inner`` is the server's own ``send`` (the SSE fast path reaches
    uvicorn's transport through it)."""

    __slots__ = ("host_route", "inner", "request_id", "status")

    def __init__(self, inner: Any, rid: bytes, host_route: Any = None) -> None:
        self.inner = inner
        self.request_id = rid
        self.status: int | None = None
        self.host_route = host_route  # a host app's Mount of the hub, already in the scope

    def route_of(self, scope: dict[str, Any]) -> str | None:
        """The template of the route the hub's routers matched, if any."""
        route = scope.get("route")
        if route is None or route is self.host_route:
            return None
        return getattr(route, "path", None)

    async def __call__(self, message: MutableMapping[str, Any]) -> None:
        kind = message["type"]
        if kind == "http.response.start":
            self.status = message["status"]
            message = {**message, "headers": [*message.get("headers", ()), self._header()]}
        elif kind == "websocket.accept":
            self.status = 101
            message = {**message, "headers": [*message.get("headers", ()), self._header()]}
        elif kind == "websocket.close" and self.status is None:
            self.status = 403  # closed before the accept: the server answers 403
        await self.inner(message)

    def _header(self) -> tuple[bytes, bytes]:
        return (REQUEST_ID_HEADER, self.request_id)


class Observer:
    """Counts and logs each finished request (see the module docstring)."""

    def __init__(self, metrics: HttpMetrics, *, access_log: bool) -> None:
        self.metrics = metrics
        self.access_log = access_log

    def begin(self, scope: dict[str, Any], send: Any) -> Exchange:
        exchange = Exchange(send, request_id(scope), scope.get("route"))
        scope[SCOPE_KEY] = exchange.request_id.decode()
        return exchange

    def end(
        self,
        scope: dict[str, Any],
        exchange: Exchange,
        route: str | None,
        started: float,
        *,
        stream: bool = False,
    ) -> None:
        """``route`` None: whatever the routed app recorded in the scope."""
        seconds = time.perf_counter() - started
        if route is None:
            route = exchange.route_of(scope) or UNMATCHED
        status = exchange.status or GONE
        method = scope.get("method", "GET") if scope["type"] == "http" else "GET"
        self.metrics.observe(method, route, status, None if stream else seconds)
        if self.access_log and access.isEnabledFor(logging.INFO):
            rid = scope[SCOPE_KEY]
            access.info(
                "%s %s %d %.1fms request_id=%s",
                method,
                scope.get("path", ""),
                status,
                seconds * 1000,
                rid,
                extra={
                    "method": method,
                    "route": route,
                    "path": scope.get("path", ""),
                    "status": status,
                    "duration_ms": round(seconds * 1000, 3),
                    "request_id": rid,
                },
            )
