"""The backup and restore how-to, done as it says on real servers: the page's
own commands back up a running hub's database (SQLite: the ``sqlite3`` CLI
and Python's backup API; PostgreSQL: ``pg_dump``/``pg_restore``), a hub
started on the copy has exactly the events committed before the backup, and
what the page says about positions after a restore holds."""

from __future__ import annotations

import contextlib
import os
import shutil
import sqlite3
import subprocess
from pathlib import Path
from typing import Any

import httpx
import pytest

from support import ADMIN_KEY, Admin, ServerProcess, need
from test_docs_examples import code_block
from tidings.store.migrate import upgrade

PAGE = "howto/backup-restore.md"
TIMEOUT_S = 60


def publish(url: str, tenant: str, count: int) -> list[int]:
    headers = {"Authorization": f"Bearer {ADMIN_KEY}"}
    positions = []
    for number in range(count):
        event = {"type": "qms.car.escalated", "tenantId": tenant, "entityId": f"car-{number}"}
        answer = httpx.post(f"{url}/api/events", json=event, headers=headers, timeout=30)
        assert answer.status_code == 202, answer.text
        positions.append(answer.json()["position"])
    return positions


def history(url: str, tenant: str) -> list[int]:
    answer = httpx.get(
        f"{url}/api/events/log",
        params={"tenantId": tenant, "order": "asc", "types": "qms.car.escalated"},
        headers={"Authorization": f"Bearer {ADMIN_KEY}"},
        timeout=30,
    )
    assert answer.status_code == 200, answer.text
    return [item["position"] for item in answer.json()["items"]]


def resume_answer(url: str, tenant: str, last_event_id: int) -> dict[str, Any]:
    """The first message after ``connected`` of a stream resumed at ``last_event_id``."""
    headers = {"Authorization": f"Bearer {ADMIN_KEY}", "Last-Event-ID": str(last_event_id)}
    params = {"tenantId": tenant}
    with httpx.stream("GET", f"{url}/api/events", headers=headers, params=params, timeout=30) as r:
        for line in r.iter_lines():
            if line.startswith("data:") and '"connected"' not in line:
                return dict(httpx.Response(200, content=line.removeprefix("data:")).json())
    raise AssertionError("the stream ended without a message")


def run_shell(block: str, cwd: Path, env: dict[str, str]) -> None:
    result = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", block],
        cwd=cwd,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
    )
    assert result.returncode == 0, result.stderr


def backed_up_then_restored(
    live_url: str, restored_url: str, tmp_path: Path, take_backup: Any
) -> tuple[str, list[int]]:
    """Three events before the backup, two after; the restored hub has the
    three. Returns the tenant and the positions of the three."""
    live = ServerProcess(live_url).start(tmp_path / "live.log")
    try:
        admin = Admin(live.url)
        tenant = admin.tenant()
        admin.close()
        before = publish(live.url, tenant, 3)
        take_backup()
        after = publish(live.url, tenant, 2)
    finally:
        live.stop()
    restored = ServerProcess(restored_url).start(tmp_path / "restored.log")
    try:
        assert history(restored.url, tenant) == before
        # A client that saw events after the backup resumes beyond the log: a reset.
        message = resume_answer(restored.url, tenant, after[-1])
        assert message["type"] == "reset" and message["reason"] == "unknown_position", message
        # And the positions after the backup's head are handed out again.
        assert publish(restored.url, tenant, 1) == [before[-1] + 1]
    finally:
        restored.stop()
    return tenant, before


def test_sqlite_backup_with_the_cli_and_with_python(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    need(shutil.which("sqlite3") is not None, "the sqlite3 command (Debian package sqlite3)")
    (tmp_path / "backups").mkdir()
    cli = code_block(PAGE, "sh", "## SQLite")
    python = code_block(PAGE, "python", "## SQLite")

    def take_backup() -> None:
        run_shell(cli, tmp_path, {})
        monkeypatch.chdir(tmp_path)
        exec(compile(python, PAGE, "exec"), {})

    live = f"sqlite:///{tmp_path / 'tidings.db'}"
    copy = f"sqlite:///{tmp_path / 'backups' / 'tidings.db'}"
    tenant, before = backed_up_then_restored(live, copy, tmp_path, take_backup)
    (dated,) = (tmp_path / "backups").glob("tidings-*.db")  # the CLI's copy, dated
    with contextlib.closing(sqlite3.connect(dated)) as copied:
        rows = copied.execute(
            "SELECT position FROM events WHERE tenant_id = ? AND type = ? ORDER BY position",
            (tenant, "qms.car.escalated"),
        )
        assert [position for (position,) in rows] == before


@pytest.mark.postgres
async def test_postgres_backup_with_pg_dump_and_pg_restore(tmp_path: Path, postgres: Any) -> None:
    dump = code_block(PAGE, "sh", "## PostgreSQL")
    restore = code_block(
        PAGE, "sh", "**Restore** into an empty database, with every Tidings process stopped,"
    )
    live = postgres.url(postgres.create_database())
    await upgrade(live)
    env = {
        "TIDINGS_DATABASE_URL": live,
        "PGHOST": "127.0.0.1",
        "PGPORT": str(postgres.port),
        "PGUSER": "postgres",
    }
    restored = postgres.url("tidings_restored")
    backed_up_then_restored(
        live,
        restored,
        tmp_path,
        lambda: (run_shell(dump, tmp_path, env), run_shell(restore, tmp_path, env)),
    )
