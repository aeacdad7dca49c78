"""Isolation between the two organisations, both ways, on SQLite and
PostgreSQL: org-2's activity reaches org-2's users and OPS, never org-1's
(live streams opened the browser's way, with a stream ticket, and the
hub's history), and org-1's API answers org-2's users 404."""

from __future__ import annotations

import contextlib
import time
from collections.abc import AsyncIterator

import httpx

from portal_server import PortalServer
from support import LiveStream, sse
from test_events import domain_events, none_of

RENTER, LANDLORD, CONTRACTOR, OPS = (
    "tenant@example.com",
    "landlord@example.com",
    "contractor@example.com",
    "ops@example.com",
)
RENTER2, LANDLORD2 = "tenant2@example.com", "landlord2@example.com"


@contextlib.asynccontextmanager
async def ticketed_stream(portal: PortalServer, email: str) -> AsyncIterator[LiveStream]:
    """A stream opened as the pages open theirs: a single-use ticket from
    ``POST /api/events/tickets`` (bearer), then ``?ticket=``."""
    async with httpx.AsyncClient(base_url=portal.url) as http:
        answer = await http.post(
            "/api/events/tickets", headers={"Authorization": f"Bearer {portal.login(email)}"}
        )
    assert answer.status_code == 201, answer.text
    async with sse(portal.url, params={"ticket": answer.json()["ticket"]}) as stream:
        yield stream


async def test_org_2s_ticket_never_reaches_org_1(any_portal: PortalServer) -> None:
    async with contextlib.AsyncExitStack() as stack:
        live = {
            who: await stack.enter_async_context(ticketed_stream(any_portal, who))
            for who in (RENTER, LANDLORD, CONTRACTOR, OPS, RENTER2, LANDLORD2)
        }
        created = any_portal.api(RENTER2, "POST", "/api/tickets", json={"title": "Gate hinge"})
        assert created.status_code == 201
        tid = created.json()["id"]
        moved = any_portal.api(
            LANDLORD2, "PATCH", f"/api/tickets/{tid}/status", json={"to": "TRIAGED"}
        )
        assert moved.status_code == 200
        for who in (RENTER2, LANDLORD2, OPS):
            got = await domain_events(live[who], 2, "ticket.")
            assert [(e["type"], e["data"]["ticketId"]) for e in got] == [
                ("ticket.created", tid),
                ("ticket.status_changed", tid),
            ], who
            assert {e["tenantId"] for e in got} == {"org-2"}
        for who in (RENTER, LANDLORD, CONTRACTOR):
            assert await none_of(live[who], 1.5) == [], who


def test_the_hubs_history_keeps_organisations_apart(any_portal: PortalServer) -> None:
    mine = any_portal.api(RENTER, "POST", "/api/tickets", json={"title": "Loose tile"}).json()
    theirs = any_portal.api(RENTER2, "POST", "/api/tickets", json={"title": "Dripping tap"}).json()

    def ticket_ids(email: str) -> set[str]:
        answer = any_portal.api(
            email, "GET", "/api/events/log", params={"types": "ticket.created", "limit": 500}
        )
        assert answer.status_code == 200, answer.text
        return {e["data"]["ticketId"] for e in answer.json()["items"]}

    deadline = time.monotonic() + 15
    while not {mine["id"], theirs["id"]} <= ticket_ids(OPS):
        assert time.monotonic() < deadline, "the ops history never held both tickets"
        time.sleep(0.2)
    for who in (RENTER, LANDLORD, CONTRACTOR):
        seen = ticket_ids(who)
        assert mine["id"] in seen and theirs["id"] not in seen, who
    for who in (RENTER2, LANDLORD2):
        seen = ticket_ids(who)
        assert theirs["id"] in seen and mine["id"] not in seen, who


def test_org_1s_records_are_404_to_org_2(any_portal: PortalServer) -> None:
    tid = any_portal.api(RENTER, "POST", "/api/tickets", json={"title": "Cracked pane"}).json()[
        "id"
    ]
    invoice = any_portal.api(
        LANDLORD,
        "POST",
        "/api/finance/invoices",
        json={
            "tenancyId": "ten-1",
            "issueDate": "2025-10-01",
            "dueDate": "2025-10-07",
            "lines": [{"description": "Rent", "qty": 1, "unitPrice": 10}],
        },
    ).json()
    for who in (RENTER2, LANDLORD2):
        for method, path, body in (
            ("GET", f"/api/tickets/{tid}", None),
            ("GET", f"/api/tickets/{tid}/timeline", None),
            ("PATCH", f"/api/tickets/{tid}/status", {"to": "CANCELLED"}),
            ("GET", f"/api/finance/invoices/{invoice['id']}", None),
        ):
            answer = any_portal.api(who, method, path, json=body)
            assert answer.status_code == 404, (who, path, answer.text)
        listed = any_portal.api(who, "GET", "/api/tickets").json()
        assert tid not in [t["id"] for t in listed]
    assert any_portal.api(LANDLORD, "GET", f"/api/tickets/{tid}").json()["status"] == "OPEN"
    refused = any_portal.api(
        LANDLORD2,
        "POST",
        "/api/finance/invoices",
        json={
            "tenancyId": "ten-1",
            "issueDate": "2025-10-01",
            "dueDate": "2025-10-07",
            "lines": [{"description": "Rent", "qty": 1, "unitPrice": 10}],
        },
    )
    assert refused.status_code == 422 and refused.json()["field"] == "/tenancyId"
