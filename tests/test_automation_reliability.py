"""Jobs survive their worker: a server SIGKILLed in the middle of a
webhook call loses nothing; the next process reclaims the job after its
lease and the receiver, de-duplicating on ``webhook-id``, acts once."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from receivers import WebhookReceiver
from support import Admin, ServerProcess, unique
from test_automation import completed, rule, wait_job, webhook, whsec


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
