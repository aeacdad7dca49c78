"""The Python SDK, the ``tidings publish`` and ``tidings tail`` commands,
against a real server on loopback. Faults (a lost answer, a 503) are
injected in the HTTP transport between the client and the real server."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from support import ADMIN_KEY, Admin, ServerProcess, token_for, unique
from tidings.errors import (
    Forbidden,
    InvalidInput,
    NotFound,
    PayloadTooLarge,
    RateLimited,
    Unauthorized,
    Unavailable,
)
from tidings.sdk import AsyncTidingsClient, Subscriber, TidingsClient, is_control

DEAD_URL = "http://127.0.0.1:9"  # the discard port: nothing listens on loopback


def car(tenant: str, entity: str | None = None, **extra: Any) -> dict[str, Any]:
    return {
        "type": "qms.car.updated",
        "tenantId": tenant,
        "entityId": entity or unique("car"),
        **extra,
    }


@pytest.fixture
def tenant(admin: Admin) -> str:
    return admin.tenant()


@pytest.fixture
def reader(admin: Admin, tenant: str) -> str:
    """A user token of ``tenant`` that may read QMS events."""
    return admin.user(tenant, unique("u"), grant=["qms.read"])


@pytest.fixture
def client(server: ServerProcess) -> Iterator[TidingsClient]:
    with TidingsClient(server.url, token=ADMIN_KEY) as sync_client:
        yield sync_client


def entities(client: TidingsClient, tenant: str, entity_id: str) -> list[dict[str, Any]]:
    return list(client.history(tenant_id=tenant, entity_id=entity_id)["items"])


# -- fault injection -----------------------------------------------------------


def _fault_response(status: int, retry_after: str = "0") -> httpx.Response:
    body = {"status": status, "detail": "injected", "code": "unavailable"}
    if status == 429:
        body["code"] = "rate_limited"
    return httpx.Response(
        status,
        headers={"Retry-After": retry_after, "content-type": "application/problem+json"},
        content=json.dumps(body).encode(),
    )


class Faults(httpx.BaseTransport):
    """Sends requests to the real server, except that the next faults apply
    first: ``"lost"`` (the server gets the request, the answer is lost) or
    a status code (answered here, the server never sees it)."""

    def __init__(self, *faults: str | int, retry_after: str = "0") -> None:
        self.faults = list(faults)
        self.retry_after = retry_after
        self.real = httpx.HTTPTransport()
        self.sent = 0

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self.sent += 1
        fault = self.faults.pop(0) if self.faults else None
        if isinstance(fault, int):
            return _fault_response(fault, self.retry_after)
        response = self.real.handle_request(request)
        if fault == "lost":
            response.read()
            response.close()
            raise httpx.ReadTimeout("the answer was lost", request=request)
        return response

    def close(self) -> None:
        self.real.close()


class AsyncFaults(httpx.AsyncBaseTransport):
    def __init__(self, *faults: str | int) -> None:
        self.faults = list(faults)
        self.real = httpx.AsyncHTTPTransport()
        self.sent = 0

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.sent += 1
        fault = self.faults.pop(0) if self.faults else None
        if isinstance(fault, int):
            return _fault_response(fault)
        response = await self.real.handle_async_request(request)
        if fault == "lost":
            await response.aread()
            await response.aclose()
            raise httpx.ReadTimeout("the answer was lost", request=request)
        return response

    async def aclose(self) -> None:
        await self.real.aclose()


# -- sync client -----------------------------------------------------------------


def test_publish_returns_id_and_position_and_is_idempotent(
    client: TidingsClient, tenant: str
) -> None:
    event = car(tenant)
    first = client.publish(event)
    assert first["id"].startswith("evt_") and isinstance(first["position"], int)
    again = client.publish({**event, "id": first["id"]})
    assert again == first
    assert [e["id"] for e in entities(client, tenant, event["entityId"])] == [first["id"]]


def test_lost_answer_is_retried_without_a_duplicate(server: ServerProcess, tenant: str) -> None:
    faults = Faults("lost")
    event = car(tenant)
    with TidingsClient(server.url, token=ADMIN_KEY, transport=faults, backoff=0.01) as client:
        result = client.publish(event)
        assert faults.sent == 2  # the first attempt reached the server; its answer did not
        stored = entities(client, tenant, event["entityId"])
    assert [e["id"] for e in stored] == [result["id"]]
    assert stored[0]["position"] == result["position"]


def test_503_and_429_are_retried_honoring_retry_after(server: ServerProcess, tenant: str) -> None:
    faults = Faults(503, 429, retry_after="1")
    with TidingsClient(server.url, token=ADMIN_KEY, transport=faults) as client:
        started = time.monotonic()
        result = client.publish(car(tenant))
        waited = time.monotonic() - started
    assert faults.sent == 3 and result["position"] > 0
    assert waited >= 1.9  # two Retry-After: 1 pauses


def test_retries_are_bounded(server: ServerProcess, tenant: str) -> None:
    faults = Faults(503, 503, 503, 503, 503)
    with TidingsClient(server.url, token=ADMIN_KEY, transport=faults, max_retries=2) as client:
        with pytest.raises(Unavailable) as caught:
            client.publish(car(tenant))
        assert faults.sent == 3
        assert caught.value.status == 503 and caught.value.retryable
        faults.faults = [429]
        with pytest.raises(RateLimited):
            client.history(tenant_id=tenant)  # reads are never retried


def test_publish_batch(client: TidingsClient, tenant: str) -> None:
    events = [car(tenant, f"car-{i}") for i in range(3)]
    results = client.publish_batch(events)
    positions = [r["position"] for r in results]
    assert positions == sorted(positions) and len(set(positions)) == 3
    assert all(r["id"].startswith("evt_") for r in results)
    assert "id" not in events[0]  # the caller's dicts are not modified
    named = [{**e, "id": r["id"]} for e, r in zip(events, results, strict=True)]
    assert client.publish_batch(named) == results  # the same batch again: no new events


def test_errors_become_exceptions(
    server: ServerProcess, client: TidingsClient, tenant: str
) -> None:
    with pytest.raises(InvalidInput) as caught:
        client.publish({"type": "no.such.type", "tenantId": tenant})
    assert caught.value.field == "/type" and caught.value.status == 422
    assert "no.such.type" in caught.value.detail
    with pytest.raises(PayloadTooLarge):
        client.publish(car(tenant, data={"blob": "x" * 70_000}))
    with pytest.raises(InvalidInput) as caught:
        client.history(tenant_id=tenant, limit=10_000)
    assert caught.value.field == "limit"
    with pytest.raises(NotFound):
        client.put_user(unique("nope"), "u1", "member")
    with pytest.raises(TypeError):
        client.history(entityid="x")
    with TidingsClient(server.url, token="not-a-token") as anonymous, pytest.raises(Unauthorized):
        anonymous.publish(car(tenant))
    stranger = TidingsClient(server.url, token=token_for(tenant, "nobody"))
    with stranger, pytest.raises(Forbidden):
        stranger.stream_ticket()
    with TidingsClient(DEAD_URL, max_retries=0) as dead, pytest.raises(Unavailable) as down:
        dead.publish(car(tenant))
    assert DEAD_URL in str(down.value)


def test_admin_helpers(server: ServerProcess, client: TidingsClient) -> None:
    tenant_id = unique("ten")
    assert client.put_tenant(tenant_id, "Acme AMO")["id"] == tenant_id
    role = unique("role")
    assert client.put_role(role, ["qms.read"], tenant_id=tenant_id)["permissions"] == ["qms.read"]
    user = client.put_user(tenant_id, "alice", role, grant=["tasks.read"])
    assert user["systemRole"] == role
    key = client.create_api_key(["publish"], tenant_id=tenant_id)
    assert key["key"].startswith("tdk_")
    with TidingsClient(server.url, token=key["key"]) as publisher:
        result = publisher.publish({"type": "qms.car.updated", "entityId": "c1"})  # tenant from key
    with TidingsClient(server.url, token=token_for(tenant_id, "alice")) as alice:
        page = alice.history()
        assert [e["id"] for e in page["items"]] == [result["id"]]
        assert alice.stream_ticket().startswith("tkt_")
    with TidingsClient(server.url, token=key["key"]) as publisher, pytest.raises(Forbidden):
        publisher.put_tenant(tenant_id, "renamed")


# -- async client ------------------------------------------------------------------


async def test_async_client(server: ServerProcess, tenant: str, reader: str) -> None:
    faults = AsyncFaults("lost", 503)
    async with AsyncTidingsClient(
        server.url, token=ADMIN_KEY, transport=faults, backoff=0.01
    ) as client:
        event = car(tenant)
        result = await client.publish(event, idempotency_key=unique("key"))
        assert faults.sent == 3
        page = await client.history(tenant_id=tenant, entity_id=event["entityId"])
        assert [e["id"] for e in page["items"]] == [result["id"]]
        batch = await client.publish_batch([car(tenant), car(tenant)])
        assert batch[1]["position"] > batch[0]["position"] > result["position"]
        with pytest.raises(InvalidInput) as caught:
            await client.publish({"type": "qms.car.updated", "tenantId": tenant, "action": "?"})
        assert caught.value.field == "/action"
    async with AsyncTidingsClient(server.url, token=reader) as user:
        assert (await user.stream_ticket()).startswith("tkt_")
        with pytest.raises(Forbidden):
            await user.publish(car(tenant))
    async with AsyncTidingsClient(DEAD_URL, max_retries=1, backoff=0.01) as dead:
        with pytest.raises(Unavailable):
            await dead.publish(car(tenant))


# -- subscriber ----------------------------------------------------------------------


async def next_event(subscriber: Subscriber, timeout: float = 10.0) -> dict[str, Any]:
    return await asyncio.wait_for(anext(subscriber), timeout)


async def test_subscriber_receives_events_in_order(
    server: ServerProcess, tenant: str, reader: str
) -> None:
    async with (
        AsyncTidingsClient(server.url, token=ADMIN_KEY) as client,
        Subscriber(server.url, token=reader, control=True) as subscriber,
    ):
        connected = await next_event(subscriber)
        assert connected["type"] == "connected" and is_control(connected)
        assert subscriber.connected
        sent = [await client.publish(car(tenant)) for _ in range(3)]
        got = [await next_event(subscriber) for _ in sent]
    assert [e["id"] for e in got] == [s["id"] for s in sent]
    assert subscriber.last_event_id == str(sent[-1]["position"])


async def test_subscriber_types_filter(server: ServerProcess, tenant: str, reader: str) -> None:
    task = {
        "type": "tasks.assignment.created",
        "tenantId": tenant,
        "entityId": "t1",
        "audiences": ["permission:qms.read"],  # visible to the reader: only the filter decides
    }
    async with (
        AsyncTidingsClient(server.url, token=ADMIN_KEY) as client,
        Subscriber(server.url, token=reader, types=["tasks.*"], control=True) as subscriber,
    ):
        await next_event(subscriber)  # connected
        await client.publish(car(tenant))
        published = await client.publish(task)
        event = await next_event(subscriber)
    assert event["id"] == published["id"]


async def test_subscriber_resumes_without_gap_or_duplicate(
    server: ServerProcess, tenant: str, reader: str
) -> None:
    async with AsyncTidingsClient(server.url, token=ADMIN_KEY) as client:
        start = await client.publish(car(tenant, "car-0"))
        first = [await client.publish(car(tenant, f"car-{i}")) for i in range(1, 5)]
        async with Subscriber(server.url, token=reader, last_event_id=start["position"]) as sub:
            seen = [await next_event(sub) for _ in range(2)]
            resume_at = sub.last_event_id
        later = [await client.publish(car(tenant, f"car-{i}")) for i in range(5, 7)]
        async with Subscriber(server.url, token=reader, last_event_id=resume_at) as sub:
            seen += [await next_event(sub) for _ in range(4)]
    assert [e["id"] for e in seen] == [r["id"] for r in first + later]


async def test_subscriber_surfaces_a_reset(server: ServerProcess, tenant: str, reader: str) -> None:
    async with (
        AsyncTidingsClient(server.url, token=ADMIN_KEY) as client,
        Subscriber(server.url, token=reader, last_event_id=10**12) as subscriber,
    ):
        reset = await next_event(subscriber)  # a position this log never reached
        assert reset["type"] == "reset" and reset["reason"] == "unknown_position"
        assert is_control(reset)
        assert subscriber.last_event_id is not None
        assert int(subscriber.last_event_id) < 10**12  # moved to where the stream goes on
        result = await client.publish(car(tenant))
        assert (await next_event(subscriber))["id"] == result["id"]


async def test_subscriber_rides_through_a_server_restart(fresh_server: ServerProcess) -> None:
    admin = Admin(fresh_server.url)
    tenant_id = admin.tenant()
    token = admin.user(tenant_id, "reader", grant=["qms.read"])
    admin.close()
    assert fresh_server.log_path is not None
    log_path = fresh_server.log_path
    async with AsyncTidingsClient(fresh_server.url, token=ADMIN_KEY, max_retries=10) as client:
        before = await client.publish(car(tenant_id, "before"))
        async with Subscriber(
            fresh_server.url,
            token=token,
            last_event_id=before["position"],
            min_backoff=0.2,
            max_backoff=1.0,
        ) as sub:
            await client.publish(car(tenant_id, "first"))
            got = [await next_event(sub)]
            await asyncio.to_thread(fresh_server.stop)  # SIGTERM: streams are told to reconnect
            await asyncio.to_thread(fresh_server.start, log_path)
            after = [await client.publish(car(tenant_id, f"after-{i}")) for i in range(3)]
            got += [await next_event(sub, 30) for _ in after]
            with pytest.raises(TimeoutError):
                await next_event(sub, 1.0)  # nothing repeated
    assert [e["entityId"] for e in got] == ["first", "after-0", "after-1", "after-2"]


async def test_expired_token_is_replaced_from_a_callable(
    server: ServerProcess, admin: Admin, tenant: str
) -> None:
    user = unique("u")
    admin.user(tenant, user, grant=["qms.read"])
    minted: list[str] = []

    def fresh_token() -> str:
        minted.append(token_for(tenant, user, ttl_s=60 if minted else 2))  # the first one expires
        return minted[-1]

    async with (
        AsyncTidingsClient(server.url, token=ADMIN_KEY) as client,
        Subscriber(server.url, token=fresh_token, control=True) as subscriber,
    ):
        assert (await next_event(subscriber))["type"] == "connected"
        expired = await next_event(subscriber, 10)
        assert expired["type"] == "reconnect" and expired["reason"] == "token_expired"
        assert (await next_event(subscriber))["type"] == "connected"
        result = await client.publish(car(tenant))
        assert (await next_event(subscriber))["id"] == result["id"]
    assert len(minted) == 2


async def test_subscriber_stops_when_the_user_is_deleted(
    server: ServerProcess, admin: Admin, tenant: str
) -> None:
    user = unique("u")
    token = admin.user(tenant, user, grant=["qms.read"])
    async with Subscriber(server.url, token=token, control=True) as subscriber:
        assert (await next_event(subscriber))["type"] == "connected"
        admin.http.delete(f"/api/admin/tenants/{tenant}/users/{user}").raise_for_status()
        closed = await next_event(subscriber)
        assert closed["type"] == "closed" and closed["reason"] == "user_deleted"
        with pytest.raises(StopAsyncIteration):
            await next_event(subscriber)
    assert subscriber.closed_reason == "user_deleted"
    async with Subscriber(server.url, token=token) as again:
        assert [e async for e in again] == []  # 204: the server says stay away
    assert again.closed_reason == "closed"


async def test_subscriber_raises_on_refused_credentials(server: ServerProcess) -> None:
    async with Subscriber(server.url, token="forged") as subscriber:
        with pytest.raises(Unauthorized):
            await next_event(subscriber)
    async with Subscriber(DEAD_URL, max_retries=1, min_backoff=0.01) as subscriber:
        with pytest.raises(Unavailable):
            await next_event(subscriber)


# -- command line ----------------------------------------------------------------------


def tidings(
    *args: str, token: str, url: str, timeout: float = 30
) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "TIDINGS_URL": url, "TIDINGS_TOKEN": token, "NO_COLOR": "1"}
    return subprocess.run(
        [sys.executable, "-m", "tidings", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def test_cli_publish_and_tail_count(server: ServerProcess, tenant: str, reader: str) -> None:
    data = json.dumps({"status": "OPEN"})
    published = tidings(
        "publish", "qms.car.updated", "--tenant", tenant, "--entity-id", "car-cli",
        "--data", data, token=ADMIN_KEY, url=server.url,
    )  # fmt: skip
    assert published.returncode == 0, published.stderr
    result = json.loads(published.stdout)
    after = str(result["position"] - 1)
    raw = tidings(
        "tail", "--count", "1", "--json", "--last-event-id", after, token=reader, url=server.url
    )
    assert raw.returncode == 0, raw.stderr
    (line,) = raw.stdout.splitlines()
    event = json.loads(line)
    assert event["id"] == result["id"] and event["data"] == {"status": "OPEN"}
    pretty = tidings("tail", "--count", "1", "--last-event-id", after, token=reader, url=server.url)
    assert pretty.returncode == 0, pretty.stderr
    assert f"#{result['position']}" in pretty.stdout
    assert "qms.car.updated" in pretty.stdout and "car:car-cli" in pretty.stdout
    assert "connected" in pretty.stderr


def test_cli_tail_follows_live_events(server: ServerProcess, tenant: str, reader: str) -> None:
    env = {**os.environ, "TIDINGS_URL": server.url, "TIDINGS_TOKEN": reader, "NO_COLOR": "1"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "tidings", "tail", "--count", "1", "--json"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    watchdog = threading.Timer(30, proc.kill)
    watchdog.start()
    try:
        assert proc.stderr is not None
        status = proc.stderr.readline()
        assert status.startswith("connected"), status + proc.stderr.read()
        with TidingsClient(server.url, token=ADMIN_KEY) as client:
            result = client.publish(car(tenant))
        out, err = proc.communicate(timeout=20)
    finally:
        watchdog.cancel()
        proc.kill()
        proc.wait()
    assert proc.returncode == 0, err
    assert json.loads(out)["id"] == result["id"]


def test_cli_errors_are_one_line(server: ServerProcess, tenant: str) -> None:
    refused = tidings(
        "publish", "no.such.type", "--tenant", tenant, token=ADMIN_KEY, url=server.url
    )
    assert refused.returncode == 1
    assert refused.stderr.strip().splitlines() == [
        "tidings: unknown event type 'no.such.type': not in the catalog (field /type)"
    ]
    forged = tidings("tail", "--count", "1", token="forged", url=server.url)
    assert forged.returncode == 1
    assert len(forged.stderr.strip().splitlines()) == 1 and "token" in forged.stderr


def test_live_page_and_static_files_are_served(server: ServerProcess) -> None:
    page = httpx.get(f"{server.url}/live")
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    assert "script-src 'self'" in page.headers["content-security-policy"]
    assert "/static/tidings.js" in page.text
    script = httpx.get(f"{server.url}/static/tidings.js")
    assert script.status_code == 200 and "javascript" in script.headers["content-type"]
    assert "qms-change-requests" in script.text
    assert httpx.get(f"{server.url}/static/nope.js").status_code == 404
