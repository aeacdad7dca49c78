"""The live log in Chromium: a new event published through the API appears
at the top within 5 s without a reload, Pause stops new rows (and Resume
brings them), a row leads to the event's page, the Export link, and no
script error or CSP refusal anywhere. Screenshots ``admin-log``,
``admin-event``."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
from playwright.sync_api import ConsoleMessage, expect

from admin_ui import AdminTab
from support import Admin, ServerProcess

pytestmark = pytest.mark.browser
LIVE_MS = 5_000
ACTIONS = ("CREATED", "UPDATED", "STATUS_CHANGED", "ASSIGNED", "UPDATED", "DELETED")


@pytest.fixture
def admin(ui_server: ServerProcess) -> Iterator[Admin]:
    client = Admin(ui_server.url)
    yield client
    client.close()


def car_event(tenant: str, n: int) -> dict[str, Any]:
    return {
        "type": "qms.car.updated",
        "tenantId": tenant,
        "entityType": "car",
        "entityId": f"CAR-2026-{n:04d}",
        "action": ACTIONS[n % len(ACTIONS)],
        "actor": {"userId": f"u{n % 3}", "name": ("Rana Haddad", "Omar Saleh", "Lina Aziz")[n % 3]},
        "data": {"carId": f"CAR-2026-{n:04d}", "status": "open"},
    }


def publish(admin: Admin, event: dict[str, Any]) -> dict[str, Any]:
    answer = admin.publish(event)
    assert answer.status_code == 202, answer.text
    return dict(answer.json())


def csp_watch(tab: AdminTab) -> list[str]:
    refused: list[str] = []

    def note(message: ConsoleMessage) -> None:
        if "Content Security Policy" in message.text:
            refused.append(message.text)

    tab.page.on("console", note)
    return refused


def test_new_events_appear_live_and_pause_stops_them(admin_tab: AdminTab, admin: Admin) -> None:
    tenant = admin.tenant(name="Al Noor Hospital")
    for n in range(1, 9):
        publish(admin, car_event(tenant, n))
    refused = csp_watch(admin_tab)
    page = admin_tab.open(f"/admin/log?tenantId={tenant}")
    rows = page.locator("#log-rows tr.log-row")
    expect(rows).to_have_count(8)
    fresh = publish(admin, car_event(tenant, 9))
    top = page.locator("#log-rows tr.log-row").first
    expect(top).to_have_attribute("data-position", str(fresh["position"]), timeout=LIVE_MS)
    expect(rows).to_have_count(9)
    admin_tab.shot("admin-log")

    page.get_by_role("button", name="Pause").click()
    expect(page.get_by_role("button", name="Resume")).to_be_visible()
    time.sleep(1.2)  # a poll already under way when Pause was pressed may still land
    settled = rows.count()
    held = publish(admin, car_event(tenant, 10))
    time.sleep(3)
    assert rows.count() == settled  # paused: nothing new
    page.get_by_role("button", name="Resume").click()
    expect(top).to_have_attribute("data-position", str(held["position"]), timeout=LIVE_MS)

    export = page.get_by_role("link", name="Export")
    assert export.get_attribute("href") == f"/admin/log/export?tenantId={tenant}"
    with page.expect_download() as download:
        export.click()
    assert download.value.suggested_filename == "tidings-log.ndjson"
    assert not refused, refused
    admin_tab.assert_clean()


def test_filters_and_the_event_page(admin_tab: AdminTab, admin: Admin) -> None:
    tenant = admin.tenant(name="Al Noor Hospital")
    rule = {
        "name": "Notify the quality lead",
        "tenantId": tenant,
        "trigger": {"type": "qms.car.updated"},
        "action": {"type": "send_notification", "config": {"audience": "user:u1", "title": "CAR"}},
    }
    made = admin.http.post("/api/admin/rules", json=rule)
    assert made.status_code == 201, made.text
    for n in range(20, 24):
        publish(admin, car_event(tenant, n))
    wanted = publish(admin, {**car_event(tenant, 77), "audiences": ["role:quality_lead"]})
    refused = csp_watch(admin_tab)
    page = admin_tab.open(f"/admin/log?tenantId={tenant}")
    page.fill("#f-entityIdContains", "0077")
    page.get_by_role("button", name="Filter").click()
    page.wait_for_url(lambda url: "entityIdContains=0077" in url)
    rows = page.locator("#log-rows tr.log-row")
    expect(rows).to_have_count(1)
    rows.first.get_by_role("link", name="qms.car.updated").click()
    page.wait_for_url(lambda url: f"/admin/log/{wanted['id']}" in url)
    expect(page.get_by_role("heading", name="Envelope")).to_be_visible()
    expect(page.locator("pre.envelope")).to_contain_text("CAR-2026-0077")
    expect(page.locator(".badge", has_text="role:quality_lead")).to_be_visible()
    expect(page.locator("code", has_text=made.json()["id"]).first).to_be_visible()
    page.wait_for_timeout(1500)  # let the notification job finish for the picture
    page.reload()
    admin_tab.shot("admin-event")
    bad = admin_tab.open(f"/admin/log?tenantId={tenant}&since=not-a-time")
    expect(bad.locator(".alert.error")).to_contain_text("Since (UTC)")
    assert not refused, refused
    admin_tab.assert_clean()
