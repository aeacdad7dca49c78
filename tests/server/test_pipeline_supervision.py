"""No single event and no dying task can stop the pipeline (issue 12,
defect 1): the hub isolates an event it cannot encode or redact (logged,
counted, the rest delivered); every background task of a node is
supervised - killed on purpose, it shows on ``/readyz`` (503 naming it)
and in ``tidings_task_restarts``, is restarted, and publishing and live
delivery work again; SIGTERM still stops the server within its timeout;
``/metrics`` needs the bearer token when ``metrics_token`` is set."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from support import ADMIN_KEY, Admin, ServerProcess, running_server, sse
from tidings.core.audience import UserRecord, Viewer
from tidings.core.envelope import Event
from tidings.core.patterns import TypeFilter
from tidings.hub.hub import Hub
from tidings.hub.stream import QueueStream
from tidings.supervision import Supervisor

TASKS = [
    "appender",
    "feed",
    "hub.heartbeat",
    "worker.claim",
    "worker.flush",
    "rules",
    "tenant catalog",
    "retention",
]
RESTART_S = 2.0


def event(position: int, data: dict[str, Any], **extra: Any) -> Event:
    return Event(
        position=position,
        id=f"evt_{position}",
        tenant_id="t",
        type="qms.document.created",
        entity_type="document",
        entity_id="d1",
        action="CREATED",
        timestamp="2025-11-06T09:00:00.000Z",
        actor=None,
        metadata=extra.get("metadata", {}),
        data=data,
        audiences=("permission:qms.read",),
        schema="payload.QmsDocumentCreated.v1",
    )


def too_deep_to_encode() -> dict[str, Any]:
    value: dict[str, Any] = {}
    for _ in range(300):  # orjson writes at most 254 levels
        value = {"k": value}
    return value


async def test_the_hub_isolates_events_it_cannot_encode() -> None:
    """Deep data behind a redaction variant (orjson refuses it), a value
    no encoder knows (shared frame), alone and in a coalesced batch: each
    failure costs only its own event, once."""
    sensitive = {"metadata.reporterEmail": "qms.pii.read"}
    hub = Hub(sensitive=lambda *_: sensitive, heartbeat_s=60.0, retry_ms=1000)
    viewer = Viewer.for_user(UserRecord("t", "u1", "reader"), {"reader": ["qms.read"]})
    stream = QueueStream(
        viewer,
        TypeFilter.parse(None),
        as_json=True,
        user_key=None,
        max_buffer=1 << 20,
        linger_s=120.0,
    )
    stream.live = True
    hub.attach(stream)
    pii = {"reporterEmail": "r@example.com"}
    hub.dispatch([event(1, too_deep_to_encode(), metadata=pii)])
    batch = [event(2, {"x": object()}), event(3, {"n": 3}), event(4, too_deep_to_encode())]
    hub.dispatch([*batch[:2], event(4, too_deep_to_encode(), metadata=pii)])
    hub.dispatch([event(5, {"n": 5})])
    sent = [frame.json for frame in stream._queue]
    assert len(sent) == 2 and b'"position":3' in sent[0] and b'"position":5' in sent[1]
    assert hub.stats.dispatch_errors == 3 and hub.position == 5


async def test_a_supervised_task_that_dies_is_reported_and_restarted() -> None:
    supervisor = Supervisor(restart_s=0.2)
    runs: list[float] = []

    async def flaky() -> None:
        runs.append(time.monotonic())
        if len(runs) < 3:
            raise RuntimeError("a bug")
        await asyncio.sleep(3600)

    supervisor.spawn("flaky", flaky)
    await asyncio.sleep(0.05)
    assert "RuntimeError" in supervisor.dead()["flaky"]
    await asyncio.sleep(0.8)  # 0.2 s, then 0.4 s (it died again at once)
    assert supervisor.dead() == {} and len(runs) == 3 and supervisor.restarts["flaky"] == 2
    assert runs[2] - runs[1] >= 0.35  # backed off
    await supervisor.stop("flaky")  # stopping is not dying
    await asyncio.sleep(0.3)
    assert supervisor.dead() == {} and supervisor.task("flaky") is None


# -- a real server ---------------------------------------------------------------


@pytest.fixture
def chaos_server(tmp_path: Path) -> Any:
    env = {
        "TIDINGS_PLUGINS": "chaos_plugin",
        "PYTHONPATH": str(Path(__file__).parents[1]),
        "TIDINGS_TASK_RESTART_S": str(RESTART_S),
        "TIDINGS_JOB_POLL_S": "0.2",
        "TIDINGS_METRICS_TOKEN": "metrics-secret",
    }
    with running_server(tmp_path, env=env) as server:
        yield server


def kill(admin: Admin, tenant: str, task: str) -> None:
    response = admin.publish(
        {
            "type": "course.completed",
            "tenantId": tenant,
            "data": {"courseId": task, "userId": "u1", "completedAt": "2026-11-22T10:00:00Z"},
        }
    )
    assert response.status_code == 202, response.text


def wait_ready(url: str, *, dead: str | None, timeout: float = 10.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        response = httpx.get(f"{url}/readyz", timeout=2)
        body = response.json()
        if dead is None and response.status_code == 200:
            return dict(body)
        if dead is not None and response.status_code == 503 and dead in body.get("tasks", {}):
            return dict(body)
        time.sleep(0.05)
    raise AssertionError(f"/readyz never showed {dead or 'ready'}")


async def test_every_task_killed_on_purpose_shows_and_comes_back(
    chaos_server: ServerProcess,
) -> None:
    admin = Admin(chaos_server.url)
    tenant = admin.tenant()
    admin.role("reader", ["qms.read"], tenant_id=tenant)
    token = admin.user(tenant, "reader", "reader")
    rule = {
        "name": "chaos",
        "tenantId": tenant,
        "trigger": {"type": "course.completed"},
        "action": {
            "type": "run_job",
            "config": {"name": "kill_task", "args": {"task": "{{ data.courseId }}"}},
        },
        "retry": {"schedule": [0]},
    }
    assert admin.http.post("/api/admin/rules", json=rule).status_code == 201
    async with sse(chaos_server.url, token) as live:
        for task in TASKS:
            kill(admin, tenant, task)
            down = wait_ready(chaos_server.url, dead=task)
            assert task in down["detail"]
            if task == "appender":  # while it is dead, publishes fail fast: never a hang
                refused = admin.publish({"type": "qms.car.updated", "tenantId": tenant}, timeout=5)
                assert refused.status_code == 503 and refused.headers["Retry-After"]
            wait_ready(chaos_server.url, dead=None)
            sent = admin.publish(
                {"type": "qms.car.updated", "tenantId": tenant, "data": {"t": task}}
            )
            assert sent.status_code == 202, (task, sent.text)
            seen = await live.events(1, timeout=5)
            assert seen[0]["position"] == sent.json()["position"], task
    metrics = httpx.get(
        f"{chaos_server.url}/metrics", headers={"Authorization": "Bearer metrics-secret"}
    )
    assert metrics.status_code == 200
    for task in TASKS:
        assert f'tidings_task_restarts_total{{task="{task}"}} 1.0' in metrics.text
    assert "tidings_dispatch_errors_total 0.0" in metrics.text
    admin.close()


def test_metrics_need_the_token_when_one_is_set(
    chaos_server: ServerProcess, server: ServerProcess
) -> None:
    url = f"{chaos_server.url}/metrics"
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "metrics-secret"}):
        refused = httpx.get(url, headers=headers)
        assert refused.status_code == 401
        assert refused.headers["content-type"] == "application/problem+json"
        assert "tidings_" not in refused.text
    assert httpx.get(url, headers={"Authorization": "Bearer metrics-secret"}).status_code == 200
    assert httpx.get(f"{server.url}/metrics").status_code == 200  # unset: open


def test_sigterm_stops_the_server_within_its_timeout(tmp_path: Path) -> None:
    """With streams open, a deep publish refused and a publish in flight."""
    server = ServerProcess(f"sqlite:///{tmp_path / 'tidings.db'}").start(tmp_path / "server.log")
    admin = Admin(server.url)
    tenant = admin.tenant()
    nested = '{"k":' * 300 + "{}" + "}" * 300
    deep = f'{{"type": "qms.car.updated", "tenantId": "{tenant}", "data": {nested}}}'
    json_type = {"content-type": "application/json"}
    assert admin.http.post("/api/events", content=deep, headers=json_type).status_code == 422
    assert admin.publish({"type": "qms.car.updated", "tenantId": tenant}).status_code == 202

    async def hold_streams() -> None:
        async with sse(server.url, ADMIN_KEY, params={"tenantId": tenant}):
            assert server.proc is not None
            started = time.monotonic()
            server.proc.send_signal(signal.SIGTERM)
            await asyncio.to_thread(server.proc.wait, 15)
            assert time.monotonic() - started < 12

    try:
        asyncio.run(hold_streams())
    except subprocess.TimeoutExpired:
        server.kill()
        raise
    # uvicorn re-raises the signal once its graceful shutdown is done.
    assert server.proc is not None and server.proc.returncode in (0, -signal.SIGTERM)
    assert server.log_path is not None
    assert "did not finish" not in server.log_path.read_text()
    admin.close()
