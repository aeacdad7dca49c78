"""Failed work and integrations in Chromium: a dead job retried from its
row's Retry button and another discarded with a reason (both checked
through the JSON API), the replay's dry-run count then the replay, an integration created
and its secret rotated; screenshots ``admin-jobs``, ``admin-jobs-replay``, ``admin-integrations``
and ``admin-integration``."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from playwright.sync_api import Dialog

from admin_ui import AdminTab
from dead_jobs import completed, dead_job, failing_rule, job, wait_status
from receivers import WebhookReceiver
from support import Admin, ServerProcess, running_server, unique

pytestmark = pytest.mark.browser
TESTS = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def ui_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    env = {"TIDINGS_ALLOW_PRIVATE_WEBHOOKS": "1", "TIDINGS_JOB_POLL_S": "0.2"}
    with running_server(tmp_path_factory.mktemp("admin-jobs"), env=env) as server:
        yield server


@pytest.fixture
def hub(ui_server: ServerProcess) -> Iterator[Admin]:
    client = Admin(ui_server.url)
    yield client
    client.close()


def accept_confirms(tab: AdminTab) -> list[str]:
    """Accept hx-confirm's dialogs; the messages they showed."""
    shown: list[str] = []

    def accept(dialog: Dialog) -> None:
        shown.append(dialog.message)
        dialog.accept()

    tab.page.on("dialog", accept)
    return shown


def test_a_dead_job_is_retried_from_its_row(
    admin_tab: AdminTab, hub: Admin, receiver: WebhookReceiver
) -> None:
    tenant = hub.tenant()
    dead = dead_job(hub, receiver, tenant)
    other = dead_job(hub, receiver, tenant)
    page = admin_tab.open(f"/admin/jobs?tenant={tenant}")
    row = page.locator(f"#job-{dead['id']}")
    row.locator("summary").click()  # the attempts, for the screenshot
    assert "HTTP 500" in row.inner_text()
    admin_tab.shot("admin-jobs")
    row.get_by_role("button", name="Retry").click()
    page.locator(f"#job-{dead['id']} .alert.ok").wait_for()
    assert job(hub, dead["id"])["status"] in ("pending", "running", "succeeded")
    wait_status(hub, dead["id"], "succeeded")
    assert job(hub, other["id"])["status"] == "dead"  # only that row's job

    shown = accept_confirms(admin_tab)  # then the rest of the filtered set, in bulk
    admin_tab.open(f"/admin/jobs?tenant={tenant}")
    page.get_by_role("button", name="Retry all 1").click()
    page.get_by_text("Retried 1 job").wait_for()
    assert shown and "Retry 1 job of this filter" in shown[0]
    assert page.locator("#job-tabs a[aria-current] .count").inner_text() == "0"  # out of band
    wait_status(hub, other["id"], "succeeded")


def test_a_dead_job_is_discarded_with_a_reason(
    admin_tab: AdminTab, hub: Admin, receiver: WebhookReceiver
) -> None:
    dead = dead_job(hub, receiver, hub.tenant())
    shown = accept_confirms(admin_tab)
    page = admin_tab.open(f"/admin/jobs?tenant={dead['tenantId']}")
    row = page.locator(f"#job-{dead['id']}")
    row.get_by_label("Reason").fill("customer closed the account")
    row.get_by_role("button", name="Discard").click()
    page.locator(f"#job-{dead['id']} .badge", has_text="discarded").wait_for()
    assert shown and "Discard job" in shown[0]
    after = job(hub, dead["id"])
    assert after["status"] == "discarded"
    assert after["discardReason"] == "customer closed the account"


def test_the_replay_counts_before_it_queues(
    admin_tab: AdminTab, hub: Admin, receiver: WebhookReceiver
) -> None:
    tenant = hub.tenant()
    since = (datetime.now(UTC) - timedelta(minutes=1)).strftime("%Y-%m-%dT%H:%M:%S")
    for user in ("u1", "u2"):
        hub.publish(completed(tenant, user)).raise_for_status()
    rule_id = failing_rule(hub, receiver, tenant)  # made after the events: they have no job
    until = (datetime.now(UTC) + timedelta(minutes=1)).strftime("%Y-%m-%dT%H:%M:%S")
    shown = accept_confirms(admin_tab)
    page = admin_tab.open("/admin/jobs?status=pending")
    page.fill("#r-since", since)
    page.fill("#r-until", until)
    page.fill("#r-tenant", tenant)
    page.get_by_role("button", name="Count (dry run)").click()
    page.locator(".replay-count").wait_for()
    assert "2 jobs would be queued" in page.locator(".replay-count").inner_text()
    page.locator(".replay").scroll_into_view_if_needed()
    admin_tab.shot("admin-jobs-replay")
    assert hub.http.get("/api/admin/jobs", params={"ruleId": rule_id}).json()["items"] == []
    page.get_by_role("button", name="Replay 2 jobs").click()
    page.get_by_text("2 jobs queued").wait_for()
    assert shown and "Queue 2 jobs" in shown[0]
    queued = hub.http.get("/api/admin/jobs", params={"ruleId": rule_id}).json()["items"]
    assert len(queued) == 2


def test_an_integration_is_created_and_its_secret_rotated(
    admin_tab: AdminTab, ui_server: ServerProcess, hub: Admin
) -> None:
    sys.path.insert(0, str(TESTS / "server"))
    from test_admin_integrations import active_tenant, call

    admin_tab.page.context.grant_permissions(["clipboard-read", "clipboard-write"])
    name, tenant = unique("billing"), active_tenant(hub)
    page = admin_tab.open("/admin/integrations")
    page.fill("#i-name", name)
    page.get_by_role("button", name="Create integration").click()
    box = page.locator("#new-secret")
    box.wait_for()
    secret = box.input_value()
    page.get_by_role("button", name="Copy").click()
    page.get_by_role("button", name="Copied").wait_for()
    assert page.evaluate("navigator.clipboard.readText()") == secret
    msg_id = unique("msg_")
    for _ in range(2):  # the second is a duplicate
        assert call(ui_server.url, name, secret, tenant, msg_id) == 200
    assert call(ui_server.url, name, "whsec_" + "A" * 32, tenant) == 401
    admin_tab.open("/admin/integrations")
    page.get_by_role("link", name=name).wait_for()
    admin_tab.shot("admin-integrations")

    shown = accept_confirms(admin_tab)
    admin_tab.open(f"/admin/integrations/{name}")
    assert page.locator("table.calls tbody tr").count() == 3
    page.get_by_role("button", name="Rotate secret").click()
    rotated = page.locator("#new-secret")
    rotated.wait_for()
    assert shown and "Rotate the secret" in shown[0]
    assert rotated.input_value() != secret
    assert call(ui_server.url, name, secret, tenant) == 401
    assert call(ui_server.url, name, rotated.input_value(), tenant) == 409  # signed ok; SUSPENDED
    admin_tab.shot("admin-integration")
