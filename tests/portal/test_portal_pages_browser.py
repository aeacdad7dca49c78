"""Every portal page renders for its role in a real browser, with the top
bar (portal name, user and role, the bell) and no script error; each is
screenshotted into the artefacts (``portal-<page>.png``) to be looked at."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from playwright.sync_api import Browser

from browser_portal import Tab, browser_fixture, new_tab, people_fixture  # noqa: F401
from portal_server import PortalServer

pytestmark = pytest.mark.browser

# (account, path, screenshot name, text the page must show)
PAGES = [
    ("tenant@example.com", "/tickets", "tickets", "My tickets"),
    ("tenant@example.com", "/tickets/new", "tickets-new", "Report a problem"),
    ("landlord@example.com", "/maintenance", "maintenance", "Requests"),
    ("contractor@example.com", "/jobs", "jobs-list", "Needs your quote"),
    ("ops@example.com", "/ops", "ops", "Organisations"),
    ("tenant2@example.com", "/tickets", "tickets-org2", "My tickets"),
]


@pytest.fixture(scope="module")
def some_tickets(portal: PortalServer) -> list[str]:
    """A few tickets in both organisations, some moved on, so lists show rows."""
    made = []
    for email, title in [
        ("tenant@example.com", "Dripping shower head"),
        ("tenant@example.com", "Front door lock sticks"),
        ("tenant2@example.com", "Mould in the bathroom"),
    ]:
        answer = portal.api(email, "POST", "/api/tickets", json={"title": title})
        assert answer.status_code == 201, answer.text
        made.append(answer.json()["id"])
    answer = portal.api(
        "landlord@example.com", "PATCH", f"/api/tickets/{made[0]}/status", json={"to": "TRIAGED"}
    )
    assert answer.status_code == 200, answer.text
    return made


@pytest.mark.parametrize(("email", "path", "name", "text"), PAGES, ids=[p[2] for p in PAGES])
def test_each_page_renders_for_its_role(
    people: Callable[..., Tab], some_tickets: list[str], email: str, path: str, name: str, text: str
) -> None:
    tab = people(email, then=path)
    tab.page.wait_for_selector(f"main >> text={text}")
    tab.page.wait_for_selector("main .card")
    assert tab.page.locator(".brand").inner_text().endswith("Tidings Homes")
    assert tab.page.locator(".bell-button").is_visible()
    assert tab.page.locator('.alert-error, [role="alert"]').count() == 0
    tab.shot(name)


def test_lists_keep_organisations_apart(
    people: Callable[..., Tab], some_tickets: list[str]
) -> None:
    """Org 2's renter sees its ticket and none of org 1's; OPS sees both."""
    other = people("tenant2@example.com")
    other.page.wait_for_selector("text=Mould in the bathroom")
    assert other.page.locator("text=Dripping shower head").count() == 0
    ops = people("ops@example.com")
    ops.page.wait_for_selector('[data-organisation="org-1"]')
    ops.page.wait_for_selector('[data-organisation="org-2"]')


def test_login_page(browser: Browser, portal: PortalServer) -> None:
    context, tab = new_tab(browser, portal.url)
    try:
        tab.open("/login")
        tab.page.wait_for_selector("text=Demo accounts")
        tab.page.click("text=landlord2@example.com")
        assert tab.page.input_value('[name="email"]') == "landlord2@example.com"
        assert tab.page.input_value('[name="password"]') == "password123"
        tab.page.fill('[name="email"]', "")
        tab.shot("login")
        tab.assert_clean()
    finally:
        context.close()
