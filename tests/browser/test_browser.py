"""The /live page and tidings.js in a real browser: Debian's Chromium driven
by Playwright (never a downloaded browser), against a real server."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from playwright.sync_api import Browser, Page
from playwright.sync_api import Error as PlaywrightError

from chromium import chromium, record_off_loopback
from support import ADMIN_KEY, Admin, ServerProcess, unique
from tidings.sdk import TidingsClient

pytestmark = pytest.mark.browser

WAIT_MS = 15_000


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with chromium() as launched:
        yield launched


@pytest.fixture
def pages(browser: Browser) -> Iterator[list[Page]]:
    """Pages in separate browser contexts (separate users), closed after."""
    opened: list[Page] = []
    yield opened
    for page in opened:
        page.context.close()


def open_live(browser: Browser, pages: list[Page], url: str, token: str) -> Page:
    page = browser.new_context().new_page()
    pages.append(page)
    page.goto(f"{url}/live#token={token}")
    page.wait_for_selector('#status[data-state="connected"]', timeout=WAIT_MS)
    return page


def row(page: Page, entity_id: str) -> Any:
    return page.locator("#events tbody tr.event", has_text=entity_id)


def car(tenant: str, entity_id: str) -> dict[str, Any]:
    return {"type": "qms.car.updated", "tenantId": tenant, "entityId": entity_id}


def test_live_page_shows_own_tenant_events_only(
    server: ServerProcess, admin: Admin, browser: Browser, pages: list[Page]
) -> None:
    tenant_a, tenant_b = admin.tenant(), admin.tenant()
    page_a = open_live(
        browser, pages, server.url, admin.user(tenant_a, "alice", grant=["qms.read"])
    )
    page_b = open_live(browser, pages, server.url, admin.user(tenant_b, "bob", grant=["qms.read"]))
    assert "token=" not in page_a.url  # read from the fragment, then taken off the address bar

    ours, theirs = unique("car-a"), unique("car-b")
    with TidingsClient(server.url, token=ADMIN_KEY) as client:
        published = client.publish(car(tenant_a, ours))
        row(page_a, ours).wait_for(timeout=WAIT_MS)
        client.publish(car(tenant_b, theirs))  # B's own event: proof B's page is receiving
        row(page_b, theirs).wait_for(timeout=WAIT_MS)

    first = row(page_a, ours)
    assert first.get_attribute("data-position") == str(published["position"])
    assert first.get_attribute("data-type") == "qms.car.updated"
    assert "qms-cars" in first.inner_text()  # seed 000's invalidation map
    assert page_b.locator("#events tbody tr.event").count() == 1  # only its own
    assert row(page_b, ours).count() == 0
    assert row(page_a, theirs).count() == 0


def test_live_page_reconnects_with_a_fresh_ticket_and_resumes(
    fresh_server: ServerProcess, browser: Browser, pages: list[Page]
) -> None:
    admin = Admin(fresh_server.url)
    tenant = admin.tenant()
    token = admin.user(tenant, "carol", grant=["qms.read"])
    admin.close()
    page = open_live(browser, pages, fresh_server.url, token)
    assert fresh_server.log_path is not None
    with TidingsClient(fresh_server.url, token=ADMIN_KEY, max_retries=10) as client:
        client.publish(car(tenant, "before-restart"))
        row(page, "before-restart").wait_for(timeout=WAIT_MS)
        fresh_server.stop()  # streams are told to reconnect; tickets are single-use
        page.wait_for_selector('#status[data-state="reconnecting"]', timeout=WAIT_MS)
        fresh_server.start(fresh_server.log_path)
        client.publish(car(tenant, "after-restart"))  # maybe before the page is back: replayed
        row(page, "after-restart").wait_for(timeout=WAIT_MS)
    page.wait_for_selector('#status[data-state="connected"]', timeout=WAIT_MS)
    assert page.locator("#events tbody tr.event").count() == 2  # nothing repeated


def test_live_page_stops_when_refused(
    server: ServerProcess, admin: Admin, browser: Browser, pages: list[Page]
) -> None:
    tenant = admin.tenant()
    user = unique("u")
    page = open_live(browser, pages, server.url, admin.user(tenant, user, grant=["qms.read"]))
    admin.http.delete(f"/api/admin/tenants/{tenant}/users/{user}").raise_for_status()
    page.wait_for_selector('#status[data-state="closed"]', timeout=WAIT_MS)
    assert "user_deleted" in page.inner_text("#status")


def test_tidings_js_maps_types_to_query_keys_and_handles_reset(
    server: ServerProcess, admin: Admin, browser: Browser, pages: list[Page]
) -> None:
    tenant = admin.tenant()
    token = admin.user(tenant, "dana", grant=["qms.read"])
    page = browser.new_context().new_page()
    pages.append(page)
    page.goto(f"{server.url}/live")  # no token: the page waits for the form
    assert page.get_attribute("#status", "data-state") == "idle"
    assert page.evaluate("Tidings.keysFor({type: 'training.deferral.requested'})") == [
        "training-assignments",
        "training-dashboard",
    ]
    custom = page.evaluate(
        """Tidings.keysFor({type: 'ticket.approved', entityId: 'tkt_1'}, {
             'ticket.*': (event) => [['tickets'], ['ticket', event.entityId]],
             'ticket.approved': ['approvals'],
           })"""
    )
    assert custom == [["tickets"], ["ticket", "tkt_1"], "approvals"]
    # A resume point the log never reached: the server answers with a reset,
    # and every mapped query is invalidated (only a refetch can catch up).
    reset = page.evaluate(
        """(token) => new Promise((resolve) => {
             const live = Tidings.connect({
               token,
               lastEventId: "999999999",
               invalidate: (keys, message) => { live.close(); resolve({keys, message}); },
             });
           })""",
        token,
    )
    assert reset["message"]["type"] == "reset"
    assert reset["message"]["reason"] == "unknown_position"
    assert "qms-cars" in reset["keys"] and "user-profile" in reset["keys"]


def test_the_loopback_fence_stops_and_records_requests_that_leave(browser: Browser) -> None:
    """The browser tests' fence (tests/chromium.py): a request off loopback
    fails, and is recorded."""
    refused: list[str] = []
    context = browser.new_context()
    try:
        page = context.new_page()
        record_off_loopback(page, refused)
        with pytest.raises(PlaywrightError, match="ERR_PROXY_CONNECTION_FAILED"):
            page.goto("http://example.com/", timeout=WAIT_MS)
        assert refused == ["http://example.com/"]
    finally:
        context.close()
