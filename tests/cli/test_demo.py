"""`tidings demo` as a user runs it: it prints how to watch, and the
printed token really streams the producer's events."""

from __future__ import annotations

import asyncio
import os
import re
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
    deadline = time.monotonic() + 20
    while "admin key" not in output and time.monotonic() < deadline:
        output += proc.stdout.readline()
    token = re.search(r"Bearer (\S+)' ", output)
    assert token, output
    assert "tidings tail --url" in output and "/live#token=" in output

    async def watch() -> list[dict]:
        async with sse(f"http://127.0.0.1:{port}", token.group(1)) as stream:
            return await stream.events(15, timeout=5)

    events = asyncio.run(watch())
    admin_key = re.search(r"admin key: (\S+)", output)
    assert admin_key, output
    assert f"http://127.0.0.1:{port}/admin" in output
    manager = AdminUI(f"http://127.0.0.1:{port}", admin_key.group(1))
    assert manager.get("/admin").status_code == 200  # the printed key logs in
    manager.close()
    deadline = time.monotonic() + 8
    done: list[dict] = []
    while not done and time.monotonic() < deadline:  # the rule pack at work
        done = httpx.get(
            f"http://127.0.0.1:{port}/api/admin/jobs",
            params={"status": "succeeded"},
            headers={"Authorization": f"Bearer {admin_key.group(1)}"},
        ).json()["items"]
        time.sleep(0.2)
    assert {j["eventType"] for j in done} <= {"course.completed", "certificate.issued"}
    assert done
    assert all(e["tenantId"] == "acme" for e in events)
    cars = [e for e in events if e["type"].startswith("qms.car")]
    assert cars and all("reporterEmail" in e["metadata"] for e in cars)  # alice may see PII
    assert proc.wait(20) == 0
