"""Real receivers for automation tests: an HTTP webhook endpoint that
verifies Standard Webhooks signatures, and an SMTP server (aiosmtpd)."""

from __future__ import annotations

import json
import sys
import threading
import time
from dataclasses import dataclass, field
from email import message_from_bytes
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from aiosmtpd.controller import Controller
from standardwebhooks.webhooks import Webhook

from support import free_port


class ReceiverServer(ThreadingHTTPServer):
    """A threaded test server that stays quiet when the client gave up.

    The hub drops connections on purpose (timeouts against hanging
    endpoints); ``socketserver`` would print that traceback to whatever
    ``sys.stderr`` is at the moment, which may be another test's capture.
    """

    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        if isinstance(sys.exc_info()[1], ConnectionError):
            return
        super().handle_error(request, client_address)


@dataclass
class Delivery:
    path: str
    headers: dict[str, str]
    body: dict[str, Any]
    at: float
    verified: bool
    raw: bytes = b""  # the body as sent (what the signature covers)


@dataclass
class Endpoint:
    secret: str
    script: list[tuple[int, dict[str, str]]] = field(default_factory=list)  # answers, in order
    hang_s: float = 0.0  # the first request hangs this long (a worker killed mid-job)


class WebhookReceiver:
    """``POST /<name>``: verifies the signature with the endpoint's secret,
    records the delivery, answers the next scripted status (then 200)."""

    def __init__(self) -> None:
        self.endpoints: dict[str, Endpoint] = {}
        self.deliveries: list[Delivery] = []
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                receiver._handle(self)

            def log_message(self, *args: Any) -> None:
                pass

        self._server = ReceiverServer(("127.0.0.1", self.port), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def endpoint(self, name: str, secret: str, *answers: Any, hang_s: float = 0.0) -> str:
        script = [a if isinstance(a, tuple) else (a, {}) for a in answers]
        self.endpoints[name] = Endpoint(secret, script, hang_s)
        return f"{self.url}/{name}"

    def to(self, name: str) -> list[Delivery]:
        with self._lock:
            return [d for d in self.deliveries if d.path == f"/{name}"]

    def wait_for(self, name: str, count: int, timeout: float = 15.0) -> list[Delivery]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            got = self.to(name)
            if len(got) >= count:
                return got
            time.sleep(0.05)
        raise AssertionError(f"{name}: {len(self.to(name))} deliveries, wanted {count}")

    def _handle(self, request: BaseHTTPRequestHandler) -> None:
        raw = request.rfile.read(int(request.headers.get("content-length", 0)))
        headers = {k.lower(): v for k, v in request.headers.items()}
        endpoint = self.endpoints.get(request.path.lstrip("/"))
        verified = False
        if endpoint is not None:
            try:
                Webhook(endpoint.secret).verify(raw, headers)
                verified = True
            except Exception:
                verified = False
        with self._lock:
            first = not any(d.path == request.path for d in self.deliveries)
            self.deliveries.append(
                Delivery(
                    request.path, headers, json.loads(raw or b"{}"), time.time(), verified, raw
                )
            )
            answer = endpoint.script.pop(0) if endpoint and endpoint.script else (200, {})
        if endpoint is not None and endpoint.hang_s and first:
            time.sleep(endpoint.hang_s)
        status, extra = answer if verified else (401, {})
        request.send_response(status)
        for key, value in extra.items():
            request.send_header(key, value)
        request.send_header("content-length", "2")
        request.end_headers()
        request.wfile.write(b"ok")

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


class MailSink:
    """A real SMTP server on loopback, keeping every message it accepts."""

    def __init__(self) -> None:
        self.messages: list[tuple[str, list[str], Message]] = []
        sink = self

        class Handler:
            async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
                sink.messages.append(
                    (
                        envelope.mail_from,
                        list(envelope.rcpt_tos),
                        message_from_bytes(envelope.content),
                    )
                )
                return "250 2.0.0 queued"

        self.port = free_port()
        self.url = f"smtp://127.0.0.1:{self.port}?starttls=false"
        self._controller = Controller(Handler(), hostname="127.0.0.1", port=self.port)
        self._controller.start()

    def wait_for(self, subject: str, timeout: float = 15.0) -> tuple[str, list[str], Message]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for item in self.messages:
                if item[2]["Subject"] == subject:
                    return item
            time.sleep(0.05)
        raise AssertionError(f"no mail with subject {subject!r}")

    def close(self) -> None:
        self._controller.stop()
