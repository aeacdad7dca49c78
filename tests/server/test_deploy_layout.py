"""compose.yaml's layout without containers: PostgreSQL, ``tidings
migrate`` once, two ``tidings serve`` processes (no jobs, no migration at
start), one ``tidings worker``, and Debian's nginx running
``deploy/nginx/tidings.conf`` itself, only its upstream addresses and
listen port changed (the image cannot be built here: no registry)."""

from __future__ import annotations

import asyncio
import os
import pwd
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
import websockets

from pg import PostgresServer
from support import ADMIN_KEY, Admin, ServerProcess, bearer, free_port, need, sse, unique

pytestmark = [pytest.mark.slow, pytest.mark.postgres]
ROOT = Path(__file__).resolve().parents[2]
NGINX = Path("/usr/sbin/nginx")
SHIPPED_CONF = ROOT / "deploy" / "nginx" / "tidings.conf"
# What compose.yaml sets on the two servers (tests/cli/test_compose_file.py pins it there).
SERVER_ENV = {"TIDINGS_RUN_JOBS": "false", "TIDINGS_AUTO_MIGRATE": "false", "TIDINGS_POLL_S": "1"}
STARTUP_S = 60.0  # a loaded two-core machine: not a failure of ours


def nginx_conf(tmp: Path, port: int, upstreams: dict[str, int]) -> str:
    """A whole nginx.conf around the shipped file: the file itself with
    only the upstream addresses and the listen port replaced, inside an
    ``http`` block whose pid, logs and temp paths are in ``tmp``."""
    site = SHIPPED_CONF.read_text()
    for name, upstream_port in upstreams.items():
        site = replace_once(site, f"server {name}:8000 ", f"server 127.0.0.1:{upstream_port} ")
    site = replace_once(site, "listen 8080;", f"listen 127.0.0.1:{port};")
    temp = "\n".join(
        f"    {kind}_temp_path {tmp / kind};"
        for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    user = f"user {pwd.getpwuid(os.getuid()).pw_name};" if os.getuid() == 0 else ""
    return (
        f"{user}\ndaemon off;\nworker_processes 1;\npid {tmp / 'nginx.pid'};\n"
        "error_log stderr warn;\nevents { worker_connections 256; }\n"
        f"http {{\n    access_log off;\n{temp}\n{site}}}\n"
    )


def replace_once(text: str, old: str, new: str) -> str:
    if text.count(old) != 1:
        raise AssertionError(f"{old!r} is not in deploy/nginx/tidings.conf exactly once")
    return text.replace(old, new)


@dataclass
class Layout:
    servers: dict[str, ServerProcess]
    nginx_url: str
    worker_id: str  # what ``tidings worker`` printed: its attempts carry it


def start_worker(database_url: str, log_path: Path) -> tuple[subprocess.Popen[bytes], str]:
    """``tidings worker`` and its id (no HTTP port: ready once it says
    ``worker <id> running``)."""
    env = {**os.environ, "TIDINGS_DATABASE_URL": database_url, "TIDINGS_LOG_LEVEL": "warning"}
    env |= {"TIDINGS_AUTO_MIGRATE": "false", "TIDINGS_JOB_POLL_S": "0.2"}
    log = open(log_path, "ab")  # noqa: SIM115 - closed with the process
    proc = subprocess.Popen(
        [sys.executable, "-m", "tidings", "worker"], env=env, stdout=log, stderr=log
    )
    deadline = time.monotonic() + STARTUP_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"worker exited:\n{log_path.read_text()[-3000:]}")
        started = re.search(r"^worker (\S+) running$", log_path.read_text(), re.M)
        if started:
            return proc, started.group(1)
        time.sleep(0.1)
    proc.kill()
    raise RuntimeError(f"worker did not start:\n{log_path.read_text()[-3000:]}")


def start_nginx(tmp: Path, upstreams: dict[str, int]) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    (tmp / "nginx.conf").write_text(nginx_conf(tmp, port, upstreams))
    log_path = tmp / "nginx.log"
    proc = subprocess.Popen(
        [str(NGINX), "-e", "stderr", "-p", str(tmp), "-c", str(tmp / "nginx.conf")],
        stdout=log_path.open("ab"),
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + STARTUP_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"nginx exited:\n{log_path.read_text()[-3000:]}")
        try:
            if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                return proc, url
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    proc.kill()
    raise RuntimeError(f"nginx did not answer:\n{log_path.read_text()[-3000:]}")


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


@pytest.fixture(scope="module")
def layout(postgres: PostgresServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Layout]:
    need(NGINX.exists(), "nginx (Debian package nginx)")
    tmp = tmp_path_factory.mktemp("layout")
    database_url = postgres.url(postgres.create_database())
    migrated = subprocess.run(
        [sys.executable, "-m", "tidings", "migrate", "--database", database_url],
        capture_output=True,
        text=True,
        timeout=STARTUP_S,
    )
    assert migrated.returncode == 0, migrated.stderr
    assert "schema at revision" in migrated.stdout
    servers = {name: ServerProcess(database_url, env=SERVER_ENV) for name in ("a", "b")}
    processes: list[subprocess.Popen[bytes]] = []
    try:
        for name, server in servers.items():
            server.start(tmp / f"server-{name}.log", timeout=STARTUP_S)
        worker, worker_id = start_worker(database_url, tmp / "worker.log")
        processes.append(worker)
        upstreams = {f"tidings-{name}": s.port for name, s in servers.items()}
        nginx, url = start_nginx(tmp, upstreams)
        processes.append(nginx)
        yield Layout(servers, url, worker_id)
    finally:
        for proc in processes:
            stop(proc)
        for server in servers.values():
            server.stop()


def connections(server: ServerProcess) -> int:
    return int(httpx.get(f"{server.url}/readyz", timeout=5).json()["connections"])


def holder_of_one_stream(layout: Layout) -> tuple[ServerProcess, ServerProcess]:
    """(the server nginx sent the only open stream to, the other one)."""
    a, b = layout.servers["a"], layout.servers["b"]
    counts = (connections(a), connections(b))
    assert sorted(counts) == [0, 1], counts
    return (a, b) if counts[0] == 1 else (b, a)


def car(tenant: str, user: str, n: int) -> dict[str, Any]:
    return {
        "type": "qms.car.updated",
        "tenantId": tenant,
        "audiences": [f"user:{user}"],
        "entityId": f"car-{n}",
        "data": {"n": n},
    }


def publish_to(url: str, event: dict[str, Any]) -> int:
    answer = httpx.post(f"{url}/api/events", json=event, headers=bearer(ADMIN_KEY), timeout=10)
    assert answer.status_code == 202, answer.text
    return int(answer.json()["position"])


@pytest.fixture(scope="module")
def org(layout: Layout) -> Iterator[dict[str, str]]:
    admin = Admin(layout.nginx_url)  # the admin API through nginx too
    try:
        tenant = admin.tenant()
        yield {"tenant": tenant, "user": "ann", "token": admin.user(tenant, "ann")}
    finally:
        admin.close()


async def test_publish_on_one_server_receive_through_nginx_from_the_other_and_resume_after_kill(
    layout: Layout, org: dict[str, str]
) -> None:
    """Live through nginx (buffering off: the event arrives while the stream
    is open), then the subscriber's server is killed and the stream resumes
    through nginx on the other one, with nothing lost or repeated."""
    tenant, user, token = org["tenant"], org["user"], org["token"]
    async with sse(layout.nginx_url, token) as stream:
        holder, other = holder_of_one_stream(layout)
        first = publish_to(other.url, car(tenant, user, 1))  # on the other process
        second = publish_to(layout.nginx_url, car(tenant, user, 2))  # through nginx
        got = await stream.events(2, timeout=10)
        assert [e["position"] for e in got] == [first, second]
        assert not stream.response.is_closed  # delivered live, not at the stream's end
        holder.kill()  # kill -9: no goodbye to the stream
        with pytest.raises(EOFError):
            await stream.events(1, timeout=15)
    missed = [publish_to(other.url, car(tenant, user, n)) for n in (3, 4, 5)]
    resume = {"Last-Event-ID": str(second)}
    async with sse(layout.nginx_url, token, headers=resume) as stream:
        assert connections(other) == 1  # nginx moved it to the living process
        replayed = await stream.events(3, timeout=10)
        assert [e["position"] for e in replayed] == missed
        assert [e["data"]["n"] for e in replayed] == [3, 4, 5]
        live = publish_to(layout.nginx_url, car(tenant, user, 6))
        after = await stream.events(1, timeout=10)
        assert [e["position"] for e in after] == [live]
        assert await stream.nothing_for(0.5)  # no duplicate follows


def recorded_attempts(admin: Admin, rule_id: str, timeout: float = 15.0) -> list[dict[str, Any]]:
    """The attempts of the rule's one job, once the worker has recorded one
    (attempts are written in batches, after the job's effect)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        jobs = admin.http.get("/api/admin/jobs", params={"ruleId": rule_id}).json()["items"]
        if jobs and jobs[0]["attempts"]:
            assert len(jobs) == 1, jobs
            return list(jobs[0]["attempts"])
        time.sleep(0.2)
    raise AssertionError(f"no attempt recorded for the job of {rule_id}")


async def test_a_websocket_through_nginx_and_jobs_run_by_the_worker(
    layout: Layout, org: dict[str, str]
) -> None:
    """The WebSocket upgrade passes nginx; a rule's job is run by the
    worker process (the servers run none), its event reaches the socket."""
    tenant, user = org["tenant"], org["user"]
    admin = Admin(layout.nginx_url)
    try:
        rule = {
            "name": unique("follow"),
            "tenantId": tenant,
            "trigger": {"type": "qms.car.updated"},
            "action": {
                "type": "publish_event",
                "config": {"type": "qms.document.updated", "audiences": [f"user:{user}"]},
            },
        }
        created = admin.http.post("/api/admin/rules", json=rule)
        assert created.status_code == 201, created.text
        ws_url = layout.nginx_url.replace("http://", "ws://") + "/ws/events"
        async with websockets.connect(ws_url, additional_headers=bearer(org["token"])) as ws:
            hello = orjson.loads(await asyncio.wait_for(ws.recv(), 10))
            assert hello["type"] == "connected"
            sent = publish_to(layout.nginx_url, car(tenant, user, 7))
            message = orjson.loads(await asyncio.wait_for(ws.recv(), 10))
            assert (message["position"], message["data"]) == (sent, {"n": 7})
            followed = orjson.loads(await asyncio.wait_for(ws.recv(), 30))
            assert followed["type"] == "qms.document.updated"
            assert followed["metadata"]["ruleId"] == created.json()["id"]
        attempts = recorded_attempts(admin, created.json()["id"])
        assert [a["outcome"] for a in attempts] == ["succeeded"]
        assert attempts[0]["worker"] == layout.worker_id  # not a server: they run no jobs
    finally:
        admin.close()
