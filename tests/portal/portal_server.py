"""The portal as a real server for the tests: ``python -m tidings.portal
--seed`` on a free loopback port with its own temp databases (the hub's and
the portal's; SQLite files, or PostgreSQL databases)."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx

from support import ADMIN_KEY, JWT_SECRET, ServerProcess, free_port
from tidings.portal.settings import new_payment_secret

DEMO_PASSWORD = "password123"


class PortalServer(ServerProcess):
    """A running portal (``python -m tidings.portal --seed``, the hub's
    start-up loop of :class:`support.ServerProcess`): ``url``,
    ``login(email)``, ``payment_secret``."""

    def __init__(self, hub_url: str, portal_url: str, *, payment_secret: str) -> None:
        port = free_port()
        super().__init__(
            hub_url,
            port=port,
            command=[sys.executable, "-m", "tidings.portal", "--port", str(port), "--seed"],
            env={
                "TIDINGS_PORTAL_DATABASE_URL": portal_url,
                "TIDINGS_DEMO_PAYMENT_SECRET": payment_secret,
                "TIDINGS_JOB_POLL_S": "0.2",
            },
        )
        self.hub_database_url = hub_url
        self.portal_database_url = portal_url
        self.payment_secret = payment_secret
        self.admin_key = ADMIN_KEY
        self.jwt_secret = JWT_SECRET
        self._tokens: dict[str, str] = {}

    def start(self, log_path: Path, timeout: float = 90.0) -> PortalServer:
        super().start(log_path, timeout)
        return self

    def login(self, email: str, password: str = DEMO_PASSWORD) -> str:
        """An access token for a demo account (cached per email)."""
        if email not in self._tokens:
            answer = httpx.post(
                f"{self.url}/api/auth/login",
                json={"email": email, "password": password},
                timeout=30,
            )
            answer.raise_for_status()
            self._tokens[email] = str(answer.json()["accessToken"])
        return self._tokens[email]

    def client(self, email: str | None = None) -> httpx.Client:
        """An HTTP client for the portal, logged in as ``email`` if given."""
        headers = {"Authorization": f"Bearer {self.login(email)}"} if email else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=30)

    def api(self, email: str, method: str, path: str, **kwargs: Any) -> httpx.Response:
        with self.client(email) as http:
            return http.request(method, path, **kwargs)


@contextlib.contextmanager
def running_portal(tmp: Path, hub_url: str, portal_url: str) -> Iterator[PortalServer]:
    server = PortalServer(hub_url, portal_url, payment_secret=new_payment_secret())
    try:
        server.start(tmp / "portal.log")
        yield server
    finally:
        server.stop()
