"""The portal in real browsers, several people at once (Debian's Chromium
via Playwright against a real portal server): seed 004's two-browser test
verbatim, the whole ticket flow across renter, landlord and contractor, and
that an event refetches exactly the queries it concerns."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from browser_portal import Tab, browser_fixture, hub_events, people_fixture, wait_until  # noqa: F401
from portal_server import PortalServer

pytestmark = pytest.mark.browser


def test_ticket_sync_between_tenant_and_landlord(people: Callable[..., Tab]) -> None:
    """Seed 004's E2E outline, step by step."""
    # 1. Login as tenant
    tenant = people("tenant@example.com")
    # 2. Login as landlord in parallel browser
    landlord = people("landlord@example.com")
    # 3. Landlord opens maintenance page
    landlord.page.goto(landlord.url + "/maintenance")
    landlord.wait_live()
    landlord.mark_document()
    # 4. Tenant creates ticket
    tenant.page.goto(tenant.url + "/tickets/new")
    tenant.page.fill('[name="title"]', "Broken window")
    tenant.page.click('button[type="submit"]')
    # 5. Verify landlord sees ticket within 5s
    landlord.page.wait_for_selector("text=Broken window", timeout=5000)
    landlord.assert_not_reloaded()
    # (and the renter has landed on the new ticket's page)
    tenant.page.wait_for_url(lambda url: "/tickets/tkt_" in url)


def ticket_id_of(tab: Tab) -> str:
    tab.page.wait_for_url(lambda url: "/tickets/tkt_" in url)
    return tab.page.url.rsplit("/", 1)[1]


def status_on(tab: Tab) -> str:
    badge = tab.page.locator(".page-head [data-status]")
    return str(badge.get_attribute("data-status"))


def wait_status(tab: Tab, status: str) -> None:
    tab.page.wait_for_selector(f'.page-head [data-status="{status}"]')


def actions_on(tab: Tab) -> list[str]:
    """The action buttons the ticket page offers its viewer."""
    return [text.strip() for text in tab.page.locator("[data-action]").all_text_contents()]


def badge_count(tab: Tab) -> int:
    return int(tab.page.locator(".bell-badge").get_attribute("data-count") or 0)


def test_full_ticket_flow_across_three_browsers(
    people: Callable[..., Tab], portal: PortalServer
) -> None:
    renter = people("tenant@example.com")
    landlord = people("landlord@example.com")
    contractor = people("contractor@example.com")

    # The renter reports a problem; the form defaults everything but the title.
    renter.open("/tickets/new")
    renter.page.fill('[name="title"]', "Leaking kitchen tap")
    renter.page.select_option('[name="priority"]', "HIGH")
    renter.page.fill('[name="description"]', "Drips all night.")
    renter.page.click('button[type="submit"]')
    ticket_id = ticket_id_of(renter)
    renter.wait_live()
    wait_status(renter, "OPEN")
    renter.mark_document()
    renter.shot("ticket-renter")
    assert actions_on(renter) == ["Cancel ticket"]

    # The landlord's board shows it live; the landlord opens and triages it.
    landlord.page.click(f'[data-ticket-id="{ticket_id}"] a')
    landlord.page.wait_for_url(f"{landlord.url}/tickets/{ticket_id}")
    landlord.wait_live()
    landlord.mark_document()
    assert actions_on(landlord) == ["Triage", "Cancel ticket"]
    landlord.page.click('[data-action="triage"]')
    wait_status(landlord, "TRIAGED")
    wait_status(renter, "TRIAGED")  # live on the renter's page

    # The contractor's jobs list shows it as needing a quote; it quotes.
    contractor.page.wait_for_selector(f'[data-ticket-id="{ticket_id}"]')
    contractor.shot("jobs")
    contractor.page.click(f'[data-ticket-id="{ticket_id}"] a')
    contractor.page.wait_for_url(f"{contractor.url}/tickets/{ticket_id}")
    contractor.wait_live()
    contractor.mark_document()
    contractor.page.fill('[name="amount"]', "150")
    contractor.page.fill('[name="notes"]', "Replace cartridge and washer")
    contractor.page.click('.quote-form button[type="submit"]')
    wait_status(contractor, "QUOTED")

    # The landlord sees the quote live and double-clicks Approve: one approval.
    wait_status(landlord, "QUOTED")
    landlord.page.wait_for_selector("[data-quote] >> text=£150.00")
    landlord.shot("ticket-landlord-quoted")
    approvals_before = landlord.count("POST", f"/api/tickets/{ticket_id}/approve")
    landlord.page.dblclick('[data-action="approve"]')
    wait_status(landlord, "APPROVED")
    sent = landlord.count("POST", f"/api/tickets/{ticket_id}/approve", approvals_before)
    assert sent == 1  # the button was disabled while the first was out
    approved = hub_events(portal, "org-1", types="ticket.approved", entityId=ticket_id)
    assert len(approved) == 1

    # The contractor starts and completes the work, seeing each step live.
    wait_status(contractor, "APPROVED")
    contractor.page.click('[data-action="start"]')
    wait_status(contractor, "IN_PROGRESS")
    contractor.page.click('[data-action="complete"]')
    wait_status(contractor, "COMPLETED")

    # Everyone's page followed without a reload; the timeline tells the story.
    for tab in (renter, landlord, contractor):
        wait_status(tab, "COMPLETED")
        tab.assert_not_reloaded()
    expected = [
        "created",
        "status_changed",
        "quote_submitted",
        "approved",
        "status_changed",
        "completed",
    ]
    timeline = renter.page.locator(".timeline [data-event-type]")
    timeline.nth(len(expected) - 1).wait_for()
    kinds = [timeline.nth(i).get_attribute("data-event-type") for i in range(timeline.count())]
    assert kinds == expected
    assert renter.page.locator(".timeline").inner_text().count("Quote approved") == 1
    renter.shot("ticket")
    assert actions_on(landlord) == ["Mark audited", "Cancel ticket"]
    assert actions_on(contractor) == []
    landlord.open("/maintenance")  # the board, with this ticket among the others
    landlord.page.wait_for_selector(f'[data-ticket-id="{ticket_id}"] [data-status="COMPLETED"]')
    landlord.shot("maintenance-board")


def wait_badge_above(tab: Tab, count: int) -> None:
    tab.page.wait_for_function(
        "n => Number(document.querySelector('.bell-badge').dataset.count) > n", arg=count
    )


def test_bells_move_live(people: Callable[..., Tab], portal: PortalServer) -> None:
    """The landlord's badge rises for a new ticket, the renter's for an
    approved quote, without a reload; reading one lowers it on every tab of
    that person."""
    landlord = people("landlord@example.com")
    landlord_again = people("landlord@example.com", then="/invoices")
    renter = people("tenant@example.com")
    for tab in (landlord, landlord_again, renter):
        tab.mark_document()
    before = badge_count(landlord)
    created = portal.api(
        "tenant@example.com", "POST", "/api/tickets", json={"title": "No hot water"}
    )
    ticket_id = created.json()["id"]
    wait_badge_above(landlord, before)
    wait_badge_above(landlord_again, before)

    renter_before = badge_count(renter)
    move(portal, ticket_id, "TRIAGED")
    quote = {"amount": 90, "notes": "New thermostat"}
    answer = portal.api(
        "contractor@example.com", "POST", f"/api/tickets/{ticket_id}/quote", json=quote
    )
    assert answer.status_code == 200, answer.text
    answer = portal.api(
        "landlord@example.com",
        "POST",
        f"/api/tickets/{ticket_id}/approve",
        headers={"Idempotency-Key": f"approve-{ticket_id}"},
    )
    assert answer.status_code == 200, answer.text
    wait_badge_above(renter, renter_before)

    # The landlord reads its notifications in one tab; the other follows.
    landlord.page.click(".bell-button")
    landlord.page.wait_for_selector(".bell-list .note-unread")
    landlord.shot("notifications-landlord")
    landlord.page.click("text=Mark all as read")
    for tab in (landlord, landlord_again):
        tab.page.wait_for_selector('.bell-badge[data-count="0"]', state="attached")
    for tab in (landlord, landlord_again, renter):
        tab.assert_not_reloaded()


def test_an_event_refetches_only_its_queries(
    people: Callable[..., Tab], portal: PortalServer
) -> None:
    """On ticket A's page, an event about ticket B refetches nothing of A;
    an event about A refetches A and its timeline once each, never a list."""
    created = [
        portal.api("tenant@example.com", "POST", "/api/tickets", json={"title": title}).json()
        for title in ("Ticket A", "Ticket B")
    ]
    a, b = (ticket["id"] for ticket in created)
    board = people("landlord@example.com")  # /maintenance: refetches the list per ticket event
    page_a = people("landlord@example.com", then=f"/tickets/{a}")
    page_a.page.wait_for_selector(".timeline [data-event-type]")
    page_a.page.wait_for_timeout(800)  # let the creations' late events settle

    # B moves: the board refetches its list, page A fetches nothing of A.
    lists, mark = board.count("GET", "/api/tickets"), len(page_a.requests)
    move(portal, b, "TRIAGED")
    wait_until(board, lambda: board.count("GET", "/api/tickets") > lists)
    page_a.page.wait_for_timeout(800)  # time for a refetch that must not come
    fetched = [path for method, path in page_a.requests[mark:] if method == "GET"]
    assert not [path for path in fetched if path.startswith("/api/tickets")], fetched
    assert "/api/finance/invoices" not in fetched

    # A moves: A and its timeline once each, no list, nothing of B.
    mark = len(page_a.requests)
    move(portal, a, "TRIAGED")
    wait_status(page_a, "TRIAGED")
    page_a.page.wait_for_timeout(800)
    assert page_a.count("GET", f"/api/tickets/{a}", mark) == 1
    assert page_a.count("GET", f"/api/tickets/{a}/timeline", mark) == 1
    fetched = [path for method, path in page_a.requests[mark:] if method == "GET"]
    assert set(fetched) <= {
        f"/api/tickets/{a}",
        f"/api/tickets/{a}/timeline",
        "/api/notifications/unread-count",
    }, fetched


def move(portal: PortalServer, ticket_id: str, to: str) -> None:
    """A landlord's status change through the API (not through a page)."""
    answer = portal.api(
        "landlord@example.com", "PATCH", f"/api/tickets/{ticket_id}/status", json={"to": to}
    )
    assert answer.status_code == 200, answer.text
