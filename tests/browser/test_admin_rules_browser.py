"""The catalog and rules pages in Chromium: the catalog search filters as
you type, a type's page, a rule disabled from its row's Disable button
(checked through the JSON API), the builder's condition rows and its dry
run over the log; screenshots admin-catalog, admin-catalog-type,
admin-rules, admin-rule-builder."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from admin_ui import AdminTab
from support import Admin, ServerProcess, unique
from test_browser import WAIT_MS

pytestmark = pytest.mark.browser


@pytest.fixture
def admin(ui_server: ServerProcess) -> Iterator[Admin]:
    client = Admin(ui_server.url)
    yield client
    client.close()


def wait_until(condition: Callable[[], bool]) -> None:
    """Poll ``condition`` (the page's CSP forbids wait_for_function's eval)."""
    deadline = time.monotonic() + WAIT_MS / 1000
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def completed(tenant_id: str, course: str, score: int) -> dict[str, Any]:
    return {
        "type": "course.completed",
        "tenantId": tenant_id,
        "entityId": course,
        "data": {
            "courseId": course,
            "userId": "u1",
            "completedAt": "2026-11-22T10:00:00Z",
            "score": score,
        },
    }


def make_rule(admin: Admin, tenant: str, name: str) -> str:
    body = {
        "name": name,
        "tenantId": tenant,
        "priority": 3,
        "trigger": {
            "type": "course.completed",
            "conditions": {"all": [{"path": "data.score", "op": "gte", "value": 80}]},
        },
        "action": {
            "type": "send_notification",
            "config": {
                "audience": "permission:tidings.admin",
                "title": "Completed {{ data.courseId }}",
            },
        },
    }
    answer = admin.http.post("/api/admin/rules", json=body)
    answer.raise_for_status()
    return str(answer.json()["id"])


def test_the_catalog_search_filters_as_you_type(admin_tab: AdminTab, admin: Admin) -> None:
    tenant = admin.tenant(name="Acme Training")
    admin.publish(completed(tenant, "course-101", 93)).raise_for_status()
    page = admin_tab.open("/admin/catalog")
    rows = page.locator("#catalog-rows tr[data-type]")
    everything = rows.count()
    assert everything > 20
    assert page.locator('#catalog-rows span[lang="ar"][dir="rtl"]').count() > 10
    page.locator("input[type=search]").press_sequentially("phish", delay=40)
    wait_until(lambda: 0 < rows.count() < everything)
    names = rows.evaluate_all("rows => rows.map(r => r.innerText.toLowerCase())")
    assert names and all("phish" in n for n in names)
    page.locator("input[type=search]").fill("zzz-nothing")
    page.locator("#catalog-rows .no-match").wait_for()
    page.locator("input[type=search]").fill("")
    wait_until(lambda: rows.count() == everything)
    page.locator("input[type=search]").press_sequentially("course", delay=20)
    wait_until(lambda: 0 < rows.count() < everything)
    assert page.locator('#catalog-rows span[lang="ar"][dir="rtl"]').count() > 0
    admin_tab.shot("admin-catalog")
    page = admin_tab.open(f"/admin/catalog/course.completed?tenant={tenant}")
    assert "course-101" in page.locator("body").inner_text()
    assert page.locator("pre.schema").count() >= 1 and page.locator("pre.example").is_visible()
    admin_tab.shot("admin-catalog-type")


def test_a_rule_is_disabled_from_its_rows_disable_button(admin_tab: AdminTab, admin: Admin) -> None:
    tenant = admin.tenant(name="Acme Training")
    rule_id = make_rule(admin, tenant, "Congratulate high scorers")
    make_rule(admin, tenant, "Notify the LMS team")
    page = admin_tab.open("/admin/rules")
    row = page.locator(f"#rule-{rule_id}")
    assert "data.score ≥ 80" in row.inner_text()
    admin_tab.shot("admin-rules")
    row.get_by_role("button", name="Disable", exact=True).click()
    page.locator(f"#rule-{rule_id}").get_by_role("button", name="Enable", exact=True).wait_for()
    assert admin.http.get(f"/api/admin/rules/{rule_id}").json()["enabled"] is False
    page.locator(f"#rule-{rule_id}").get_by_role("button", name="Enable", exact=True).click()
    page.locator(f"#rule-{rule_id}").get_by_role("button", name="Disable", exact=True).wait_for()
    assert admin.http.get(f"/api/admin/rules/{rule_id}").json()["enabled"] is True
    page.once("dialog", lambda dialog: dialog.accept())
    page.locator(f"#rule-{rule_id}").get_by_role("button", name="Delete").click()
    page.locator(f"#rule-{rule_id}").wait_for(state="detached")
    assert admin.http.get(f"/api/admin/rules/{rule_id}").status_code == 404


def test_the_builder_dry_runs_over_the_log_and_saves_its_condition_rows(
    admin_tab: AdminTab, admin: Admin
) -> None:
    tenant = admin.tenant(name="Acme Training")
    for i, score in enumerate((95, 40, 88, 72)):
        admin.publish(completed(tenant, f"course-{i}", score)).raise_for_status()
    page = admin_tab.open("/admin/rules/new")
    name = unique("Certificate for high scores ")
    page.fill("#name", name)
    page.select_option("#tenant", tenant)
    page.fill("#trigger", "course.completed")
    page.get_by_role("button", name="Add condition").click()
    page.locator(".cond-row input.path").fill("data.score")
    page.locator(".cond-row select").select_option("gte")
    page.locator(".cond-row input.value").fill("80")
    page.select_option("#action_type", "send_email")
    page.fill("#cfg-to", "ops@example.com")  # the action's fields write its JSON
    assert '"to": "ops@example.com"' in page.input_value("#config")
    page.select_option("#action_type", "send_notification")
    assert page.locator("#cfg-audience").is_visible()
    page.fill("#cfg-audience", "permission:tidings.admin")
    page.fill("#cfg-title", "Certificate for {{ data.courseId }}")
    page.get_by_role("button", name="Preview templates").click()
    page.locator("#preview pre").wait_for()
    assert "Certificate for course-1" in page.locator("#preview").inner_text()  # the sample
    page.check("input[name=source][value=log]")
    page.fill("input[name=limit]", "10")
    page.get_by_role("button", name="Dry run", exact=True).click()
    results = page.locator("#dry-run table.dry-run")
    results.wait_for()
    text = page.locator("#dry-run").inner_text()
    assert "2 would have run the action" in text and "the conditions do not match" in text
    assert results.locator("tr.match").count() == 2 and results.locator("tr.miss").count() == 2
    page.keyboard.press("Control+Home")  # a full-page shot with the top bar at the top
    admin_tab.shot("admin-rule-builder")
    page.get_by_role("button", name="Create rule").click()
    page.wait_for_url(lambda url: "/admin/rules?saved=" in url)
    (saved,) = [r for r in admin.http.get("/api/admin/rules").json()["items"] if r["name"] == name]
    assert saved["trigger"]["conditions"] == {
        "all": [{"path": "data.score", "op": "gte", "value": 80}]
    }
    assert saved["tenantId"] == tenant
    assert saved["action"]["config"]["title"] == "Certificate for {{ data.courseId }}"
