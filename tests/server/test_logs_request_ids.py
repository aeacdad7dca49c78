"""A publish request's ``X-Request-ID`` travels with its events into the
jobs they cause (outbox row -> job row, on SQLite and PostgreSQL): the
job's JSON shows it and the worker's attempt log line carries it."""

from __future__ import annotations

import base64
import json
import secrets
import time
from collections.abc import Iterator
from typing import Any

import pytest

from pg import server_database
from receivers import WebhookReceiver
from support import Admin, ServerProcess, running_server


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def traced_server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServerProcess]:
    database_url = server_database(request)
    env = {
        "TIDINGS_LOG_FORMAT": "json",
        "TIDINGS_LOG_LEVEL": "info",
        "TIDINGS_ALLOW_PRIVATE_WEBHOOKS": "1",
        "TIDINGS_JOB_POLL_S": "0.2",
    }
    tmp = tmp_path_factory.mktemp("traced")
    with running_server(tmp, env=env, database_url=database_url) as server:
        yield server


def jobs_of(admin: Admin, rule_id: str, want: int, timeout: float = 20.0) -> list[dict[str, Any]]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        items = admin.http.get("/api/admin/jobs", params={"ruleId": rule_id}).json()["items"]
        if len(items) >= want and all(job["status"] == "succeeded" for job in items):
            return list(items)
        time.sleep(0.2)
    raise AssertionError(f"rule {rule_id}: fewer than {want} succeeded jobs")


def test_jobs_carry_the_publishing_request_id(traced_server: ServerProcess) -> None:
    admin = Admin(traced_server.url)
    receiver = WebhookReceiver()
    try:
        tenant = admin.tenant()
        secret = "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()
        url = receiver.endpoint("traced", secret)
        rule = {
            "name": "traced",
            "tenantId": tenant,
            "trigger": {"type": "qms.car.updated"},
            "action": {"type": "trigger_webhook", "config": {"url": url, "secret": secret}},
        }
        created = admin.http.post("/api/admin/rules", json=rule)
        assert created.status_code == 201, created.text
        event = {"type": "qms.car.updated", "tenantId": tenant, "entityId": "car-1"}
        one = admin.publish(event, headers={"X-Request-ID": "req-one"})
        assert one.status_code == 202, one.text
        batch = admin.http.post(
            "/api/events/batch",
            json={"events": [event, {**event, "entityId": "car-2"}]},
            headers={"X-Request-ID": "req-batch"},
        )
        assert batch.status_code == 202, batch.text
        found = jobs_of(admin, created.json()["id"], 3)
    finally:
        receiver.close()
        admin.close()
    by_event = {job["eventId"]: job["requestId"] for job in found}
    assert by_event[one.json()["id"]] == "req-one"
    assert [by_event[r["id"]] for r in batch.json()["results"]] == ["req-batch", "req-batch"]
    assert traced_server.log_path is not None
    lines = [json.loads(line) for line in traced_server.log_path.read_text().splitlines()]
    attempts = [line for line in lines if line["logger"] == "tidings.worker" and "job_id" in line]
    traced = {line["job_id"]: line["request_id"] for line in attempts}
    assert {traced[job["id"]] for job in found} == {"req-one", "req-batch"}
    assert all(line["outcome"] == "succeeded" for line in attempts if line["job_id"] in traced)
