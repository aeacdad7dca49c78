"""Several `tidings serve` processes on one PostgreSQL: cross-process
delivery, a process killed mid-run, and a database outage."""

from __future__ import annotations

import asyncio
import concurrent.futures
import itertools
import random
import time
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from pg import PostgresServer
from support import ADMIN_KEY, Admin, ServerProcess, bearer, sse
from tidings.core.sse import SSEParser

pytestmark = pytest.mark.slow
USERS = {"alice": ["team-a"], "bob": ["team-b"], "carol": ["team-a", "team-b"], "dave": []}


class Subscriber:
    """Follows one user's stream, moving to another server when its own
    dies, resuming with Last-Event-ID."""

    def __init__(self, user: str, token: str, servers: list[ServerProcess], first: int) -> None:
        self.user, self.token, self.servers = user, token, servers
        self.index = first
        self.positions: list[int] = []
        self.reconnects = 0

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            server = self.servers[self.index % len(self.servers)]
            headers = bearer(self.token)
            if self.positions:
                headers["Last-Event-ID"] = str(self.positions[-1])
            try:
                async with httpx.AsyncClient(timeout=httpx.Timeout(5, read=None)) as client:
                    async with client.stream(
                        "GET", f"{server.url}/api/events", headers=headers
                    ) as response:
                        parser = SSEParser()
                        async for text in response.aiter_text():
                            for message in parser.feed(text):
                                body = orjson.loads(message.data) if message.data else {}
                                if body.get("type") == "qms.car.updated":
                                    self.positions.append(body["position"])
                            if stop.is_set():
                                return
            except httpx.HTTPError:
                pass
            self.index += 1  # that server is gone: try the next one
            self.reconnects += 1
            await asyncio.sleep(0.1)


async def publisher(
    servers: list[ServerProcess], tenant: str, count: int, acked: list[str], seed: int
) -> None:
    rng = random.Random(seed)
    async with httpx.AsyncClient(headers=bearer(ADMIN_KEY), timeout=5) as client:
        for n in range(count):
            alive = [s for s in servers if s.proc is not None and s.proc.poll() is None]
            server = rng.choice(alive)
            audiences = rng.choice(
                [
                    ["permission:team-a"],
                    ["permission:team-b"],
                    ["user:dave"],
                    ["permission:team-a", "user:bob"],
                ]
            )
            event = {
                "type": "qms.car.updated",
                "tenantId": tenant,
                "audiences": audiences,
                "data": {"n": n, "s": seed},
            }
            try:
                response = await client.post(f"{server.url}/api/events", json=event)
            except httpx.HTTPError:
                continue  # the process died under us: unknown outcome, the log decides
            if response.status_code == 202:
                acked.append(response.json()["id"])


def visible_to(user: str, event: dict[str, Any]) -> bool:
    held = {f"permission:{p}" for p in USERS[user]} | {f"user:{user}"}
    return bool(held & set(event["audiences"]))


def full_log(url: str, tenant: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    cursor = None
    while True:
        params = {
            "tenantId": tenant,
            "limit": "500",
            "order": "asc",
            **({"cursor": cursor} if cursor else {}),
        }
        page = httpx.get(f"{url}/api/events/log", params=params, headers=bearer(ADMIN_KEY)).json()
        items += page["items"]
        cursor = page["nextCursor"]
        if cursor is None:
            return items


def test_three_processes_deliver_exactly_once_in_order_through_a_kill(
    postgres: PostgresServer, tmp_path: Path
) -> None:
    url = postgres.url(postgres.create_database())
    servers = [ServerProcess(url, env={"TIDINGS_POLL_S": "1"}) for _ in range(3)]
    with concurrent.futures.ThreadPoolExecutor(3) as pool:  # concurrent start-ups migrate at once
        list(
            pool.map(
                lambda pair: pair[1].start(tmp_path / f"server{pair[0]}.log"), enumerate(servers)
            )
        )
    admin = Admin(servers[0].url)
    tenant = admin.tenant()
    tokens = {
        user: admin.user(tenant, user, "member", grant=perms) for user, perms in USERS.items()
    }

    async def run() -> list[Subscriber]:
        subscribers = [
            Subscriber(user, token, servers, first=i)
            for i, (user, token) in enumerate(itertools.chain(tokens.items(), tokens.items()))
        ]
        stop = asyncio.Event()
        tasks = [asyncio.create_task(s.run(stop)) for s in subscribers]
        await asyncio.sleep(1.0)  # all connected
        acked: list[str] = []
        publishers = [
            asyncio.create_task(publisher(servers, tenant, 150, acked, seed)) for seed in range(6)
        ]
        await asyncio.sleep(1.0)
        servers[2].kill()  # mid-run, with streams and publishes in flight
        await asyncio.gather(*publishers)
        log = full_log(servers[0].url, tenant)
        assert set(acked) <= {e["id"] for e in log}, "an acknowledged event is missing from the log"
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if all(
                len(s.positions) >= sum(visible_to(s.user, e) for e in log) for s in subscribers
            ):
                break
            await asyncio.sleep(0.2)
        stop.set()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for s in subscribers:
            expected = [e["position"] for e in log if visible_to(s.user, e)]
            assert s.positions == expected, (
                f"{s.user}: got {len(s.positions)}, expected {len(expected)}"
            )
        return subscribers

    try:
        subscribers = asyncio.run(run())
        assert any(s.reconnects for s in subscribers)  # someone lived on the killed process
    finally:
        admin.close()
        for server in servers:
            server.stop()


def test_a_database_outage_answers_503_and_streams_catch_up(
    postgres: PostgresServer, tmp_path: Path
) -> None:
    url = postgres.url(postgres.create_database())
    server = ServerProcess(url, env={"TIDINGS_POLL_S": "0.5"}).start(tmp_path / "server.log")
    admin = Admin(server.url)
    tenant = admin.tenant()
    token = admin.user(tenant, "u", "member", grant=["team-a"])
    event = {"type": "qms.car.updated", "tenantId": tenant, "audiences": ["permission:team-a"]}

    async def run() -> None:
        async with sse(server.url, token) as stream:
            before = admin.publish(event).json()["position"]
            assert (await stream.events(1))[0]["position"] == before
            postgres.stop("fast")  # an orderly stop: committed data survives
            try:
                down = admin.publish(event)
                assert down.status_code == 503, down.text
                assert down.headers["retry-after"] and down.json()["retryable"] is True
                assert httpx.get(f"{server.url}/readyz").status_code == 503
            finally:
                postgres.restart()
            deadline = time.monotonic() + 20
            while admin.publish(event).status_code != 202:  # the pool reconnects
                assert time.monotonic() < deadline, "publishing did not recover"
                await asyncio.sleep(0.2)
            got = await stream.events(1, timeout=10)  # the same stream, still open
            assert got[0]["position"] > before
            assert httpx.get(f"{server.url}/readyz").status_code == 200

    try:
        asyncio.run(run())
    finally:
        admin.close()
        server.stop()
