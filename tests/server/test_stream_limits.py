"""Stream back-pressure over real connections: WebSocket streams are bounded
by unsent bytes like SSE (reset, close code 4008, resume without loss), and
a consumer that stops reading for a long time still reads the reset before
the connection ends (``hub/stream.py`` holds the invariants)."""

from __future__ import annotations

import asyncio
import base64
import os
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
import websockets
from websockets.exceptions import ConnectionClosed

from support import Admin, ServerProcess, bearer, running_server
from tidings.core.sse import SSEParser

EVENT_BYTES = 15_000  # random, so WebSocket compression cannot shrink them: ~20 KB each
SMALL_BUFFER = {"TIDINGS_MAX_BUFFER_BYTES": "65536"}


def provision(url: str) -> tuple[Admin, str, str]:
    admin = Admin(url)
    tenant = admin.tenant()
    admin.role("reader", ["qms.read"], tenant_id=tenant)
    return admin, tenant, admin.user(tenant, "reader", "reader")


def blob() -> str:
    return base64.b64encode(os.urandom(EVENT_BYTES)).decode()


def publish_big(admin: Admin, tenant: str, batches: int) -> None:
    for _ in range(batches):
        batch = [
            {"type": "qms.car.updated", "tenantId": tenant, "data": {"b": blob()}}
            for _ in range(100)
        ]
        admin.http.post("/api/events/batch", json={"events": batch}).raise_for_status()


def rss_mb(server: ServerProcess) -> float:
    assert server.proc is not None
    for line in Path(f"/proc/{server.proc.pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


async def read_until_closed(ws: Any) -> tuple[list[dict[str, Any]], ConnectionClosed]:
    messages: list[dict[str, Any]] = []
    while True:
        try:
            messages.append(orjson.loads(await asyncio.wait_for(ws.recv(), 30)))
        except ConnectionClosed as closed:
            return messages, closed


@pytest.mark.parametrize("clients", [1, 4])
def test_a_websocket_client_that_stops_reading_is_reset_by_bytes(
    tmp_path: Path, clients: int
) -> None:
    """Silent WebSocket clients are closed with the reset message (naming the
    last position sent) and close code 4008 once their unsent bytes pass
    ``max_buffer_bytes``; resuming from what arrived loses nothing."""
    total = 2000
    with running_server(tmp_path, env=SMALL_BUFFER) as server:
        admin, tenant, token = provision(server.url)
        url = server.url.replace("http", "ws") + "/ws/events"

        async def run() -> None:
            sockets = [
                await websockets.connect(url, additional_headers=bearer(token), max_queue=4)
                for _ in range(clients)
            ]
            for ws in sockets:
                assert orjson.loads(await ws.recv())["type"] == "connected"
            before = rss_mb(server)
            publish_big(admin, tenant, total // 100)  # ~40 MB while nobody reads
            after = rss_mb(server)
            print(
                f"\nserver RSS with {clients} silent WebSocket client(s): "
                f"{before:.0f} MB before, {after:.0f} MB after publishing ~40 MB"
            )
            for ws in sockets:
                messages, closed = await read_until_closed(ws)
                resets = [m for m in messages if m["type"] == "reset"]
                assert closed.rcvd is not None and closed.rcvd.code == 4008, closed
                assert closed.rcvd.reason == "slow_consumer"
                assert len(resets) == 1 and resets[0]["reason"] == "slow_consumer"
                assert messages[-1] is resets[0]  # the reset is the last message
                got = [m["position"] for m in messages if m["type"] == "qms.car.updated"]
                assert len(got) < total and got == sorted(got)
                assert int(resets[0]["lastEventId"]) == got[-1]  # the last position sent
                await resume(url, token, got, total)

        asyncio.run(run())
        metrics = httpx.get(f"{server.url}/metrics").text
        assert f"tidings_stream_resets_total {float(clients)}" in metrics
        admin.close()


async def resume(url: str, token: str, got: list[int], total: int) -> None:
    """Resume from the client's own last position: the log fills the gap."""
    query = f"?lastEventId={got[-1]}"
    async with websockets.connect(url + query, additional_headers=bearer(token)) as ws:
        assert orjson.loads(await ws.recv())["type"] == "connected"
        while len(got) < total:
            message = orjson.loads(await asyncio.wait_for(ws.recv(), 30))
            if message["type"] == "qms.car.updated":
                got.append(message["position"])
    assert len(set(got)) == total and got == sorted(got)


async def silent_sse_reader(url: str, token: str, silent_s: float, publish: Any) -> dict[str, Any]:
    """Open SSE, read nothing while ``publish`` runs and ``silent_s`` after,
    then read to the end: the messages seen and how the stream ended."""
    seen: dict[str, Any] = {"events": [], "control": [], "error": None}
    async with httpx.AsyncClient(base_url=url, timeout=httpx.Timeout(30)) as client:
        async with client.stream("GET", "/api/events", headers=bearer(token)) as response:
            publish()
            await asyncio.sleep(silent_s)
            parser = SSEParser()
            try:
                async for text in response.aiter_text():
                    for message in parser.feed(text):
                        body = orjson.loads(message.data) if message.data else {}
                        if body.get("type") == "qms.car.updated":
                            seen["events"].append(body["position"])
                        elif body:
                            seen["control"].append(body)
            except httpx.HTTPError as exc:
                seen["error"] = exc
    return seen


@pytest.mark.parametrize("silent_s", [3.0, 13.0])
def test_a_silent_sse_consumer_still_reads_the_reset_when_it_comes_back(
    tmp_path: Path, silent_s: float
) -> None:
    """Silent longer than the old fixed 10 s abort (and shorter): the client
    reads every byte up to the reset message and a clean end of stream."""
    with running_server(tmp_path, env=SMALL_BUFFER) as server:
        admin, tenant, token = provision(server.url)
        seen = asyncio.run(
            silent_sse_reader(server.url, token, silent_s, lambda: publish_big(admin, tenant, 10))
        )
        assert seen["error"] is None, seen["error"]
        resets = [c for c in seen["control"] if c["type"] == "reset"]
        assert resets and resets[0]["reason"] == "slow_consumer", seen["control"]
        assert seen["control"][-1] is resets[0]
        assert int(resets[0]["lastEventId"]) >= seen["events"][-1]
        assert seen["events"] == sorted(set(seen["events"]))
        admin.close()


def test_a_closed_stream_whose_client_never_reads_is_cut_after_the_linger(
    tmp_path: Path,
) -> None:
    """The other half of the bound: a client that takes nothing for
    ``stream_linger_s`` after the reset was queued is cut, so a dead client
    cannot pin its buffer forever."""
    env = {**SMALL_BUFFER, "TIDINGS_STREAM_LINGER_S": "1"}
    with running_server(tmp_path, env=env) as server:
        admin, tenant, token = provision(server.url)
        seen = asyncio.run(
            silent_sse_reader(server.url, token, 5.0, lambda: publish_big(admin, tenant, 10))
        )
        assert not any(c["type"] == "reset" for c in seen["control"])
        assert seen["error"] is not None  # cut mid-stream: the client resumes from its own id
        admin.close()
