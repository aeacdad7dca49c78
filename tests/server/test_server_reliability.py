"""Reliability over real HTTP: kill -9 loses nothing acknowledged, slow
consumers get an explicit reset and lose nothing, streams close cleanly on
token expiry and shutdown, heartbeats flow."""

from __future__ import annotations

import asyncio
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from support import ADMIN_KEY, Admin, ServerProcess, bearer, running_server, sse
from tidings.core.sse import SSEParser


def provision(url: str) -> tuple[Admin, str, str]:
    admin = Admin(url)
    tenant = admin.tenant()
    admin.role("reader", ["qms.read"], tenant_id=tenant)
    return admin, tenant, admin.user(tenant, "reader", "reader")


def all_history(url: str, tenant: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    cursor = None
    with httpx.Client(base_url=url, headers=bearer(ADMIN_KEY)) as client:
        while True:
            params = {"tenantId": tenant, "limit": "500", **({"cursor": cursor} if cursor else {})}
            page = client.get("/api/events/log", params=params).json()
            items += page["items"]
            cursor = page["nextCursor"]
            if cursor is None:
                return items


@pytest.mark.slow
def test_kill_9_loses_no_acknowledged_event(tmp_path: Path, database_url: str) -> None:
    server = ServerProcess(database_url).start(tmp_path / "first.log")
    admin, tenant, _ = provision(server.url)
    acknowledged: list[str] = []
    lock = threading.Lock()
    stop = threading.Event()

    def publisher(worker: int) -> None:
        with httpx.Client(base_url=server.url, headers=bearer(ADMIN_KEY), timeout=5) as client:
            for n in range(10_000):
                if stop.is_set():
                    return
                event = {
                    "type": "qms.car.updated",
                    "tenantId": tenant,
                    "data": {"w": worker, "n": n},
                }
                try:
                    response = client.post("/api/events", json=event)
                except httpx.HTTPError:
                    return  # the server died under us: not acknowledged
                if response.status_code == 202:
                    with lock:
                        acknowledged.append(response.json()["id"])

    threads = [threading.Thread(target=publisher, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + 20
    while len(acknowledged) < 300 and time.monotonic() < deadline:
        time.sleep(0.01)
    server.kill()  # SIGKILL while publishes are in flight
    stop.set()
    for thread in threads:
        thread.join()
    assert len(acknowledged) >= 300
    restarted = ServerProcess(database_url).start(tmp_path / "second.log")
    try:
        stored = {e["id"] for e in all_history(restarted.url, tenant)}
        missing = set(acknowledged) - stored
        assert not missing, f"{len(missing)} acknowledged events lost"
        positions = [e["position"] for e in all_history(restarted.url, tenant)]
        assert len(positions) == len(set(positions))
    finally:
        restarted.stop()
        admin.close()


def test_a_slow_consumer_is_reset_and_resumes_without_loss(
    tmp_path: Path, database_url: str
) -> None:
    env = {"TIDINGS_MAX_BUFFER_BYTES": "65536"}
    with running_server(tmp_path, database_url=database_url, env=env) as server:
        admin, tenant, token = provision(server.url)
        blob = "x" * 20_000
        received: list[int] = []
        closing: list[dict[str, Any]] = []

        async def run() -> None:
            async with httpx.AsyncClient(base_url=server.url, timeout=30) as client:
                async with client.stream("GET", "/api/events", headers=bearer(token)) as response:
                    # Publish ~40 MB while this client reads nothing.
                    for _ in range(20):
                        batch = [
                            {"type": "qms.car.updated", "tenantId": tenant, "data": {"b": blob}}
                            for _ in range(100)
                        ]
                        admin.http.post(
                            "/api/events/batch", json={"events": batch}
                        ).raise_for_status()
                    parser = SSEParser()
                    async for text in response.aiter_text():
                        for message in parser.feed(text):
                            body = __import__("orjson").loads(message.data) if message.data else {}
                            if body.get("type") == "qms.car.updated":
                                received.append(body["position"])
                            elif body.get("type") == "reset":
                                closing.append(body)
            # Resume from what actually arrived: the log fills the gap.
            last = str(received[-1])
            async with sse(server.url, token, headers={"Last-Event-ID": last}) as resumed:
                received.extend(
                    e["position"] for e in await resumed.events(2000 - len(received), timeout=30)
                )

        asyncio.run(run())
        assert closing and closing[0]["reason"] == "slow_consumer"
        assert closing[0]["lastEventId"]
        assert len(received) == 2000 and len(set(received)) == 2000
        assert received == sorted(received)
        metrics = httpx.get(f"{server.url}/metrics").text
        assert "tidings_stream_resets_total 1.0" in metrics
        admin.close()


def test_an_expired_token_closes_the_stream_with_a_reconnect_message(
    server: ServerProcess, admin: Admin
) -> None:
    from support import token_for

    tenant = admin.tenant()
    admin.user(tenant, "u", "member")

    async def run() -> dict[str, Any]:
        async with sse(server.url, token_for(tenant, "u", ttl_s=2)) as stream:
            _id, message = await stream.next(timeout=6)
            with pytest.raises(EOFError):
                await stream.next(timeout=3)
            return message

    assert asyncio.run(run()) == {"type": "reconnect", "reason": "token_expired"}


def test_shutdown_tells_clients_to_reconnect_with_jittered_retry(
    tmp_path: Path, database_url: str
) -> None:
    with running_server(tmp_path, database_url=database_url) as server:
        _admin, _tenant, token = provision(server.url)
        raw: list[str] = []

        async def run() -> None:
            async with httpx.AsyncClient(base_url=server.url, timeout=10) as client:
                async with client.stream("GET", "/api/events", headers=bearer(token)) as response:
                    async for text in response.aiter_text():
                        raw.append(text)
                        if "connected" in text and len(raw) == 1:
                            assert server.proc is not None
                            server.proc.terminate()

        started = time.monotonic()
        asyncio.run(run())
        assert server.proc is not None and server.proc.wait(10) in (
            0,
            -15,
        )  # uvicorn re-raises SIGTERM
        assert time.monotonic() - started < 8
        tail = "".join(raw)
        assert '"type":"reconnect","reason":"shutdown"' in tail
        retry = [int(line[7:]) for line in tail.splitlines() if line.startswith("retry: ")]
        assert len(retry) == 2 and 2000 <= retry[1] <= 4000  # base 2 s, jitter up to 2x
        assert f'"reason":"shutdown","retry":{retry[1]}}}' in tail  # the same, for scripts


def test_heartbeats_keep_idle_streams_alive(tmp_path: Path, database_url: str) -> None:
    with running_server(
        tmp_path, database_url=database_url, env={"TIDINGS_HEARTBEAT_S": "0.2"}
    ) as server:
        _admin, _tenant, token = provision(server.url)

        async def run() -> str:
            seen = ""
            async with httpx.AsyncClient(base_url=server.url, timeout=10) as client:
                async with client.stream("GET", "/api/events", headers=bearer(token)) as response:
                    async for text in response.aiter_text():
                        seen += text
                        if seen.count(": heartbeat") >= 2:
                            return seen
            return seen

        assert asyncio.run(asyncio.wait_for(run(), 5)).count(": heartbeat") >= 2


def test_operations_endpoints(server: ServerProcess) -> None:
    assert httpx.get(f"{server.url}/healthz").json() == {"status": "ok"}
    ready = httpx.get(f"{server.url}/readyz").json()
    assert ready["status"] == "ready" and "position" in ready
    metrics = httpx.get(f"{server.url}/metrics").text
    for name in (
        "tidings_stream_connections",
        "tidings_events_published_total",
        "tidings_deliveries_total",
        "tidings_delivery_latency_seconds_bucket",
        "tidings_stream_resets_total",
    ):
        assert name in metrics
    spec = httpx.get(f"{server.url}/openapi.json").json()
    assert {"/api/events", "/api/events/batch", "/api/events/log", "/qms/events"} <= set(
        spec["paths"]
    )
    assert "get" in spec["paths"]["/api/events"] and "post" in spec["paths"]["/api/events"]
    assert httpx.get(f"{server.url}/docs").status_code == 200


def test_connections_per_user_are_limited(tmp_path: Path, database_url: str) -> None:
    with running_server(
        tmp_path, database_url=database_url, env={"TIDINGS_MAX_CONNECTIONS_PER_USER": "2"}
    ) as server:
        _admin, _tenant, token = provision(server.url)

        async def run() -> int:
            async with sse(server.url, token), sse(server.url, token):
                async with httpx.AsyncClient(base_url=server.url) as client:
                    third = await client.get("/api/events", headers=bearer(token))
                    assert third.headers["content-type"] == "application/problem+json"
                    assert third.headers["retry-after"]
                    return third.status_code

        assert asyncio.run(run()) == 429


def test_retention_prunes_old_events_and_late_resumes_get_a_reset(
    tmp_path: Path, database_url: str
) -> None:
    with running_server(
        tmp_path, database_url=database_url, env={"TIDINGS_RETENTION_INTERVAL_S": "0.2"}
    ) as server:
        admin, tenant, token = provision(server.url)
        keep = admin.tenant()
        admin.http.put(
            f"/api/admin/tenants/{tenant}", json={"name": "t", "settings": {"retentionDays": 1e-5}}
        )
        event = {"type": "qms.car.updated", "tenantId": tenant}
        first = admin.publish(event).json()["position"]
        admin.publish({**event, "tenantId": keep})
        deadline = time.monotonic() + 10
        while all_history(server.url, tenant) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert all_history(server.url, tenant) == []
        assert len(all_history(server.url, keep)) == 1  # no retention set for it

        async def resume() -> dict[str, Any]:
            async with sse(server.url, token, headers={"Last-Event-ID": str(first - 1)}) as stream:
                return (await stream.next())[1]

        assert asyncio.run(resume()) == {"type": "reset", "reason": "too_far_behind"}
        admin.close()


def test_a_busy_log_never_looks_rewound_to_the_feed(tmp_path: Path, database_url: str) -> None:
    """The feed's poll races with commits; a stale head must never be taken
    for a rewound log (which would reset every stream)."""
    with running_server(
        tmp_path, database_url=database_url, env={"TIDINGS_POLL_S": "0.005"}
    ) as server:
        admin, tenant, token = provision(server.url)
        received: list[int] = []
        controls: list[dict[str, Any]] = []

        def publish_many() -> None:
            with httpx.Client(base_url=server.url, headers=bearer(ADMIN_KEY)) as client:
                for _ in range(150):
                    client.post("/api/events", json={"type": "qms.car.updated", "tenantId": tenant})

        async def run() -> None:
            async with sse(server.url, token) as stream:
                threads = [threading.Thread(target=publish_many) for _ in range(4)]
                for thread in threads:
                    thread.start()
                while len(received) < 600:
                    _id, message = await stream.next(timeout=10)
                    if message["type"] == "qms.car.updated":
                        received.append(message["position"])
                    else:
                        controls.append(message)
                for thread in threads:
                    thread.join()

        asyncio.run(run())
        assert controls == [] and received == sorted(set(received))
        admin.close()
