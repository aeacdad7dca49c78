"""Dead jobs for the Integration Manager's tests: a webhook rule whose one
attempt meets a receiver answering 500, so its job dies at once."""

from __future__ import annotations

import base64
import secrets
import time
from typing import Any

from receivers import WebhookReceiver
from support import Admin, unique

EVENT_TYPE = "course.completed"


def completed(tenant: str, user: str = "u1") -> dict[str, Any]:
    return {
        "type": EVENT_TYPE,
        "tenantId": tenant,
        "data": {"courseId": "c-101", "userId": user, "completedAt": "2026-11-22T10:00:00Z"},
    }


def failing_rule(admin: Admin, receiver: WebhookReceiver, tenant: str) -> str:
    """A rule of ``tenant`` whose webhook fails with 500 once, then succeeds
    (so a retry works); one attempt per round: its jobs die at once."""
    secret = "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()
    name = unique("down")
    url = receiver.endpoint(name, secret, 500)
    body = {
        "name": unique("rule"),
        "tenantId": tenant,
        "trigger": {"type": EVENT_TYPE},
        "action": {"type": "trigger_webhook", "config": {"url": url, "secret": secret}},
        "retry": {"schedule": [0]},
    }
    created = admin.http.post("/api/admin/rules", json=body)
    assert created.status_code == 201, created.text
    return str(created.json()["id"])


def wait_job(admin: Admin, rule_id: str, status: str, timeout: float = 20.0) -> dict[str, Any]:
    """The newest job of ``rule_id`` once it is in ``status``, with its attempts."""
    deadline = time.monotonic() + timeout
    found: list[dict[str, Any]] = []
    while time.monotonic() < deadline:
        found = admin.http.get("/api/admin/jobs", params={"ruleId": rule_id}).json()["items"]
        if found and found[0]["status"] == status:
            return dict(admin.http.get(f"/api/admin/jobs/{found[0]['id']}").json())
        time.sleep(0.1)
    raise AssertionError(f"rule {rule_id}: jobs {found}, wanted {status}")


def dead_job(admin: Admin, receiver: WebhookReceiver, tenant: str) -> dict[str, Any]:
    """A new dead job of ``tenant`` (its own rule, one published event)."""
    rule_id = failing_rule(admin, receiver, tenant)
    admin.publish(completed(tenant)).raise_for_status()
    return wait_job(admin, rule_id, "dead")


def wait_status(admin: Admin, job_id: int, status: str, timeout: float = 20.0) -> dict[str, Any]:
    """Job ``job_id`` once it is in ``status``."""
    deadline = time.monotonic() + timeout
    found = job(admin, job_id)
    while found["status"] != status:
        assert time.monotonic() < deadline, f"job {job_id} is {found['status']}, wanted {status}"
        time.sleep(0.1)
        found = job(admin, job_id)
    return found


def job(admin: Admin, job_id: int) -> dict[str, Any]:
    answer = admin.http.get(f"/api/admin/jobs/{job_id}")
    assert answer.status_code == 200, answer.text
    return dict(answer.json())
