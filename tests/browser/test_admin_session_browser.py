"""Logging in and out of the Integration Manager in Chromium."""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.sync_api import Browser

from admin_ui import AdminTab, log_in, new_tab
from support import Admin, ServerProcess, unique
from test_browser import WAIT_MS

pytestmark = pytest.mark.browser


def test_a_page_without_a_session_goes_to_the_login_form(
    browser: Browser, ui_server: ServerProcess
) -> None:
    context, tab = new_tab(browser, ui_server.url)
    try:
        page = tab.open("/admin")
        page.wait_for_url(lambda url: url.endswith("/admin/login?next=/admin"))
        assert page.locator("input[name=key]").is_visible()
        tab.shot("admin-login")
        page.fill("input[name=key]", "not-the-key")
        page.click("button[type=submit]")
        page.locator(".alert.error").wait_for(timeout=WAIT_MS)
        assert "not valid" in page.locator(".alert.error").inner_text()
        assert context.cookies() == []  # a bad key sets nothing
        tab.assert_clean()
    finally:
        context.close()


def test_log_in_then_out(browser: Browser, ui_server: ServerProcess) -> None:
    context, tab = new_tab(browser, ui_server.url)
    try:
        log_in(tab)
        (cookie,) = context.cookies()
        assert cookie["httpOnly"] and cookie["sameSite"] == "Strict" and cookie["path"] == "/admin"
        assert cookie["expires"] > 0  # expiring, not a browser-session cookie
        tab.page.get_by_role("button", name="Log out").click()
        tab.page.wait_for_url(lambda url: url.endswith("/admin/login"))
        assert context.cookies() == []
        tab.open("/admin")
        tab.page.wait_for_url(lambda url: url.endswith("/admin/login?next=/admin"))
        tab.assert_clean()
    finally:
        context.close()


def test_screenshots_land_among_the_artefacts(admin_tab: AdminTab) -> None:
    path: Path = admin_tab.shot("admin-landing")
    assert path.stat().st_size > 1000


def test_a_form_with_a_wrong_csrf_token_or_from_another_site_changes_nothing(
    admin_tab: AdminTab, ui_server: ServerProcess
) -> None:
    admin = Admin(ui_server.url)
    try:
        page = admin_tab.open("/admin/tenants")
        forged = unique("forged")
        page.evaluate(
            "() => document.querySelector('form[action=\"/admin/tenants\"] input[name=csrf]')"
            ".value = '0'.repeat(32)"
        )
        page.fill("input[name=id]", forged)
        page.fill("input[name=name]", "Forged")
        page.get_by_role("button", name="Create tenant").click()
        page.locator(".alert.error").wait_for(timeout=WAIT_MS)
        assert "CSRF" in page.locator(".alert.error").inner_text()
        admin_tab.shot("admin-csrf-refused")
        assert admin.http.get(f"/api/admin/tenants/{forged}").status_code == 404

        # another site's page posting to the admin UI (the cookie is SameSite=Strict)
        elsewhere = unique("elsewhere")
        page.set_content(
            f'<form method="post" action="{ui_server.url}/admin/tenants">'
            f'<input name="id" value="{elsewhere}"><input name="name" value="x">'
            '<button type="submit">Go</button></form>'
        )
        page.click("button")
        page.wait_for_load_state()
        assert admin.http.get(f"/api/admin/tenants/{elsewhere}").status_code == 404
        assert admin_tab.open("/admin").url.endswith("/admin")  # still logged in
    finally:
        admin.close()
