"""Starting, provisioning and stopping the servers under test.

Each scenario gets a fresh server process (and, for Tidings, a fresh SQLite
database), pinned to core 0 with ``taskset`` when the machine has it and at
least two cores. With ``--database``, :func:`running_cluster` starts one or
more Tidings processes on one PostgreSQL database, each on its own core (or
unpinned). Only loopback is used.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import httpx

from tidings.services.auth import mint_token

HOST = "127.0.0.1"
ADMIN_KEY = "bench-admin-key-0123456789abcdef0123456789"
JWT_SECRET = "bench-jwt-secret-0123456789abcdef0123456789"
TENANT = "bench"
ROLE = "bench-reader"
EVENT_TYPE = "qms.car.updated"
SERVER_CORE = 0
CLIENT_CORE = 1
# Set to a directory to record each server with py-spy (collapsed stacks,
# one file per scenario and system; needs ``pip install py-spy``).
PROFILE_ENV = "TIDINGS_BENCH_PROFILE"


def can_pin() -> bool:
    return shutil.which("taskset") is not None and (os.cpu_count() or 1) >= 2


def pinned(command: list[str], core: int) -> list[str]:
    """``command`` prefixed with ``taskset -c <core>`` where that works."""
    return ["taskset", "-c", str(core), *command] if can_pin() else command


def all_cores() -> set[int]:
    return set(range(os.cpu_count() or 1))


def placed(command: list[str], core: int | None) -> list[str]:
    """``command`` on ``core``, or on every core for None (children inherit
    the runner's affinity, and the runner is pinned to the client core)."""
    if not can_pin():
        return command
    cpus = str(core) if core is not None else ",".join(map(str, sorted(all_cores())))
    return ["taskset", "-c", cpus, *command]


@contextlib.contextmanager
def unpinned() -> Iterator[None]:
    """Processes started in this block may run on every core."""
    if not hasattr(os, "sched_setaffinity"):
        yield
        return
    before = os.sched_getaffinity(0)
    with contextlib.suppress(OSError):
        os.sched_setaffinity(0, all_cores())
    try:
        yield
    finally:
        with contextlib.suppress(OSError):
            os.sched_setaffinity(0, before)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


@dataclass
class Target:
    """What the client needs to know about a running server (JSON-able)."""

    system: str  # tidings | baseline
    host: str
    port: int
    pid: int
    stream_path: str
    stream_auth: list[str] = field(default_factory=list)  # Authorization values, round-robin
    publish_path: str = ""
    batch_path: str = ""
    publish_auth: str | None = None
    tenant_id: str | None = None
    # Several Tidings processes on one database: subscribers are spread over
    # ``stream_ports`` (empty: ``port`` alone), CPU is summed over
    # ``server_pids`` (empty: ``pid``); publishes go to ``port``.
    stream_ports: list[int] = field(default_factory=list)
    server_pids: list[int] = field(default_factory=list)
    database_pid: int | None = None  # PostgreSQL's postmaster, when it runs here

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


class Server:
    """A server subprocess; ``stop`` ends it (SIGTERM, then SIGKILL)."""

    def __init__(
        self,
        system: str,
        command: list[str],
        env: dict[str, str],
        log: Path,
        core: int | None = SERVER_CORE,
    ) -> None:
        self.system = system
        self.port = int(env["BENCH_PORT"])
        self.url = f"http://{HOST}:{self.port}"
        self.log_path = log
        self.profiler: subprocess.Popen[bytes] | None = None
        with open(log, "ab") as out:
            self.proc = subprocess.Popen(
                placed(command, core),
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )

    @property
    def pid(self) -> int:
        return self.proc.pid  # taskset execs the command: same pid

    def wait_ready(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.system} server exited early:\n{self.log_tail()}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{self.url}/readyz", timeout=1).status_code == 200:
                    return
            time.sleep(0.1)
        raise RuntimeError(f"{self.system} server did not become ready:\n{self.log_tail()}")

    def profile(self, name: str) -> None:
        """Attach py-spy when ``TIDINGS_BENCH_PROFILE`` names a directory."""
        folder = os.environ.get(PROFILE_ENV)
        spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
        if not folder or not Path(spy).exists():
            return
        Path(folder).mkdir(parents=True, exist_ok=True)
        output = Path(folder) / f"{name}.txt"
        command = [spy, "record", "--pid", str(self.pid), "--nonblocking", "--rate", "200"]
        command += ["--format", "raw", "-o", str(output)]
        self.profiler = subprocess.Popen(
            pinned(command, CLIENT_CORE), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )

    def log_tail(self, chars: int = 3000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except OSError:
            return ""

    def stop(self) -> None:
        if self.profiler is not None and self.profiler.poll() is None:
            self.profiler.send_signal(signal.SIGINT)  # py-spy writes its file on SIGINT
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.profiler.wait(20)
        if self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(8)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)


def ready(server: Server) -> Server:
    """``server`` once it answers ``/readyz``; stopped if it never does."""
    try:
        server.wait_ready()
    except BaseException:
        server.stop()
        raise
    return server


def start_tidings(
    workdir: Path, name: str, *, database_url: str | None = None, core: int | None = SERVER_CORE
) -> Server:
    """``tidings serve`` on a fresh SQLite file, or on ``database_url``."""
    port = free_port()
    env = {
        **os.environ,
        "BENCH_PORT": str(port),
        "TIDINGS_DATABASE_URL": database_url or f"sqlite:///{workdir / f'{name}.db'}",
        "TIDINGS_ADMIN_KEY": ADMIN_KEY,
        "TIDINGS_JWT_SECRET": JWT_SECRET,
        "TIDINGS_HOST": HOST,
        "TIDINGS_PORT": str(port),
        "TIDINGS_LOG_LEVEL": "warning",
        "TIDINGS_MAX_CONNECTIONS_PER_USER": "100000",
        "TIDINGS_MAX_CONNECTIONS_PER_TENANT": "100000",
    }
    command = [sys.executable, "-m", "tidings", "serve"]
    return ready(Server("tidings", command, env, workdir / f"{name}.log", core))


def start_baseline(workdir: Path, name: str) -> Server:
    port = free_port()
    env = {**os.environ, "BENCH_PORT": str(port)}
    command = [
        sys.executable,
        "-m",
        "tidings.bench.baseline_app",
        "--host",
        HOST,
        "--port",
        str(port),
    ]
    return ready(Server("baseline", command, env, workdir / f"{name}.log"))


def provision_tidings(server: Server, users: int) -> Target:
    """A tenant, a role that may read qms events, ``users`` users holding it
    and a tenant-bound publish key - all through the admin API."""
    admin = {"Authorization": f"Bearer {ADMIN_KEY}"}
    with httpx.Client(base_url=server.url, headers=admin, timeout=30) as http:
        http.put(f"/api/admin/tenants/{TENANT}", json={"name": "Benchmark"}).raise_for_status()
        http.put(f"/api/admin/roles/{ROLE}", json={"permissions": ["qms.read"]}).raise_for_status()
        tokens = []
        for i in range(users):
            user_id = f"user{i}"
            http.put(
                f"/api/admin/tenants/{TENANT}/users/{user_id}", json={"systemRole": ROLE}
            ).raise_for_status()
            token = mint_token(JWT_SECRET, tenant_id=TENANT, user_id=user_id, ttl_s=3600)
            tokens.append(f"Bearer {token}")
        response = http.post(
            "/api/admin/api-keys", json={"scopes": ["publish"], "tenantId": TENANT, "name": "bench"}
        )
        response.raise_for_status()
        key = response.json()["key"]
    return Target(
        system="tidings",
        host=HOST,
        port=server.port,
        pid=server.pid,
        stream_path="/api/events",
        stream_auth=tokens,
        publish_path="/api/events",
        batch_path="/api/events/batch",
        publish_auth=f"Bearer {key}",
        tenant_id=TENANT,
    )


def baseline_target(server: Server) -> Target:
    return Target(
        system="baseline",
        host=HOST,
        port=server.port,
        pid=server.pid,
        stream_path="/events",
        publish_path="/publish",
        batch_path="/publish/batch",
        tenant_id=TENANT,
    )


@contextlib.contextmanager
def stopping(started: list[Server]) -> Iterator[None]:
    """Stop every server in ``started`` at the end; print their logs when
    the block fails."""
    try:
        yield
    except BaseException:
        for server in started:
            sys.stderr.write(
                f"--- {server.system} server log ({server.log_path}) ---\n{server.log_tail()}\n"
            )
        raise
    finally:
        for server in started:
            server.stop()


@contextlib.contextmanager
def running(system: str, workdir: Path, name: str, *, users: int) -> Iterator[Target]:
    """A fresh, provisioned server of ``system`` for one scenario."""
    start = start_tidings if system == "tidings" else start_baseline
    server = start(workdir, name)
    server.profile(name)
    with stopping([server]):
        if system == "tidings":
            yield provision_tidings(server, users)
        else:
            yield baseline_target(server)


@contextlib.contextmanager
def running_cluster(
    workdir: Path,
    name: str,
    *,
    database_url: str,
    cores: Sequence[int | None],
    users: int,
    database_pid: int | None = None,
) -> Iterator[Target]:
    """``len(cores)`` Tidings processes sharing ``database_url`` (process
    ``i`` pinned to ``cores[i]``, or unpinned for None), provisioned through
    the first. Started one after the other: the first one migrates."""
    started: list[Server] = []
    with stopping(started):
        for number, core in enumerate(cores, 1):
            server = start_tidings(
                workdir, f"{name}-{number}", database_url=database_url, core=core
            )
            started.append(server)
            server.profile(f"{name}-{number}")
        target = provision_tidings(started[0], users)
        target.stream_ports = [server.port for server in started]
        target.server_pids = [server.pid for server in started]
        target.database_pid = database_pid
        yield target
