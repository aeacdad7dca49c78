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
        ("tenant2@example.com", "Damp patch on the ceiling"),
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
    other.page.wait_for_selector("text=Damp patch on the ceiling")
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


def test_another_organisations_ticket_is_not_found(
    people: Callable[..., Tab], some_tickets: list[str]
) -> None:
    other_landlord = people("landlord2@example.com")
    other_landlord.open(f"/tickets/{some_tickets[0]}")  # org-1's ticket
    other_landlord.page.wait_for_selector("text=Ticket not found")
    assert other_landlord.page.locator("text=Dripping shower head").count() == 0
    # The browser logs the 404 answer itself; nothing else went wrong.
    other_landlord.errors = [e for e in other_landlord.errors if "404" not in e]


def test_the_invalidation_map_names_exactly_the_shared_keys(people: Callable[..., Tab]) -> None:
    """live.js's map through tidings.js's own matcher (Tidings.keysFor)."""
    tab = people("landlord@example.com")
    keys = tab.page.evaluate(
        """async () => {
          const { INVALIDATION_MAP } = await import("/portal/static/app/live.js");
          const of = (type, data) => Tidings.keysFor({ type, data }, INVALIDATION_MAP);
          return {
            ticket: of("ticket.approved", { ticketId: "tkt_1" }),
            invoice: of("invoice.paid", { invoiceId: "inv_1" }),
            notification: of("notification.created", { unreadCount: 2 }),
            other: of("qms.car.updated", {}),
          };
        }"""
    )
    assert keys == {
        "ticket": [["tickets"], ["ticket", "tkt_1"], ["timeline", "tkt_1"], ["jobs"], ["ops"]],
        "invoice": [["invoices"], ["invoice", "inv_1"]],
        "notification": [["notifications"], ["unread-count"]],
        "other": [],
    }
