"""Signing in and out of the portal in a real browser: logged-out visitors
go to /login, each role lands on its page, a wrong password says so, and
pages not for a role say where to go instead."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from playwright.sync_api import Browser

from browser_portal import (  # noqa: F401
    LANDING,
    Tab,
    browser_fixture,
    new_tab,
    people_fixture,
    sign_in,
)
from portal_server import PortalServer

pytestmark = pytest.mark.browser
ROLES = {
    "tenant@example.com": "TENANT",
    "landlord@example.com": "LANDLORD",
    "contractor@example.com": "CONTRACTOR",
    "ops@example.com": "OPS",
}


@pytest.mark.parametrize("path", ["/", "/tickets", "/maintenance", "/invoices", "/ops"])
def test_logged_out_visitors_go_to_login(browser: Browser, portal: PortalServer, path: str) -> None:
    context, tab = new_tab(browser, portal.url)
    try:
        tab.open(path)
        tab.page.wait_for_url(lambda url: "/login" in url)
        assert tab.page.locator('input[name="email"]').is_visible()
        assert tab.page.locator('input[name="password"]').is_visible()
        assert tab.page.locator('button[type="submit"]').is_visible()
        tab.assert_clean()
    finally:
        context.close()


@pytest.mark.parametrize("email", sorted(LANDING))
def test_each_role_lands_on_its_page(people: Callable[..., Tab], email: str) -> None:
    tab = people(email)  # sign_in waits for the landing page and a live stream
    assert tab.page.url == tab.url + LANDING[email]
    assert tab.page.locator(".who-role").get_attribute("data-role") == ROLES[email]
    tab.page.wait_for_selector(".bell-badge", state="attached")


def test_a_wrong_password_is_refused_on_the_page(browser: Browser, portal: PortalServer) -> None:
    context, tab = new_tab(browser, portal.url)
    try:
        tab.open("/login")
        tab.page.fill('[name="email"]', "tenant@example.com")
        tab.page.fill('[name="password"]', "not-the-password")
        tab.page.click('button[type="submit"]')
        alert = tab.page.locator('[role="alert"]')
        alert.wait_for()
        assert "wrong email or password" in alert.inner_text()
        assert tab.page.url.endswith("/login")
        # The browser logs the 401 answer itself; nothing else went wrong.
        tab.errors = [e for e in tab.errors if "401" not in e]
        tab.assert_clean()
    finally:
        context.close()


def test_back_to_the_asked_page_after_login_and_out_on_sign_out(
    browser: Browser, portal: PortalServer
) -> None:
    context, tab = new_tab(browser, portal.url)
    try:
        tab.open("/invoices")
        tab.page.wait_for_url(lambda url: "/login?next=" in url)
        sign_in(tab, "landlord@example.com", then="/invoices")
        tab.page.click("text=Sign out")
        tab.page.wait_for_url(tab.url + "/login")
        tab.open("/maintenance")
        tab.page.wait_for_url(lambda url: "/login" in url)
        tab.assert_clean()
    finally:
        context.close()


def test_a_page_of_another_role_says_where_to_go(people: Callable[..., Tab]) -> None:
    tab = people("contractor@example.com")
    tab.open("/maintenance")
    tab.page.wait_for_selector("text=This page is not for your role")
    tab.page.click("text=Go to Jobs")
    tab.page.wait_for_url(tab.url + "/jobs")
