"""The tenants pages in Chromium: a tenant moved through its lifecycle from
its page and an API key created and revoked, each checked through the JSON
admin API; screenshots ``admin-tenants`` and ``admin-tenant``."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from playwright.sync_api import Browser

from admin_ui import AdminTab, log_in, new_tab
from support import Admin, ServerProcess
from test_browser import WAIT_MS

pytestmark = pytest.mark.browser


@pytest.fixture
def admin(ui_server: ServerProcess) -> Iterator[Admin]:
    client = Admin(ui_server.url)
    yield client
    client.close()


def tenant_with_members(admin: Admin, name: str) -> str:
    tenant = admin.tenant(name=name)
    admin.http.post(f"/api/admin/tenants/{tenant}/transition", json={"to": "ACTIVE"})
    admin.role("member", ["orders.read"], tenant)
    admin.user(tenant, "alice", grant=["invoices.read"])
    admin.user(tenant, "bob", "manager")
    admin.api_key(["publish"], tenant)
    for _ in range(3):
        admin.publish({"type": "qms.car.updated", "tenantId": tenant}).raise_for_status()
    return tenant


def state_of(admin: Admin, tenant: str) -> str:
    return str(admin.http.get(f"/api/admin/tenants/{tenant}").json()["state"])


def test_the_tenant_list(admin_tab: AdminTab, admin: Admin) -> None:
    tenant = tenant_with_members(admin, "Harbour Logistics")
    admin.tenant(name="Fresh Start")
    page = admin_tab.open("/admin/tenants")
    row = page.locator("table.tenants tr", has_text="Harbour Logistics")
    assert row.locator(".badge").inner_text() == "ACTIVE"
    # users, live keys, events (three published, one from the move to ACTIVE)
    assert row.locator("td.num").all_inner_texts() == ["2", "1", "4"]
    admin_tab.shot("admin-tenants")
    row.get_by_role("link", name="Harbour Logistics").click()
    page.wait_for_url(lambda url: url.endswith(f"/admin/tenants/{tenant}"))


def test_a_tenant_transition_from_its_page(admin_tab: AdminTab, admin: Admin) -> None:
    tenant = tenant_with_members(admin, "Northwind Traders")
    page = admin_tab.open(f"/admin/tenants/{tenant}")
    moves = page.locator("#lifecycle ul.moves button").all_inner_texts()
    assert sorted(moves) == ["Deprovision", "Make read-only", "Suspend"]  # ACTIVE's targets
    page.on("dialog", lambda dialog: dialog.accept())  # hx-confirm
    page.fill("#reason-SUSPENDED", "invoice 2041 unpaid")
    page.get_by_role("button", name="Suspend").click()
    page.locator("#lifecycle .alert.ok").wait_for(timeout=WAIT_MS)
    assert state_of(admin, tenant) == "SUSPENDED"
    log = admin.http.get(f"/api/admin/tenants/{tenant}/lifecycle").json()["items"]
    assert (log[-1]["to"], log[-1]["reason"]) == ("SUSPENDED", "invoice 2041 unpaid")
    assert "invoice 2041 unpaid" in page.locator("table.lifecycle-log").inner_text()
    assert page.get_by_role("button", name="Activate").is_visible()  # SUSPENDED's targets now
    page.evaluate("window.scrollTo(0, 0)")
    admin_tab.shot("admin-tenant")


def test_an_api_key_created_and_revoked(admin_tab: AdminTab, admin: Admin) -> None:
    tenant = admin.tenant(name="Key Holders")
    page = admin_tab.open(f"/admin/tenants/{tenant}")
    page.fill("#key-name", "billing-service")
    page.get_by_role("button", name="Create key").click()
    secret = page.locator("#new-key-secret")
    secret.wait_for(timeout=WAIT_MS)
    key = secret.input_value()
    published = httpx.post(
        f"{admin.url}/api/events",
        json={"type": "qms.car.updated"},
        headers={"Authorization": f"Bearer {key}"},
    )
    assert published.status_code == 202  # the key shown works
    page.evaluate("window.scrollTo(0, 0)")  # the sticky top bar at the top of the shot
    admin_tab.shot("admin-tenant-new-key")
    (listed,) = admin.http.get("/api/admin/api-keys", params={"tenantId": tenant}).json()["items"]
    assert listed["name"] == "billing-service" and listed["revokedAt"] is None
    page.on("dialog", lambda dialog: dialog.accept())
    row = page.locator(f'tr[data-key="{listed["id"]}"]')
    row.get_by_role("button", name="Revoke").click()
    row.locator(".badge.bad", has_text="revoked").wait_for(timeout=WAIT_MS)
    (listed,) = admin.http.get("/api/admin/api-keys", params={"tenantId": tenant}).json()["items"]
    assert listed["revokedAt"] is not None
    refused = httpx.post(
        f"{admin.url}/api/events",
        json={"type": "qms.car.updated"},
        headers={"Authorization": f"Bearer {key}"},
    )
    assert refused.status_code == 401
    assert page.locator("#new-key-secret").count() == 0  # the secret is gone from the page


def test_a_user_edited_from_its_row_and_deleted(admin_tab: AdminTab, admin: Admin) -> None:
    tenant = tenant_with_members(admin, "Edit Works")
    page = admin_tab.open(f"/admin/tenants/{tenant}")
    row = page.locator("#users tr", has_text="alice")
    row.get_by_role("button", name="Edit").click()  # fills the form from the row
    assert page.input_value("#user-id") == "alice"
    assert page.input_value("#user-grants") == "invoices.read"
    page.fill("#user-role", "manager")
    page.get_by_role("button", name="Save user").click()
    page.locator("#users .alert.ok", has_text="Updated user alice").wait_for(timeout=WAIT_MS)
    user = admin.http.get(f"/api/admin/tenants/{tenant}/users/alice").json()
    assert user["systemRole"] == "manager"
    assert user["permissionOverrides"]["grant"] == ["invoices.read"]
    page.on("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name="Delete bob").click()
    page.locator("#users .alert.ok", has_text="Deleted user bob").wait_for(timeout=WAIT_MS)
    listed = admin.http.get(f"/api/admin/tenants/{tenant}/users").json()["items"]
    assert [u["userId"] for u in listed] == ["alice"]
    page.fill("#user-id", "carol")
    page.fill("#user-role", "not a role!")
    page.get_by_role("button", name="Save user").click()
    page.locator("#users .alert.error", has_text="System role").wait_for(timeout=WAIT_MS)


def test_a_tenant_bound_session_sees_only_its_tenant(
    browser: Browser, ui_server: ServerProcess, admin: Admin
) -> None:
    mine = tenant_with_members(admin, "Bound Tenant")
    admin.tenant(name="Someone Else")
    context, tab = new_tab(browser, ui_server.url)
    try:
        log_in(tab, admin.api_key(["admin"], mine), then="/admin/tenants")
        names = tab.page.locator("table.tenants tbody tr strong").all_inner_texts()
        assert names == ["Bound Tenant"]
        assert tab.page.locator("#tenant-id").count() == 0  # no create form
        tab.page.get_by_role("link", name="Bound Tenant").click()
        tab.page.wait_for_url(lambda url: url.endswith(f"/admin/tenants/{mine}"))
        assert tab.page.locator("#lifecycle ul.moves").count() == 0
        assert "Only a platform credential" in tab.page.locator("#lifecycle").inner_text()
        tab.page.evaluate("window.scrollTo(0, 0)")
        tab.shot("admin-tenant-bound")
        tab.assert_clean()
    finally:
        context.close()
