"""The portal as a real server for the tests: ``python -m tidings.portal
--seed`` on a free loopback port with its own temp databases (the hub's and
the portal's; SQLite files, or PostgreSQL databases)."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx

from support import ADMIN_KEY, JWT_SECRET, free_port
from tidings.portal.settings import new_payment_secret

DEMO_PASSWORD = "password123"


class PortalServer:
    """A running portal: ``url``, ``login(email)``, ``payment_secret``."""

    def __init__(self, hub_url: str, portal_url: str, *, payment_secret: str) -> None:
        self.hub_database_url = hub_url
        self.portal_database_url = portal_url
        self.payment_secret = payment_secret
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.admin_key = ADMIN_KEY
        self.jwt_secret = JWT_SECRET
        self.proc: subprocess.Popen[bytes] | None = None
        self._tokens: dict[str, str] = {}

    def start(self, log_path: Path, timeout: float = 90.0) -> PortalServer:
        env = {
            **os.environ,
            "TIDINGS_DATABASE_URL": self.hub_database_url,
            "TIDINGS_PORTAL_DATABASE_URL": self.portal_database_url,
            "TIDINGS_ADMIN_KEY": ADMIN_KEY,
            "TIDINGS_JWT_SECRET": JWT_SECRET,
            "TIDINGS_DEMO_PAYMENT_SECRET": self.payment_secret,
            "TIDINGS_LOG_LEVEL": "warning",
            "TIDINGS_JOB_POLL_S": "0.2",
        }
        log = open(log_path, "ab")  # noqa: SIM115 - closed with the process
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "tidings.portal", "--port", str(self.port), "--seed"],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"portal exited early:\n{log_path.read_text()[-3000:]}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{self.url}/readyz", timeout=1).status_code == 200:
                    return self
            time.sleep(0.1)
        raise RuntimeError(f"portal did not become ready:\n{log_path.read_text()[-3000:]}")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)

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
