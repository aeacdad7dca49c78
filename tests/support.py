"""Test support: real servers on loopback, real clients, no mocks.

``TIDINGS_REQUIRE_SERVICES=1`` (set by CI) turns "service missing -> skip"
into a failure, so a run can never pass by skipping.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tidings.services.auth import mint_token

REQUIRE_SERVICES = os.environ.get("TIDINGS_REQUIRE_SERVICES") == "1"
ADMIN_KEY = "test-admin-key-0123456789abcdef0123456789"
JWT_SECRET = "test-jwt-secret-0123456789abcdef0123456789"


def need(available: bool, what: str) -> None:
    """Skip (locally) or fail (CI) when a service the test needs is missing."""
    if available:
        return
    if REQUIRE_SERVICES:
        pytest.fail(f"required service missing: {what}")
    pytest.skip(f"service missing: {what}")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def unique(prefix: str = "t") -> str:
    return f"{prefix}{uuid.uuid4().hex[:10]}"


class ServerProcess:
    """``tidings serve`` in a subprocess on a free loopback port (or
    ``command``, e.g. a host app embedding the hub, ready when
    ``ready_path`` answers 200)."""

    def __init__(
        self,
        database_url: str,
        *,
        env: dict[str, str] | None = None,
        port: int | None = None,
        command: list[str] | None = None,
        ready_path: str = "/readyz",
    ) -> None:
        self.database_url = database_url
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.extra_env = env or {}
        self.command = command or [sys.executable, "-m", "tidings", "serve"]
        self.ready_path = ready_path
        self.proc: subprocess.Popen[bytes] | None = None
        self.log_path: Path | None = None

    # 60 s: a server on PostgreSQL took 15-30 s to become ready on a loaded
    # two-core machine (about 1 s when idle); a slow start is not a failure.
    def start(self, log_path: Path, timeout: float = 60.0) -> ServerProcess:
        self.log_path = log_path
        env = {
            **os.environ,
            "TIDINGS_DATABASE_URL": self.database_url,
            "TIDINGS_ADMIN_KEY": ADMIN_KEY,
            "TIDINGS_JWT_SECRET": JWT_SECRET,
            "TIDINGS_HOST": "127.0.0.1",
            "TIDINGS_PORT": str(self.port),
            "TIDINGS_LOG_LEVEL": "warning",
            **self.extra_env,
        }
        log = open(log_path, "ab")  # noqa: SIM115 - closed with the process
        self.proc = subprocess.Popen(
            [*self.command],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited early:\n{log_path.read_text()[-3000:]}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{self.url}{self.ready_path}", timeout=1).status_code == 200:
                    return self
            time.sleep(0.05)
        raise RuntimeError(f"server did not become ready:\n{log_path.read_text()[-3000:]}")

    def kill(self) -> None:
        """SIGKILL: no shutdown code runs."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.kill()


class Admin:
    """The admin API through a real HTTP client."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.http = httpx.Client(
            base_url=url, headers={"Authorization": f"Bearer {ADMIN_KEY}"}, timeout=10
        )

    def close(self) -> None:
        self.http.close()

    def tenant(self, tenant_id: str | None = None, name: str = "Test tenant") -> str:
        tenant_id = tenant_id or unique("ten")
        self.http.put(f"/api/admin/tenants/{tenant_id}", json={"name": name}).raise_for_status()
        return tenant_id

    def user(
        self,
        tenant_id: str,
        user_id: str,
        role: str = "member",
        *,
        grant: list[str] | None = None,
        revoke: list[str] | None = None,
        resources: list[str] | None = None,
        platform: bool = False,
        platform_tenants: list[str] | None = None,
    ) -> str:
        body: dict[str, Any] = {
            "systemRole": role,
            "permissionOverrides": {"grant": grant or [], "revoke": revoke or []},
            "resources": resources or [],
            "platform": platform,
        }
        if platform_tenants is not None:
            body["platformTenants"] = platform_tenants
        self.http.put(
            f"/api/admin/tenants/{tenant_id}/users/{user_id}", json=body
        ).raise_for_status()
        return token_for(tenant_id, user_id)

    def role(self, role: str, permissions: list[str], tenant_id: str | None = None) -> None:
        body: dict[str, Any] = {"permissions": permissions}
        if tenant_id:
            body["tenantId"] = tenant_id
        self.http.put(f"/api/admin/roles/{role}", json=body).raise_for_status()

    def api_key(self, scopes: list[str], tenant_id: str | None = None) -> str:
        body: dict[str, Any] = {"scopes": scopes, "name": "test"}
        if tenant_id:
            body["tenantId"] = tenant_id
        response = self.http.post("/api/admin/api-keys", json=body)
        response.raise_for_status()
        return str(response.json()["key"])

    def publish(self, event: dict[str, Any], **kwargs: Any) -> httpx.Response:
        return self.http.post("/api/events", json=event, **kwargs)


def token_for(tenant_id: str, user_id: str, ttl_s: float = 3600, secret: str = JWT_SECRET) -> str:
    return mint_token(secret, tenant_id=tenant_id, user_id=user_id, ttl_s=ttl_s)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@contextlib.contextmanager
def running_server(
    tmp: Path, *, env: dict[str, str] | None = None, database_url: str | None = None
) -> Iterator[ServerProcess]:
    server = ServerProcess(database_url or f"sqlite:///{tmp / 'tidings.db'}", env=env)
    try:
        server.start(tmp / "server.log")  # stopped even when it never became ready
        yield server
    finally:
        server.stop()


class LiveStream:
    """An open SSE stream read with a real SSE client library (httpx-sse).

    A reader task feeds a queue, so a timed-out wait never cancels (and so
    ends) the underlying iteration."""

    def __init__(self, source: Any) -> None:
        import asyncio

        self.source = source
        self.response = source.response
        self.queue: asyncio.Queue[Any] = asyncio.Queue()
        self.reader = asyncio.get_running_loop().create_task(self._read())

    async def _read(self) -> None:
        try:
            async for message in self.source.aiter_sse():
                if message.data:  # a retry-only message carries no data
                    self.queue.put_nowait(message)
        finally:
            self.queue.put_nowait(None)

    async def next(self, timeout: float = 5.0) -> tuple[str | None, dict[str, Any]]:
        import asyncio

        import orjson

        message = await asyncio.wait_for(self.queue.get(), timeout)
        if message is None:
            self.queue.put_nowait(None)
            raise EOFError("the stream ended")
        return (message.id or None), orjson.loads(message.data)

    async def events(self, n: int, timeout: float = 5.0) -> list[dict[str, Any]]:
        """The next ``n`` log events (control messages skipped)."""
        out: list[dict[str, Any]] = []
        while len(out) < n:
            _id, message = await self.next(timeout)
            if "position" in message and message.get("type") not in {"connected", "reset"}:
                out.append(message)
        return out

    async def nothing_for(self, seconds: float) -> bool:
        """True if no log event arrives within ``seconds``."""

        try:
            await self.events(1, timeout=seconds)
        except TimeoutError:
            return True
        return False


@contextlib.asynccontextmanager
async def sse(
    base_url: str,
    token: str | None = None,
    *,
    path: str = "/api/events",
    params: dict[str, str] | None = None,
    headers: dict[str, str] | None = None,
    expect_connected: bool = True,
) -> Any:
    from httpx_sse import aconnect_sse

    all_headers = {**(bearer(token) if token else {}), **(headers or {})}
    async with httpx.AsyncClient(base_url=base_url, timeout=httpx.Timeout(10, read=60)) as client:
        async with aconnect_sse(client, "GET", path, params=params, headers=all_headers) as source:
            stream = LiveStream(source)
            if expect_connected and source.response.status_code == 200:
                _id, first = await stream.next()
                assert first["type"] == "connected", first
                stream.connected = first  # type: ignore[attr-defined]
            try:
                yield stream
            finally:
                stream.reader.cancel()
