"""The automation CLI as an operator uses it: load seed 001's rule pack with
one command, watch it work on a real server, then list jobs and replay."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import httpx

from support import Admin, running_server


def tidings(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tidings", *args], capture_output=True, text=True, timeout=60
    )


def test_the_lms_pack_issues_certificates_and_notifies(tmp_path: Path) -> None:
    database = f"sqlite:///{tmp_path / 'tidings.db'}"
    loaded = tidings(
        "rules", "load-pack", "lms-awareness", "--tenant", "acme", "--database", database
    )
    assert loaded.returncode == 0, loaded.stderr
    ids = [line.split()[0] for line in loaded.stdout.splitlines()]
    assert len(ids) == 3 and all(i.startswith("rul_") for i in ids)
    again = tidings(
        "rules", "load-pack", "lms-awareness", "--tenant", "acme", "--database", database
    )
    assert [line.split()[0] for line in again.stdout.splitlines()] == ids  # replaced, not added

    start = time.time() - 1
    with running_server(tmp_path, database_url=database) as server:
        hub = Admin(server.url)
        hub.tenant("acme")
        token = hub.user("acme", "sara", "member")
        hub.publish(
            {
                "type": "course.completed",
                "tenantId": "acme",
                "data": {
                    "courseId": "c-101",
                    "userId": "sara",
                    "completedAt": "2026-11-22T10:00:00Z",
                    "campaignId": "aw-7",
                },
            }
        ).raise_for_status()
        deadline = time.monotonic() + 15
        inbox: list[dict] = []
        while not inbox and time.monotonic() < deadline:
            inbox = httpx.get(
                f"{server.url}/api/notifications", headers={"Authorization": f"Bearer {token}"}
            ).json()["items"]
            time.sleep(0.1)
        assert [n["title"] for n in inbox] == ["Your certificate for c-101 is ready"]
        log = hub.http.get("/api/events/log", params={"tenantId": "acme"}).json()["items"]
        types = [e["type"] for e in log]
        assert "certificate.issued" in types and "campaign.completed" in types
        campaign = next(e for e in log if e["type"] == "campaign.completed")
        assert campaign["data"] == {
            "campaignId": "aw-7",
            "userId": "sara",
            "completedAt": "2026-11-22T10:00:00Z",
        }
        hub.close()

    listed = tidings("jobs", "list", "--status", "succeeded", "--database", database)
    assert listed.returncode == 0, listed.stderr
    assert "course.completed" in listed.stdout and "certificate.issued" in listed.stdout

    window = ["--from", str(start), "--to", str(time.time() + 1), "--tenant", "acme"]
    dry = tidings("replay", *window, "--dry-run", "--database", database)
    assert dry.returncode == 0, dry.stderr
    assert "would queue 0 jobs" in dry.stdout and "succeeded" in dry.stdout
    forced = tidings("replay", *window, "--force", "--dry-run", "--database", database)
    assert "would queue 3 jobs" in forced.stdout  # the pack's three (event, rule) pairs


def test_cli_errors_are_one_line(tmp_path: Path) -> None:
    database = f"sqlite:///{tmp_path / 'tidings.db'}"
    for args in (
        ["rules", "load-pack", "no-such-pack", "--database", database],
        ["replay", "--from", "yesterday", "--to", "today", "--database", database],
        ["replay", "--from", "2026-11-02", "--to", "2026-11-01", "--database", database],
        ["rules", "show", "rul_nope", "--database", database],
    ):
        result = tidings(*args)
        assert result.returncode != 0, args
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("tidings: "), result.stderr
