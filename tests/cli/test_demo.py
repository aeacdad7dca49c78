"""`tidings demo` as a user runs it: the portal answers with the printed
accounts, it prints how to watch, and the printed token really streams the
producer's events."""

from __future__ import annotations

import asyncio
import os
import re
import shlex
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from admin_http import AdminUI
from support import free_port, sse


@pytest.mark.slow
def test_the_demo_prints_working_instructions(tmp_path: Path) -> None:
    port = free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tidings",
            "demo",
            "--port",
            str(port),
            "--duration",
            "8",
            "--rate",
            "20",
            "--database",
            f"sqlite:///{tmp_path / 'demo.db'}",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    assert proc.stdout is not None
    output = ""
    deadline = time.monotonic() + 60
    while "admin key" not in output and time.monotonic() < deadline:
        output += proc.stdout.readline()
    token = re.search(r"Bearer (\S+)' ", output)
    assert token, output
    assert f"{sys.executable} -m tidings tail --url" in output  # started as python -m tidings
    assert "/live#token=" in output

    async def watch() -> list[dict]:
        async with sse(f"http://127.0.0.1:{port}", token.group(1)) as stream:
            return await stream.events(15, timeout=5)

    events = asyncio.run(watch())
    admin_key = re.search(r"admin key: (\S+)", output)
    assert admin_key, output
    assert f"http://127.0.0.1:{port}/admin" in output
    assert f"http://127.0.0.1:{port}/login   password password123" in output
    portal = f"http://127.0.0.1:{port}"
    assert httpx.get(f"{portal}/login").status_code == 200  # the portal's page
    signed_in = httpx.post(
        f"{portal}/api/auth/login",
        json={"email": "landlord@example.com", "password": "password123"},
    )
    assert signed_in.status_code == 200, signed_in.text
    board = httpx.get(
        f"{portal}/api/tickets",
        headers={"Authorization": f"Bearer {signed_in.json()['accessToken']}"},
    )
    assert board.status_code == 200 and board.json()  # the seeded history
    assert re.search(r"TIDINGS_DEMO_PAYMENT_SECRET\): whsec_\S+", output)
    manager = AdminUI(f"http://127.0.0.1:{port}", admin_key.group(1))
    assert manager.get("/admin").status_code == 200  # the printed key logs in
    manager.close()
    deadline = time.monotonic() + 8
    done: list[dict] = []
    while not done and time.monotonic() < deadline:  # the rule pack at work
        done = httpx.get(
            f"http://127.0.0.1:{port}/api/admin/jobs",
            params={"status": "succeeded", "tenantId": "acme"},
            headers={"Authorization": f"Bearer {admin_key.group(1)}"},
        ).json()["items"]
        time.sleep(0.2)
    assert {j["eventType"] for j in done} <= {"course.completed", "certificate.issued"}
    assert done
    assert all(e["tenantId"] == "acme" for e in events)
    cars = [e for e in events if e["type"].startswith("qms.car")]
    assert cars and all("reporterEmail" in e["metadata"] for e in cars)  # alice may see PII
    assert proc.wait(20) == 0


def test_the_demo_says_when_its_port_is_taken(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        answer = subprocess.run(
            [sys.executable, "-m", "tidings", "demo", "--port", str(port), "--duration", "1"],
            capture_output=True,
            text=True,
            cwd=tmp_path,
            timeout=60,
        )
    assert answer.returncode == 2
    assert answer.stderr.strip() == (
        f"tidings: port {port} is taken (another server?): try tidings demo --port {port + 1}"
    )
    assert not list(tmp_path.iterdir())  # nothing created


def test_printed_commands_run_from_the_shell_that_started_the_demo(tmp_path: Path) -> None:
    """The README's first command runs ``.venv/bin/tidings demo`` without
    activating the venv: the printed ``tail`` command names that script."""
    script = Path(sys.executable).parent / "tidings"
    probe = (
        "import sys; from tidings.cli.demo import tidings_command;"
        f" sys.argv[0] = {str(script)!r}; print(tidings_command())"
    )
    named = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True)
    assert named.stdout.strip() == str(script)
    helped = subprocess.run(
        [*shlex.split(named.stdout), "--help"], capture_output=True, text=True, env={}
    )
    assert helped.returncode == 0 and "tail" in helped.stdout  # runs with an empty PATH
