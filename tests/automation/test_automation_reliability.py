"""Jobs survive their worker: a server SIGKILLed in the middle of a
webhook call loses nothing; the next process reclaims the job after its
lease and the receiver, de-duplicating on ``webhook-id``, acts once."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from receivers import WebhookReceiver
from support import Admin, ServerProcess, unique
from test_automation import completed, rule, wait_job, webhook, whsec


@pytest.mark.slow
@pytest.mark.postgres
def test_workers_on_several_processes_share_jobs_without_doubles(
    pg_url: str, tmp_path: Path
) -> None:
    """Two servers and a separate `tidings worker` on one PostgreSQL: every
    job runs exactly once (claims are exclusive: SKIP LOCKED)."""
    receiver = WebhookReceiver()
    env = {
        "TIDINGS_ALLOW_PRIVATE_WEBHOOKS": "1",
        "TIDINGS_JOB_POLL_S": "0.1",
        "TIDINGS_CACHE_TTL_S": "0.5",  # rule refresh, should a control message be missed
    }
    servers = [ServerProcess(pg_url, env=env).start(tmp_path / f"s{i}.log") for i in range(2)]
    worker = subprocess.Popen(
        [sys.executable, "-m", "tidings", "worker"],
        env={**os.environ, **env, "TIDINGS_DATABASE_URL": pg_url},
        stdout=subprocess.DEVNULL,
        stderr=open(tmp_path / "worker.log", "ab"),  # noqa: SIM115 - closed with the process
    )
    try:
        hubs = [Admin(s.url) for s in servers]
        tenant, secret, name = hubs[0].tenant(), whsec(), unique("many")
        url = receiver.endpoint(name, secret)
        hubs[0].http.post("/api/admin/rules", json=rule(tenant, webhook(url, secret)))
        time.sleep(1.5)  # the other process's rule refresh (control message or poll)
        for i in range(60):
            hubs[i % 2].publish(completed(tenant, user=f"u{i}")).raise_for_status()
        deliveries = receiver.wait_for(name, 60, timeout=30)
        time.sleep(1)
        ids = [d.headers["webhook-id"] for d in receiver.to(name)]
        assert len(ids) == len(set(ids)) == 60  # each job once, none twice
        assert all(d.verified for d in deliveries)
        for hub in hubs:
            hub.close()
    finally:
        worker.terminate()
        worker.wait(15)
        for server in servers:
            server.stop()
        receiver.close()


@pytest.mark.slow
def test_a_job_killed_mid_call_is_reclaimed_and_acted_on_once(
    database_url: str, tmp_path: Path
) -> None:
    receiver = WebhookReceiver()
    env = {
        "TIDINGS_ALLOW_PRIVATE_WEBHOOKS": "1",
        "TIDINGS_JOB_LEASE_S": "3",
        "TIDINGS_JOB_POLL_S": "0.2",
    }
    first = ServerProcess(database_url, env=env).start(tmp_path / "first.log")
    second: ServerProcess | None = None
    try:
        hub = Admin(first.url)
        tenant, secret, name = hub.tenant(), whsec(), unique("kill")
        url = receiver.endpoint(name, secret, hang_s=30)  # the first call never returns in time
        created = hub.http.post(
            "/api/admin/rules",
            json=rule(tenant, webhook(url, secret), retry={"schedule": [0, 0.5]}),
        ).json()
        hub.publish(completed(tenant))
        receiver.wait_for(name, 1)
        first.kill()  # SIGKILL mid-call: no clean-up runs
        hub.close()

        second = ServerProcess(database_url, env=env).start(tmp_path / "second.log")
        hub = Admin(second.url)
        job = wait_job(hub, created["id"], "succeeded", timeout=30)
        deliveries = receiver.wait_for(name, 2)
        assert len({d.headers["webhook-id"] for d in deliveries}) == 1  # one message, twice
        assert all(d.verified for d in deliveries)
        assert [a["outcome"] for a in job["attempts"]] == ["abandoned", "succeeded"]
        assert "lost its lease" in job["attempts"][0]["detail"]
        time.sleep(1)
        assert len(receiver.to(name)) == 2  # and nothing after it succeeded
        hub.close()
    finally:
        first.kill()
        if second is not None:
            second.stop()
        receiver.close()
