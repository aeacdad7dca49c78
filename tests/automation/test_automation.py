"""Automation end to end over real HTTP, on SQLite and PostgreSQL: rules ->
jobs (outbox) -> actions against a real webhook receiver (signatures
verified with the standardwebhooks library), a real SMTP server and the
test plugin's host actions; retries, Retry-After, 410, dead letters,
replay, dry runs, isolation."""

from __future__ import annotations

import base64
import json
import secrets
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from receivers import MailSink, WebhookReceiver
from support import ADMIN_KEY, Admin, ServerProcess, unique


def whsec() -> str:
    return "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()


@pytest.fixture
def hub(automation_server: ServerProcess) -> Any:
    client = Admin(automation_server.url)
    yield client
    client.close()


def completed(tenant: str, user: str = "u1", **data: Any) -> dict[str, Any]:
    return {
        "type": "course.completed",
        "tenantId": tenant,
        "data": {
            "courseId": "c-101",
            "userId": user,
            "completedAt": "2026-11-22T10:00:00Z",
            **data,
        },
    }


def rule(tenant: str | None, action: dict[str, Any], **extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "name": unique("rule"),
        "tenantId": tenant,
        "trigger": {"type": "course.completed"},
        "action": action,
        "retry": {"schedule": [0, 0.3, 0.3]},
    }
    body.update(extra)
    return body


def create(hub: Admin, body: dict[str, Any]) -> dict[str, Any]:
    response = hub.http.post("/api/admin/rules", json=body)
    assert response.status_code == 201, response.text
    return dict(response.json())


def jobs(hub: Admin, **params: Any) -> list[dict[str, Any]]:
    response = hub.http.get("/api/admin/jobs", params=params)
    assert response.status_code == 200, response.text
    return list(response.json()["items"])


def wait_job(hub: Admin, rule_id: str, status: str, timeout: float = 15.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    found: list[dict[str, Any]] = []
    while time.monotonic() < deadline:
        found = jobs(hub, ruleId=rule_id)
        if found and found[0]["status"] == status:
            detail = hub.http.get(f"/api/admin/jobs/{found[0]['id']}")
            return dict(detail.json())
        time.sleep(0.1)
    raise AssertionError(f"rule {rule_id}: jobs {found}, wanted {status}")


def webhook(url: str, secret: str) -> dict[str, Any]:
    return {"type": "trigger_webhook", "config": {"url": url, "secret": secret}}


def test_webhook_retries_after_500_with_a_stable_id(hub: Admin, receiver: WebhookReceiver) -> None:
    tenant, secret, name = hub.tenant(), whsec(), unique("hook")
    url = receiver.endpoint(name, secret, 500, 200)
    created = create(hub, rule(tenant, webhook(url, secret)))
    published = hub.publish(completed(tenant)).json()

    job = wait_job(hub, created["id"], "succeeded")
    first, second = receiver.wait_for(name, 2)
    assert first.verified and second.verified  # signed per Standard Webhooks
    assert first.headers["webhook-id"] == second.headers["webhook-id"]
    assert second.body["type"] == "course.completed"
    assert second.body["data"]["id"] == published["id"]
    assert [a["outcome"] for a in job["attempts"]] == ["failed", "succeeded"]
    assert [a["status"] for a in job["attempts"]] == [500, 200]
    state = hub.http.get(f"/api/admin/events/{published['id']}/processing").json()
    assert state["processed"] is True and state["state"] == "processed"
    assert 'tidings_job_attempts_total{outcome="succeeded"}' in hub.http.get("/metrics").text


def test_410_disables_the_rule_and_kills_the_job(hub: Admin, receiver: WebhookReceiver) -> None:
    tenant, secret, name = hub.tenant(), whsec(), unique("gone")
    created = create(hub, rule(tenant, webhook(receiver.endpoint(name, secret, 410), secret)))
    hub.publish(completed(tenant))

    job = wait_job(hub, created["id"], "dead")
    assert job["attempts"][0]["status"] == 410
    deadline = time.monotonic() + 5
    while hub.http.get(f"/api/admin/rules/{created['id']}").json()["enabled"]:
        assert time.monotonic() < deadline, "rule still enabled"
        time.sleep(0.05)
    assert "410" in hub.http.get(f"/api/admin/rules/{created['id']}").json()["disabledReason"]


def test_retry_after_is_honoured(hub: Admin, receiver: WebhookReceiver) -> None:
    tenant, secret, name = hub.tenant(), whsec(), unique("slow")
    url = receiver.endpoint(name, secret, (429, {"Retry-After": "2"}), 200)
    created = create(hub, rule(tenant, webhook(url, secret)))
    hub.publish(completed(tenant))

    wait_job(hub, created["id"], "succeeded")
    first, second = receiver.wait_for(name, 2)
    assert second.at - first.at >= 1.9  # the schedule said 0.3 s; the server asked for 2


def test_exhausted_retries_go_dead_then_retry_and_discard(
    hub: Admin, receiver: WebhookReceiver
) -> None:
    tenant, secret, name = hub.tenant(), whsec(), unique("down")
    url = receiver.endpoint(name, secret, 503, 503, 500)
    created = create(hub, rule(tenant, webhook(url, secret)))
    published = hub.publish(completed(tenant)).json()

    dead = wait_job(hub, created["id"], "dead")
    assert len(dead["attempts"]) == 3  # the schedule's three attempts
    listed = jobs(hub, status="dead", tenantId=tenant)
    assert [j["id"] for j in listed] == [dead["id"]]
    assert [a["outcome"] for a in listed[0]["attempts"]] == ["failed"] * 3  # DESIGN §4
    assert all({"time", "outcome", "detail"} <= set(a) for a in listed[0]["attempts"])
    state = hub.http.get(f"/api/admin/events/{published['id']}/processing").json()
    assert state == {
        "eventId": published["id"],
        "processed": False,
        "state": "failed",
        "jobs": {"dead": 1},
    }

    retried = hub.http.post(f"/api/admin/jobs/{dead['id']}/retry")  # the endpoint is back
    assert retried.status_code == 200
    done = wait_job(hub, created["id"], "succeeded")
    assert [a["outcome"] for a in done["attempts"]] == ["failed"] * 3 + ["succeeded"]

    again = hub.http.post(f"/api/admin/jobs/{done['id']}/discard", json={"reason": "x"})
    assert again.status_code == 422  # succeeded jobs are not discarded
    receiver.endpoint(name, secret, 500, 500, 500)
    hub.publish(completed(tenant, user="u2"))
    second = wait_job(hub, created["id"], "dead")
    discarded = hub.http.post(
        f"/api/admin/jobs/{second['id']}/discard", json={"reason": "customer closed account"}
    )
    assert discarded.json()["status"] == "discarded"
    assert discarded.json()["discardReason"] == "customer closed account"


def test_email_is_rendered_and_sent_over_smtp(hub: Admin, mail: MailSink) -> None:
    tenant, subject = hub.tenant(), unique("Well done")
    action = {
        "type": "send_email",
        "config": {
            "to": "{{ data.userId }}@learners.example",
            "from": "lms@school.example",
            "subject": subject + " {{ data.courseId }}",
            "body": "Hello {{ data.userId }}, you scored {{ data.score }}.",
        },
    }
    created = create(hub, rule(tenant, action))
    hub.publish(completed(tenant, user="sara", score=92))

    job = wait_job(hub, created["id"], "succeeded")
    sender, recipients, message = mail.wait_for(f"{subject} c-101")
    assert sender == "lms@school.example" and recipients == ["sara@learners.example"]
    assert message.get_payload().strip() == "Hello sara, you scored 92."
    assert message["Message-ID"].startswith(f"<job-{job['id']}.")
    assert job["attempts"][0]["status"] == 250


def test_email_falls_back_to_the_tenants_sender(hub: Admin, mail: MailSink) -> None:
    tenant, subject = unique("ten"), unique("Tenant sender")
    hub.http.put(
        f"/api/admin/tenants/{tenant}",
        json={"name": "T", "settings": {"emailFrom": "noreply@tenant.example"}},
    ).raise_for_status()
    action = {
        "type": "send_email",
        "config": {"to": "a@b.example", "subject": subject, "body": "x"},
    }
    created = create(hub, rule(tenant, action))
    hub.publish(completed(tenant))
    wait_job(hub, created["id"], "succeeded")
    sender, _, message = mail.wait_for(subject)
    assert sender == "noreply@tenant.example" and "noreply@tenant.example" in message["From"]


def test_notification_publish_event_and_host_actions(
    hub: Admin, automation_server: ServerProcess
) -> None:
    tenant = hub.tenant()
    token = hub.user(tenant, "sara", "member")
    notify = create(
        hub,
        rule(
            tenant,
            {
                "type": "send_notification",
                "config": {
                    "audience": "user:{{ data.userId }}",
                    "title": "Course {{ data.courseId }} done",
                },
            },
        ),
    )
    chain = create(
        hub,
        rule(
            tenant,
            {
                "type": "publish_event",
                "config": {
                    "type": "certificate.issued",
                    "data": {
                        "certificateId": "cert-{{ data.courseId }}-{{ data.userId }}",
                        "courseId": "{{ data.courseId }}",
                        "userId": "{{ data.userId }}",
                        "issuedAt": "{{ now }}",
                    },
                },
            },
        ),
    )
    host = create(
        hub,
        rule(tenant, {"type": "update_status", "config": {"status": "done-{{ data.courseId }}"}}),
    )
    job = create(
        hub, rule(tenant, {"type": "run_job", "config": {"name": "recount", "args": {"n": 3}}})
    )
    published = hub.publish(completed(tenant, user="sara")).json()

    for created in (notify, chain, host, job):
        wait_job(hub, created["id"], "succeeded")
    inbox = httpx.get(
        f"{automation_server.url}/api/notifications", headers={"Authorization": f"Bearer {token}"}
    ).json()["items"]
    assert [n["title"] for n in inbox] == ["Course c-101 done"]
    assert inbox[0]["sourceEventId"] == published["id"]
    log = hub.http.get(
        "/api/events/log", params={"tenantId": tenant, "types": "certificate.issued"}
    )
    (certificate,) = log.json()["items"]
    assert certificate["data"]["certificateId"] == "cert-c-101-sara"
    assert certificate["metadata"]["causationId"] == published["id"]
    plugin_log = Path(automation_server.extra_env["TEST_PLUGIN_LOG"]).read_text().splitlines()
    mine = [json.loads(line) for line in plugin_log if published["id"] in line]
    assert {(m["kind"], m.get("status"), m.get("n")) for m in mine} == {
        ("update_status", "done-c-101", None),
        ("recount", None, 3),
    }


def test_conditions_and_scope_decide_which_events_get_jobs(
    hub: Admin, receiver: WebhookReceiver
) -> None:
    tenant, other, secret, name = hub.tenant(), hub.tenant(), whsec(), unique("cond")
    conditions = {"all": [{"path": "data.score", "op": "gte", "value": 80}]}
    created = create(
        hub,
        rule(
            tenant,
            webhook(receiver.endpoint(name, secret), secret),
            trigger={"type": "course.*", "conditions": conditions},
        ),
    )
    hub.publish(completed(tenant, score=50))  # conditions fail
    hub.publish(completed(other, score=95))  # another tenant
    hub.publish(completed(tenant, score=95))  # this one

    wait_job(hub, created["id"], "succeeded")
    assert len(jobs(hub, ruleId=created["id"])) == 1
    assert receiver.wait_for(name, 1)[0].body["data"]["data"]["score"] == 95


def test_dry_run_renders_and_runs_nothing(hub: Admin, receiver: WebhookReceiver) -> None:
    tenant, secret, name = hub.tenant(), whsec(), unique("dry")
    body = rule(
        tenant,
        {
            "type": "send_email",
            "config": {
                "to": "{{ data.userId }}@x.example",
                "subject": "Hi {{ data.userId }}",
                "body": "b",
            },
        },
        trigger={
            "type": "course.completed",
            "conditions": {"path": "data.score", "op": "gt", "value": 10},
        },
    )
    unsaved = hub.http.post(
        "/api/admin/rules/test", json={"rule": body, "event": completed(tenant, score=50)}
    ).json()
    assert unsaved["matched"] is True
    assert unsaved["actions"] == [
        {"type": "send_email", "config": {"to": "u1@x.example", "subject": "Hi u1", "body": "b"}}
    ]
    saved = create(hub, {**body, "action": webhook(receiver.endpoint(name, secret), secret)})
    miss = hub.http.post(
        f"/api/admin/rules/{saved['id']}/test", json={"event": completed(tenant, score=5)}
    ).json()
    assert miss["matched"] is False and miss["reasons"] == ["the conditions do not match"]
    hit = hub.http.post(
        f"/api/admin/rules/{saved['id']}/test", json={"event": completed(tenant, score=50)}
    ).json()
    assert hit["matched"] is True
    assert hit["actions"][0]["config"]["secret"] != secret  # masked
    assert jobs(hub, ruleId=saved["id"]) == [] and receiver.to(name) == []


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"trigger": {"type": "bad pattern!"}}, "/trigger/type"),
        ({"action": {"type": "launch_rocket", "config": {}}}, "/action/type"),
        (
            {
                "action": {
                    "type": "send_email",
                    "config": {"to": "a@b.c", "subject": "{{ x ", "body": "b"},
                }
            },
            "/action/config/subject",
        ),
        (
            {"trigger": {"type": "x", "conditions": {"path": "data.a", "op": "near"}}},
            "/trigger/conditions/op",
        ),
        ({"retry": {"schedule": [0, -5]}}, "/retry/schedule/1"),
        ({"trigger": {"type": "course.complete"}}, "/trigger/type"),  # a typo would never fire
        (
            {
                "action": {
                    "type": "trigger_webhook",
                    "config": {"url": "https://x.example", "secret": "nope"},
                }
            },
            "/action/config/secret",
        ),
        ({"action": {"type": "run_job", "config": {"name": "no_such_job"}}}, "/action/config/name"),
        (
            {"action": {"type": "publish_event", "config": {"type": "no.such.type"}}},
            "/action/config/type",
        ),
    ],
)
def test_bad_rules_are_refused_naming_the_field(
    hub: Admin, change: dict[str, Any], field: str
) -> None:
    tenant = hub.tenant()
    before = len(hub.http.get("/api/admin/rules").json()["items"])
    body = {
        **rule(
            tenant, {"type": "send_email", "config": {"to": "a@b.c", "subject": "s", "body": "b"}}
        ),
        **change,
    }
    response = hub.http.post("/api/admin/rules", json=body)
    assert response.status_code == 422, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["field"] == field
    assert len(hub.http.get("/api/admin/rules").json()["items"]) == before


def test_private_webhook_urls_are_refused_by_default(fresh_server: ServerProcess) -> None:
    hub = Admin(fresh_server.url)
    tenant = hub.tenant()
    for url in ("http://127.0.0.1:9/x", "http://localhost/x", "http://10.1.2.3/", "http://[::1]/"):
        body = rule(tenant, webhook(url, whsec()))
        response = hub.http.post("/api/admin/rules", json=body)
        assert response.status_code == 422, url
        assert response.json()["field"] == "/action/config/url"
    hub.close()


def test_tenant_admin_keys_see_only_their_rules_and_jobs(
    hub: Admin, receiver: WebhookReceiver
) -> None:
    mine, theirs, secret = hub.tenant(), hub.tenant(), whsec()
    url = receiver.endpoint(unique("iso"), secret)
    their_rule = create(hub, rule(theirs, webhook(url, secret)))
    hub.publish(completed(theirs))
    their_job = wait_job(hub, their_rule["id"], "succeeded")
    key = hub.api_key(["admin"], tenant_id=mine)
    scoped = httpx.Client(base_url=hub.url, headers={"Authorization": f"Bearer {key}"})
    assert scoped.get(f"/api/admin/rules/{their_rule['id']}").status_code == 404
    assert scoped.get(f"/api/admin/jobs/{their_job['id']}").status_code == 404
    assert scoped.post(f"/api/admin/jobs/{their_job['id']}/retry").status_code == 404
    assert all(j["tenantId"] == mine for j in scoped.get("/api/admin/jobs").json()["items"])
    assert scoped.get("/api/admin/jobs", params={"tenantId": theirs}).status_code == 403
    assert scoped.post("/api/admin/rules", json=rule(None, webhook(url, secret))).status_code == 403
    own = scoped.post("/api/admin/rules", json=rule(mine, webhook(url, secret)))
    assert own.status_code == 201
    platform = create(hub, {**rule(None, webhook(url, secret)), "enabled": False})
    hub.http.put(f"/api/admin/rules/{platform['id']}", json=rule(None, webhook(url, secret)))
    hub.publish(completed(mine))
    wait_job(hub, own.json()["id"], "succeeded")
    window = {"from": str(time.time() - 60), "to": str(time.time() + 60), "dryRun": True}
    forced = scoped.post("/api/admin/replay", json={**window, "tenantId": mine, "force": True})
    assert set(forced.json()["byRule"]) == {own.json()["id"]}  # not the platform's rule
    assert scoped.post("/api/admin/replay", json={**window, "tenantId": theirs}).status_code == 403
    hub.http.delete(f"/api/admin/rules/{platform['id']}")
    scoped.close()


def test_replay_queues_missing_jobs_once(hub: Admin, receiver: WebhookReceiver) -> None:
    tenant, secret, name = hub.tenant(), whsec(), unique("replay")
    start = time.time() - 1
    for user in ("a", "b", "c"):
        hub.publish(completed(tenant, user=user))
    created = create(hub, rule(tenant, webhook(receiver.endpoint(name, secret), secret)))
    window = {"from": str(start), "to": str(time.time() + 1), "tenantId": tenant}

    dry = hub.http.post("/api/admin/replay", json={**window, "dryRun": True}).json()
    assert (dry["events"], dry["queued"], dry["dryRun"]) == (3, 3, True)
    assert jobs(hub, ruleId=created["id"]) == []

    run = hub.http.post("/api/admin/replay", json=window).json()
    assert run["queued"] == 3
    receiver.wait_for(name, 3)
    deadline = time.monotonic() + 10
    while {j["status"] for j in jobs(hub, ruleId=created["id"])} != {"succeeded"}:
        assert time.monotonic() < deadline
        time.sleep(0.1)
    again = hub.http.post("/api/admin/replay", json=window).json()
    assert again["queued"] == 0 and again["existing"] == {"succeeded": 3}
    forced = hub.http.post("/api/admin/replay", json={**window, "force": True}).json()
    assert forced["queued"] == 3
    receiver.wait_for(name, 6)
    assert len(jobs(hub, ruleId=created["id"])) == 3  # still one job per (event, rule)


def test_rule_crud_and_secret_rotation(hub: Admin, receiver: WebhookReceiver) -> None:
    tenant, name = hub.tenant(), unique("rot")
    url = receiver.endpoint(name, "whsec_placeholder")
    created = create(hub, rule(tenant, {"type": "trigger_webhook", "config": {"url": url}}))
    old = created["secret"]  # generated by the server, shown once
    assert old.startswith("whsec_")
    assert "secret" not in hub.http.get(f"/api/admin/rules/{created['id']}").json()
    rotated = hub.http.post(f"/api/admin/rules/{created['id']}/rotate-secret", json={}).json()
    new = rotated["secret"]
    shown = hub.http.get(f"/api/admin/rules/{created['id']}").text
    assert old not in shown and new not in shown  # previousSecrets are masked too
    receiver.endpoint(name, old)  # a receiver still holding the old secret verifies
    hub.publish(completed(tenant))
    wait_job(hub, created["id"], "succeeded")
    assert receiver.wait_for(name, 1)[0].verified
    receiver.endpoint(name, new)
    hub.publish(completed(tenant, user="z"))
    receiver.wait_for(name, 2)
    assert receiver.to(name)[1].verified

    changed = hub.http.put(
        f"/api/admin/rules/{created['id']}",
        json={
            **rule(tenant, {"type": "trigger_webhook", "config": {"url": url}}),
            "enabled": False,
        },
    )
    assert changed.status_code == 200 and changed.json()["enabled"] is False
    assert hub.http.delete(f"/api/admin/rules/{created['id']}").status_code == 204
    assert hub.http.get(f"/api/admin/rules/{created['id']}").status_code == 404


def test_unauthenticated_and_non_admin_calls_are_refused(hub: Admin) -> None:
    tenant = hub.tenant()
    token = hub.user(tenant, "u", "member")
    anonymous = httpx.get(f"{hub.url}/api/admin/jobs")
    assert anonymous.status_code == 401
    user = httpx.get(f"{hub.url}/api/admin/rules", headers={"Authorization": f"Bearer {token}"})
    assert user.status_code == 403
    assert ADMIN_KEY  # the admin key itself works (every other test)


def test_notifications_reach_everyone_in_a_permission_audience(
    hub: Admin, automation_server: ServerProcess
) -> None:
    tenant = hub.tenant()
    hub.role("lms_admin", ["lms.read"], tenant_id=tenant)
    readers = [hub.user(tenant, name, "lms_admin") for name in ("ann", "ben")]
    outsider = hub.user(tenant, "cal", "member")
    action = {
        "type": "send_notification",
        "config": {"audience": "permission:lms.read", "title": "{{ data.userId }} finished"},
    }
    created = create(hub, rule(tenant, action))
    hub.publish(completed(tenant, user="sara"))
    job = wait_job(hub, created["id"], "succeeded")
    assert job["attempts"][0]["detail"] == "2 notification(s) for permission:lms.read"

    def inbox(token: str) -> list[str]:
        response = httpx.get(
            f"{automation_server.url}/api/notifications",
            headers={"Authorization": f"Bearer {token}"},
        )
        return [n["title"] for n in response.json()["items"]]

    assert [inbox(t) for t in readers] == [["sara finished"], ["sara finished"]]
    assert inbox(outsider) == []


def test_a_rule_loop_is_cut_after_a_bounded_chain(hub: Admin) -> None:
    tenant = hub.tenant()
    echo = {
        "type": "publish_event",
        "config": {
            "type": "certificate.issued",
            "data": {
                "certificateId": "{{ data.certificateId }}",
                "courseId": "{{ data.courseId }}",
                "userId": "{{ data.userId }}",
                "issuedAt": "{{ data.issuedAt }}",
            },
        },
    }
    created = create(hub, rule(tenant, echo, trigger={"type": "certificate.issued"}))
    hub.publish(
        {
            "type": "certificate.issued",
            "tenantId": tenant,
            "data": {
                "certificateId": "x",
                "courseId": "c",
                "userId": "u",
                "issuedAt": "2026-11-22T10:00:00Z",
            },
        }
    )
    dead = wait_job(hub, created["id"], "dead", timeout=30)
    assert "chain deeper than 8" in dead["attempts"][-1]["detail"]
    log = hub.http.get(
        "/api/events/log", params={"tenantId": tenant, "types": "certificate.issued", "limit": 100}
    ).json()["items"]
    assert len(log) == 9  # the original and eight follow-ups, then the loop stops
    assert sorted(e["metadata"].get("chainDepth", 0) for e in log) == list(range(9))


def test_dead_letters_filter_by_type_and_time(hub: Admin, receiver: WebhookReceiver) -> None:
    tenant, secret, name = hub.tenant(), whsec(), unique("filter")
    url = receiver.endpoint(name, secret, 500)
    created = create(hub, {**rule(tenant, webhook(url, secret)), "retry": {"schedule": [0]}})
    before = time.time()
    hub.publish(completed(tenant))
    wait_job(hub, created["id"], "dead")
    base = {"status": "dead", "tenantId": tenant}
    assert len(jobs(hub, **base, type="course.completed")) == 1
    assert jobs(hub, **base, type="certificate.issued") == []
    assert len(jobs(hub, **base, since=str(before - 1))) == 1
    assert jobs(hub, **base, until=str(before - 1)) == []
    bad = hub.http.get("/api/admin/jobs", params={"status": "lost"})
    assert bad.status_code == 422 and bad.json()["field"] == "status"


def test_module_qualified_types_name_catalog_types(hub: Admin) -> None:
    body = rule(
        hub.tenant(),
        {"type": "send_email", "config": {"to": "a@b.example", "subject": "s", "body": "b"}},
    )
    created = create(hub, {**body, "trigger": {"type": "lms.course.completed"}})
    assert created["trigger"]["type"] == "course.completed"  # seed 001's module.event_code
