"""Failing webhook endpoints are disabled automatically, on SQLite and
PostgreSQL: a run of consecutive failed deliveries past both limits (count
and time) disables the rule through the one path a 410 takes, publishes
``rule.disabled`` and notifies the tenant's admins (users holding
``tidings.admin``); a success or re-enabling starts a new count. The
invariants live in ``store/jobs.py``, ``automation/worker.py`` and
``automation/rulebook.py``."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from receivers import WebhookReceiver
from support import Admin, ServerProcess, bearer, running_server, unique
from test_automation import completed, create, jobs, webhook, whsec
from tidings.store.base import RuleRecord
from tidings.store.jobs import Delivery, next_health
from tidings.store.sql import SQLStore

SMALL_LIMITS = {
    "TIDINGS_ALLOW_PRIVATE_WEBHOOKS": "1",
    "TIDINGS_JOB_POLL_S": "0.2",
    "TIDINGS_WEBHOOK_DISABLE_AFTER_FAILURES": "3",
    "TIDINGS_WEBHOOK_DISABLE_AFTER_S": "0",
}


@pytest.fixture
def limited(tmp_path: Path, database_url: str) -> Iterator[ServerProcess]:
    with running_server(tmp_path, database_url=database_url, env=SMALL_LIMITS) as server:
        yield server


class Tenant:
    """A tenant with an admin (``tidings.admin`` through a role) and a
    member without it."""

    def __init__(self, hub: Admin) -> None:
        self.hub = hub
        self.id = hub.tenant()
        hub.role("owner", ["tidings.admin", "qms.read"], tenant_id=self.id)
        self.admin = hub.user(self.id, "boss", "owner")
        self.member = hub.user(self.id, "pat", "member")

    def seen(self, token: str, event_type: str, *, wait_s: float = 0.0) -> list[dict[str, Any]]:
        """Events of ``event_type`` in ``token``'s log; with ``wait_s``, until
        there is one (``rule.disabled`` is published just after the rule is
        disabled, not with it)."""
        deadline = time.monotonic() + wait_s
        while True:
            response = self.hub.http.get(
                "/api/events/log", params={"types": event_type}, headers=bearer(token)
            )
            assert response.status_code == 200, response.text
            items = list(response.json()["items"])
            if items or time.monotonic() >= deadline:
                return items
            time.sleep(0.1)

    def notified(self, token: str, *, wait_s: float = 0.0) -> list[dict[str, Any]]:
        """The ``rule.disabled`` notifications of ``token``'s user; with
        ``wait_s``, until there is one (they are written just after the
        ``rule.disabled`` event is published, not with it)."""
        deadline = time.monotonic() + wait_s
        while True:
            response = self.hub.http.get("/api/notifications", headers=bearer(token))
            assert response.status_code == 200, response.text
            found = [n for n in response.json()["items"] if n["type"] == "rule.disabled"]
            if found or time.monotonic() >= deadline:
                return found
            time.sleep(0.1)


def one_attempt_rule(tenant: str | None, url: str, secret: str) -> dict[str, Any]:
    return {
        "name": unique("hook"),
        "tenantId": tenant,
        "trigger": {"type": "course.completed"},
        "action": webhook(url, secret),
        "retry": {"schedule": [0]},  # one attempt per event: attempts == events
    }


def deliver_one(hub: Admin, tenant: str, rule_id: str, done: int) -> None:
    """Publish one event and wait until its job has finished."""
    hub.publish(completed(tenant)).raise_for_status()
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        found = jobs(hub, ruleId=rule_id)
        if len(found) >= done and all(j["status"] in ("dead", "succeeded") for j in found):
            return
        time.sleep(0.05)
    raise AssertionError(f"jobs of {rule_id}: {jobs(hub, ruleId=rule_id)}")


def rule_of(hub: Admin, rule_id: str) -> dict[str, Any]:
    return dict(hub.http.get(f"/api/admin/rules/{rule_id}").json())


def wait_disabled(hub: Admin, rule_id: str) -> dict[str, Any]:
    deadline = time.monotonic() + 10
    while (found := rule_of(hub, rule_id))["enabled"]:
        assert time.monotonic() < deadline, "rule still enabled"
        time.sleep(0.05)
    return found


def test_an_endpoint_that_keeps_failing_is_disabled_and_admins_are_told(
    limited: ServerProcess, receiver: WebhookReceiver
) -> None:
    hub = Admin(limited.url)
    tenant, secret, name = Tenant(hub), whsec(), unique("failing")
    url = receiver.endpoint(name, secret, *[500] * 10)
    body = one_attempt_rule(tenant.id, url, secret)
    rule_id = create(hub, body)["id"]
    for n in range(1, 3):
        deliver_one(hub, tenant.id, rule_id, n)
        assert rule_of(hub, rule_id)["enabled"], f"disabled after {n} failures"
    deliver_one(hub, tenant.id, rule_id, 3)
    disabled = wait_disabled(hub, rule_id)
    assert disabled["disabledReason"].startswith("3 consecutive failed deliveries since")
    assert "HTTP 500" in disabled["disabledReason"]

    (event,) = tenant.seen(tenant.admin, "rule.disabled", wait_s=10)
    assert event["entityId"] == rule_id and event["entityType"] == "rule"
    data = event["data"]
    assert data["cause"] == "failing" and data["consecutiveFailures"] == 3
    assert data["ruleId"] == rule_id and data["ruleName"] == body["name"]
    assert "HTTP 500" in data["lastError"]
    (note,) = tenant.notified(tenant.admin, wait_s=10)
    assert note["sourceEventId"] == event["id"] and body["name"] in note["title"]
    assert tenant.seen(tenant.member, "rule.disabled") == []
    assert tenant.notified(tenant.member) == []

    # Re-enabling starts a new count: two failures, a success, two failures.
    receiver.endpoint(name, secret, 500, 500, 200, 500, 500)
    assert hub.http.put(f"/api/admin/rules/{rule_id}", json=body).status_code == 200
    for n in range(4, 9):
        deliver_one(hub, tenant.id, rule_id, n)
    assert rule_of(hub, rule_id)["enabled"]
    assert len(receiver.to(name)) == 8
    assert len(tenant.seen(tenant.admin, "rule.disabled")) == 1
    hub.close()


def test_410_and_failures_take_the_same_path(
    limited: ServerProcess, receiver: WebhookReceiver
) -> None:
    """An endpoint that answers 410 once is disabled at once, announced the
    same way (cause ``gone``); a global rule is disabled without telling any
    tenant."""
    hub = Admin(limited.url)
    tenant, secret, name = Tenant(hub), whsec(), unique("gone")
    rule_id = create(
        hub, one_attempt_rule(tenant.id, receiver.endpoint(name, secret, 410), secret)
    )["id"]
    deliver_one(hub, tenant.id, rule_id, 1)
    assert "410" in wait_disabled(hub, rule_id)["disabledReason"]
    (event,) = tenant.seen(tenant.admin, "rule.disabled", wait_s=10)
    assert event["data"]["cause"] == "gone" and "consecutiveFailures" not in event["data"]
    assert len(tenant.notified(tenant.admin, wait_s=10)) == 1

    other, global_name = Tenant(hub), unique("global")
    url = receiver.endpoint(global_name, secret, *[500] * 5)
    global_rule = one_attempt_rule(None, url, secret)
    global_id = create(hub, global_rule)["id"]
    for n in range(1, 4):
        deliver_one(hub, other.id, global_id, n)
    assert "3 consecutive" in wait_disabled(hub, global_id)["disabledReason"]
    assert other.seen(other.admin, "rule.disabled") == []
    assert other.notified(other.admin) == []
    hub.close()


def test_failures_that_never_reach_the_endpoint_do_not_count(
    limited: ServerProcess, receiver: WebhookReceiver
) -> None:
    """Only webhook deliveries count: a failing e-mail rule (no SMTP here) is
    never disabled, however often it fails."""
    hub = Admin(limited.url)
    tenant = Tenant(hub)
    mail_rule = {
        **one_attempt_rule(tenant.id, "http://unused.example/", whsec()),
        "action": {
            "type": "send_email",
            "config": {"to": "ops@example.com", "subject": "s", "body": "b"},
        },
    }
    rule_id = create(hub, mail_rule)["id"]
    for n in range(1, 5):
        deliver_one(hub, tenant.id, rule_id, n)
    assert all(j["status"] == "dead" for j in jobs(hub, ruleId=rule_id))
    assert rule_of(hub, rule_id)["enabled"]
    hub.close()


# -- the store's half, on both backends ----------------------------------------


def test_a_run_of_failures_ends_at_a_success() -> None:
    fail = [Delivery("r", False, float(t)) for t in range(3)]
    assert next_health(None, fail) == {"failures": 3, "since": 0.0}
    assert next_health({"failures": 5, "since": -9.0}, fail) == {"failures": 8, "since": -9.0}
    assert next_health(None, [*fail, Delivery("r", True, 3.0)]) is None
    assert next_health(None, [Delivery("r", True, 0.0), *fail[1:]]) == {
        "failures": 2,
        "since": 1.0,
    }


deliveries = st.lists(
    st.builds(Delivery, st.just("r"), st.booleans(), st.floats(0, 1e6)), max_size=30
).map(lambda ds: sorted(ds, key=lambda d: d.at))


@given(deliveries, st.integers(0, 30))
def test_the_run_does_not_depend_on_how_attempts_were_batched(
    seq: list[Delivery], cut: int
) -> None:
    """Folding in one batch or two gives the same run: the failures after
    the last success, counted from the first of them."""
    whole = next_health(None, seq)
    assert next_health(next_health(None, seq[:cut]), seq[cut:]) == whole
    tail: list[Delivery] = []
    for delivery in seq:
        tail = [] if delivery.ok else [*tail, delivery]
    expected = {"failures": len(tail), "since": tail[0].at} if tail else None
    assert whole == expected


async def put_rule(store: SQLStore, rule_id: str) -> None:
    spec = {"trigger": {"type": "x.y"}, "action": {"type": "trigger_webhook", "config": {}}}
    now = time.time()
    await store.jobs.put_rule(
        RuleRecord(rule_id, "t1", "r", spec, 0, True, None, created_at=now, updated_at=now)
    )


async def test_both_limits_must_be_passed_and_a_rule_is_disabled_once(store: SQLStore) -> None:
    await put_rule(store, "rul_a")
    version = await store.jobs.rules_version()

    async def record(*deliveries: Delivery) -> list[str]:
        found = await store.jobs.record_deliveries(deliveries, failures=3, window_s=10)
        return [f.rule_id for f in found]

    assert await record(*(Delivery("rul_a", False, t) for t in (0.0, 1.0, 2.0))) == []  # 2 s
    assert await record(Delivery("rul_a", False, 9.0)) == []  # 4 failures, 9 s
    assert await record(Delivery("rul_a", True, 9.5)) == []  # a success: a new run
    assert await record(*(Delivery("rul_a", False, t) for t in (10.0, 11.0, 20.0))) == ["rul_a"]
    stored = await store.jobs.get_rule("rul_a")
    assert stored is not None and stored.spec["health"] == {"failures": 3, "since": 10.0}
    assert await store.jobs.rules_version() == version  # counting is not an edit

    first = await store.jobs.disable_rule("rul_a", "failing", time.time())
    assert first is not None and not first.enabled and first.disabled_reason == "failing"
    assert await store.jobs.disable_rule("rul_a", "again", time.time()) is None
    assert await store.jobs.record_deliveries([], failures=3, window_s=0) == []
    with_off = await store.jobs.record_deliveries(
        [Delivery("rul_a", False, 30.0)], failures=0, window_s=0
    )
    assert with_off == []  # 0 failures: never disable


def test_health_is_not_part_of_the_rule_api(
    limited: ServerProcess, receiver: WebhookReceiver
) -> None:
    """A counting rule still reads, edits and rotates like any other."""
    hub = Admin(limited.url)
    tenant, secret, name = Tenant(hub), whsec(), unique("edit")
    body = one_attempt_rule(tenant.id, receiver.endpoint(name, secret, 500), secret)
    rule_id = create(hub, body)["id"]
    deliver_one(hub, tenant.id, rule_id, 1)
    shown = rule_of(hub, rule_id)
    assert "health" not in shown
    rotated = hub.http.post(f"/api/admin/rules/{rule_id}/rotate-secret", json={})
    assert rotated.status_code == 200, rotated.text
    renamed = hub.http.put(f"/api/admin/rules/{rule_id}", json={**body, "name": "renamed"})
    assert renamed.status_code == 200, renamed.text
    assert httpx.get(f"{limited.url}/readyz").status_code == 200
    hub.close()
