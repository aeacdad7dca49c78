"""In-app notifications from the portal's hub rules, over a real server on
SQLite and PostgreSQL: the landlord hears of a new ticket, the renter of a
quote approved and of an invoice; ``unread-count`` moves, and the
``notification.created`` pushed on the user's stream carries the same
count; nobody else is notified."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from portal_server import PortalServer
from support import sse
from test_events import domain_events

RENTER, LANDLORD, CONTRACTOR, OPS = (
    "tenant@example.com",
    "landlord@example.com",
    "contractor@example.com",
    "ops@example.com",
)
RENTER2, LANDLORD2 = "tenant2@example.com", "landlord2@example.com"


def unread(portal: PortalServer, who: str) -> int:
    answer = portal.api(who, "GET", "/api/notifications/unread-count")
    assert answer.status_code == 200, answer.text
    return int(answer.json()["count"])


def newest(portal: PortalServer, who: str) -> list[dict[str, Any]]:
    answer = portal.api(who, "GET", "/api/notifications")
    assert answer.status_code == 200, answer.text
    return list(answer.json()["items"])


def wait_for_count(portal: PortalServer, who: str, count: int, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while unread(portal, who) != count:
        assert time.monotonic() < deadline, f"{who}: unread stayed {unread(portal, who)}"
        time.sleep(0.2)


def ticket(portal: PortalServer, title: str) -> str:
    answer = portal.api(RENTER, "POST", "/api/tickets", json={"title": title})
    assert answer.status_code == 201, answer.text
    return str(answer.json()["id"])


async def test_the_landlord_is_notified_of_a_new_ticket(any_portal: PortalServer) -> None:
    others = {who: unread(any_portal, who) for who in (CONTRACTOR, OPS, RENTER2, LANDLORD2)}
    before = unread(any_portal, LANDLORD)
    async with sse(any_portal.url, any_portal.login(LANDLORD)) as live:
        tid = ticket(any_portal, "Boiler makes noises")
        (pushed,) = await domain_events(live, 1, "notification.created", timeout=20)
    assert pushed["data"]["unreadCount"] == before + 1
    wait_for_count(any_portal, LANDLORD, before + 1)
    latest = newest(any_portal, LANDLORD)[0]
    assert latest["title"] == "New ticket: Boiler makes noises"
    assert latest["link"] == f"/tickets/{tid}" and latest["read"] is False
    await asyncio.sleep(1.0)  # the rule's job ran for the landlord: no one else gained one
    assert {who: unread(any_portal, who) for who in others} == others
    # reading it moves the badge back
    read = any_portal.api(LANDLORD, "POST", "/api/notifications/read", json={"ids": [latest["id"]]})
    assert read.status_code == 200, read.text
    assert unread(any_portal, LANDLORD) == before


async def test_the_renter_hears_of_an_approved_quote_and_an_invoice(
    any_portal: PortalServer,
) -> None:
    before = unread(any_portal, RENTER)
    tid = ticket(any_portal, "Window latch")
    any_portal.api(LANDLORD, "PATCH", f"/api/tickets/{tid}/status", json={"to": "TRIAGED"})
    any_portal.api(CONTRACTOR, "POST", f"/api/tickets/{tid}/quote", json={"amount": 40})
    async with sse(any_portal.url, any_portal.login(RENTER)) as live:
        approved = any_portal.api(LANDLORD, "POST", f"/api/tickets/{tid}/approve", json={})
        assert approved.status_code == 200
        (pushed,) = await domain_events(live, 1, "notification.created", timeout=20)
        assert pushed["data"]["unreadCount"] == before + 1
        invoice = any_portal.api(
            LANDLORD,
            "POST",
            "/api/finance/invoices",
            json={
                "tenancyId": "ten-1",
                "issueDate": "2025-12-01",
                "dueDate": "2025-12-07",
                "lines": [{"description": "Rent", "qty": 1, "unitPrice": 1500}],
            },
        ).json()
        (pushed,) = await domain_events(live, 1, "notification.created", timeout=20)
        assert pushed["data"]["unreadCount"] == before + 2
    wait_for_count(any_portal, RENTER, before + 2)
    latest = newest(any_portal, RENTER)[:2]
    titles = [n["title"] for n in latest]
    assert titles == [f"New invoice {invoice['number']}", "The quote for your ticket was approved"]
    assert latest[0]["body"] == "1500.00 GBP, due 2025-12-07."  # money with its cents
    assert any_portal.api(RENTER, "POST", "/api/notifications/read-all").status_code == 200
    assert unread(any_portal, RENTER) == 0
