"""The hub mounted under ``/hub`` of a Starlette host, in Chromium: the
Integration Manager's login, navigation, live log (htmx polls) and links
stay below the prefix, and the ``/live`` page's tidings.js connects there
and shows a new event. No request of either page fails or leaves the
prefix. Screenshots ``embedded-admin-log``, ``embedded-live``."""

from __future__ import annotations

from collections.abc import Iterator
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import Browser, Page, Response, expect

from admin_ui import SCREENSHOTS, log_in, new_tab
from embedding import Host, running_host
from support import Admin, unique
from test_browser import WAIT_MS, car, open_live, row

pytestmark = pytest.mark.browser
PREFIX = "/hub"


@pytest.fixture(scope="module")
def host(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Host]:
    with running_host(tmp_path_factory.mktemp("embedded"), "starlette", PREFIX) as running:
        yield running


@pytest.fixture
def admin(host: Host) -> Iterator[Admin]:
    client = Admin(host.hub)
    yield client
    client.close()


def watch_requests(page: Page) -> tuple[list[str], list[str]]:
    """(paths requested outside the prefix, responses that failed)."""
    outside: list[str] = []
    failed: list[str] = []

    def note(response: Response) -> None:
        path = urlsplit(response.url).path
        if not path.startswith(PREFIX + "/"):
            outside.append(path)
        if response.status >= 400:
            failed.append(f"{response.status} {path}")

    page.on("response", note)
    return outside, failed


def test_the_admin_ui_stays_below_the_prefix(browser: Browser, host: Host, admin: Admin) -> None:
    context, tab = new_tab(browser, host.hub)
    try:
        outside, failed = watch_requests(tab.page)
        log_in(tab)  # the form at /hub/admin/login, landing on /hub/admin
        page = tab.page
        tenant = admin.tenant(name="Embedded tenant")
        page.get_by_role("link", name="Live log").click()
        page.wait_for_url(f"{host.hub}/admin/log")
        fresh = admin.publish({**car(tenant, unique("car")), "audiences": ["user:u1"]})
        assert fresh.status_code == 202, fresh.text
        top = page.locator("#log-rows tr.log-row").first  # arrives by the htmx poll
        expect(top).to_have_attribute("data-position", str(fresh.json()["position"]))
        tab.shot("embedded-admin-log")

        page.get_by_role("link", name="Tenants").click()
        page.wait_for_url(f"{host.hub}/admin/tenants")
        hrefs = page.eval_on_selector_all("a[href^='/']", "links => links.map(a => a.pathname)")
        assert hrefs and all(href.startswith(PREFIX + "/") for href in hrefs), hrefs

        page.get_by_role("button", name="Log out").click()
        page.wait_for_url(f"{host.hub}/admin/login")
        assert context.cookies() == []  # the cookie of Path=/hub/admin is gone
        assert outside == [] and failed == [], (outside, failed)
        tab.assert_clean()
    finally:
        context.close()


def test_the_live_page_connects_below_the_prefix(
    browser: Browser, host: Host, admin: Admin
) -> None:
    tenant = admin.tenant()
    token = admin.user(tenant, "alice", grant=["qms.read"])
    pages: list[Page] = []
    try:
        page = open_live(browser, pages, host.hub, token)  # connected via /hub/api/events
        entity = unique("car")
        published = admin.publish(car(tenant, entity))
        assert published.status_code == 202, published.text
        row(page, entity).wait_for(timeout=WAIT_MS)
        assert row(page, entity).get_attribute("data-position") == str(published.json()["position"])
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SCREENSHOTS / "embedded-live.png"), full_page=True)
    finally:
        for opened in pages:
            opened.context.close()
