"""One lifecycle check for every write in a tenant's name (issue 12,
defect 6): publishing, entity transitions, notifications (created, marked
read), inbound publish mappings, rule replay and jobs all refuse a
READ_ONLY, SUSPENDED or ARCHIVED tenant the same way (409 with its state)
and store nothing; a tenant's own transition still works (it is the
lifecycle). A job of a tenant that became SUSPENDED is held (its attempt
fails with the reason and is retried) and runs once the tenant is active
again; one of an ARCHIVED tenant is dead at once. SQLite and PostgreSQL."""

from __future__ import annotations

import time
from typing import Any

import httpx
import pytest

from support import Admin, ServerProcess, bearer, unique
from test_inbound import SECRET, signed

PATHS = {
    "ACTIVE": [],
    "READ_ONLY": ["ACTIVE"],
    "SUSPENDED": ["ACTIVE"],
    "ARCHIVED": ["ACTIVE", "DEPROVISIONING"],
}


def move(admin: Admin, tenant: str, to: str) -> None:
    response = admin.http.post(f"/api/admin/tenants/{tenant}/transition", json={"to": to})
    assert response.status_code == 200, response.text


def in_state(admin: Admin, state: str) -> tuple[str, str]:
    """A fresh tenant in ``state``, with a user, and an integration."""
    tenant = admin.tenant()
    token = admin.user(tenant, "u1", "member", grant=["qms.read"])
    for step in [*PATHS[state], state] if state != "ACTIVE" else ["ACTIVE"]:
        move(admin, tenant, step)
    return tenant, token


def history(admin: Admin, tenant: str) -> list[dict[str, Any]]:
    return list(admin.http.get("/api/events/log", params={"tenantId": tenant}).json()["items"])


def writes(admin: Admin, server: ServerProcess, tenant: str, token: str) -> dict[str, Any]:
    """Every write path, each answered."""
    integration = unique("crm")
    admin.http.put(
        f"/api/admin/integrations/{integration}",
        json={"secret": SECRET, "mappings": {"NOTE": {"publish": {"type": "qms.car.updated"}}}},
    ).raise_for_status()
    body, headers = signed({"type": "NOTE", "tenantId": tenant, "data": {"n": 1}})
    window = {"from": "2000-01-01T00:00:00Z", "to": "2100-01-01T00:00:00Z", "tenantId": tenant}
    return {
        "publish": admin.publish({"type": "qms.car.updated", "tenantId": tenant}),
        "batch": admin.http.post(
            "/api/events/batch", json={"events": [{"type": "qms.car.updated", "tenantId": tenant}]}
        ),
        "transition": admin.http.post(
            "/api/entities/ticket/t1/transition", json={"to": "TRIAGED", "tenantId": tenant}
        ),
        "notification": admin.http.post(
            "/api/notifications",
            json={"tenantId": tenant, "userId": "u1", "type": "note", "title": "hi"},
        ),
        "read-all": httpx.post(f"{server.url}/api/notifications/read-all", headers=bearer(token)),
        "inbound": httpx.post(
            f"{server.url}/api/inbound/{integration}", content=body, headers=headers
        ),
        "replay": admin.http.post("/api/admin/replay", json=window),
    }


@pytest.mark.parametrize("state", ["READ_ONLY", "SUSPENDED", "ARCHIVED"])
def test_every_write_path_refuses_a_tenant_that_accepts_none(
    server: ServerProcess, admin: Admin, state: str
) -> None:
    tenant, token = in_state(admin, state)
    before = history(admin, tenant)
    answers = writes(admin, server, tenant, token)
    for path, response in answers.items():
        if path == "read-all" and state != "READ_ONLY":
            # A closed tenant's users cannot even authenticate.
            assert response.status_code in (401, 403), response.text
            continue
        assert response.status_code == 409, (path, response.status_code, response.text)
        assert response.json()["state"] == state, path
    assert history(admin, tenant) == before  # nothing appended by any path
    timeline = admin.http.get(
        "/api/entities/ticket/t1/timeline", params={"tenantId": tenant}
    ).json()
    assert timeline == []  # the entity never moved


def test_the_same_paths_work_for_an_active_tenant(server: ServerProcess, admin: Admin) -> None:
    """The control: the paths above are real writes that succeed when allowed."""
    tenant, token = in_state(admin, "ACTIVE")
    answers = writes(admin, server, tenant, token)
    assert {path: r.status_code for path, r in answers.items()} == {
        "publish": 202,
        "batch": 202,
        "transition": 200,
        "notification": 201,
        "read-all": 200,
        "inbound": 200,
        "replay": 200,
    }


def wait_job(admin: Admin, rule_id: str, check: Any, timeout: float = 20.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    found: list[dict[str, Any]] = []
    while time.monotonic() < deadline:
        found = admin.http.get("/api/admin/jobs", params={"ruleId": rule_id}).json()["items"]
        if found:
            job = admin.http.get(f"/api/admin/jobs/{found[0]['id']}").json()
            if check(job):
                return dict(job)
        time.sleep(0.1)
    raise AssertionError(f"jobs of {rule_id}: {found}")


@pytest.mark.parametrize("state", ["SUSPENDED", "ARCHIVED"])
def test_a_job_of_a_tenant_that_stopped_accepting_writes_is_held(
    server: ServerProcess, admin: Admin, state: str
) -> None:
    tenant, _token = in_state(admin, "ACTIVE")
    rule = {
        "name": unique("follow"),
        "tenantId": tenant,
        "trigger": {"type": "qms.car.updated"},
        "action": {"type": "publish_event", "config": {"type": "qms.document.updated"}},
        "retry": {"schedule": [1.5, 1, 1, 1, 1, 1, 1, 1, 1, 1]},
    }
    created = admin.http.post("/api/admin/rules", json=rule)
    assert created.status_code == 201, created.text
    assert admin.publish({"type": "qms.car.updated", "tenantId": tenant}).status_code == 202
    for step in ["DEPROVISIONING", "ARCHIVED"] if state == "ARCHIVED" else [state]:
        move(admin, tenant, step)  # before the job's first attempt (1.5 s)
    held = wait_job(admin, created.json()["id"], lambda j: j["attempts"])
    assert state in held["attempts"][0]["detail"] and "held" in held["attempts"][0]["detail"]
    assert held["status"] == ("dead" if state == "ARCHIVED" else "failed")
    assert not [e for e in history(admin, tenant) if e["type"] == "qms.document.updated"]
    if state == "SUSPENDED":
        move(admin, tenant, "ACTIVE")
        wait_job(admin, created.json()["id"], lambda j: j["status"] == "succeeded")
        followed = [e for e in history(admin, tenant) if e["type"] == "qms.document.updated"]
        assert len(followed) == 1
