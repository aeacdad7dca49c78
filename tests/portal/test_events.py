"""The events each portal action emits, seen on real SSE streams (httpx-sse)
of the landlord, the renter, the contractor and OPS, and never on the other
organisation's streams, on SQLite and PostgreSQL. The events travel
through the portal's outbox, relayed into the hub's log."""

from __future__ import annotations

import asyncio
import contextlib
import json
import secrets
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import httpx
from standardwebhooks.webhooks import Webhook

from portal_server import PortalServer
from support import LiveStream, sse

RENTER, LANDLORD, CONTRACTOR, OPS = (
    "tenant@example.com",
    "landlord@example.com",
    "contractor@example.com",
    "ops@example.com",
)
RENTER2, LANDLORD2 = "tenant2@example.com", "landlord2@example.com"
EVERYONE = (RENTER, LANDLORD, CONTRACTOR, OPS, RENTER2, LANDLORD2)
TICKET_FLOW = [
    "ticket.created",
    "ticket.status_changed",
    "ticket.quote_submitted",
    "ticket.approved",
    "ticket.status_changed",
    "ticket.completed",
]


@contextlib.asynccontextmanager
async def streams(portal: PortalServer, *who: str) -> AsyncIterator[dict[str, LiveStream]]:
    async with contextlib.AsyncExitStack() as stack:
        opened = {}
        for email in who:
            opened[email] = await stack.enter_async_context(sse(portal.url, portal.login(email)))
        yield opened


async def domain_events(stream: LiveStream, n: int, prefix: str, timeout: float = 15) -> list[Any]:
    """The next ``n`` events whose type starts with ``prefix`` (others skipped)."""
    found: list[dict[str, Any]] = []
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while len(found) < n:
        (message,) = await stream.events(1, timeout=max(0.1, deadline - loop.time()))
        if message["type"].startswith(prefix):
            found.append(message)
    return found


async def none_of(stream: LiveStream, seconds: float, prefix: str = "") -> list[str]:
    """The types of events starting with ``prefix`` that arrive within ``seconds``."""
    seen: list[str] = []
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    while (left := deadline - loop.time()) > 0:
        try:
            (message,) = await stream.events(1, timeout=left)
        except TimeoutError:
            break
        if message["type"].startswith(prefix):
            seen.append(message["type"])
    return seen


async def call(portal: PortalServer, who: str, method: str, path: str, **kw: Any) -> Any:
    answer = await asyncio.to_thread(portal.api, who, method, path, **kw)
    assert answer.status_code in {200, 201}, answer.text
    return answer.json()


async def run_ticket_flow(portal: PortalServer) -> str:
    ticket = await call(portal, RENTER, "POST", "/api/tickets", json={"title": "Broken window"})
    tid = ticket["id"]
    status = f"/api/tickets/{tid}/status"
    await call(portal, LANDLORD, "PATCH", status, json={"to": "TRIAGED"})
    await call(
        portal, CONTRACTOR, "POST", f"/api/tickets/{tid}/quote", json={"amount": 120, "notes": "x"}
    )
    await call(portal, LANDLORD, "POST", f"/api/tickets/{tid}/approve", json={})
    await call(portal, CONTRACTOR, "PATCH", status, json={"to": "IN_PROGRESS"})
    await call(portal, CONTRACTOR, "PATCH", status, json={"to": "COMPLETED"})
    return str(tid)


async def test_ticket_events_reach_the_organisation_the_renter_and_ops(
    any_portal: PortalServer,
) -> None:
    async with streams(any_portal, *EVERYONE) as live:
        tid = await run_ticket_flow(any_portal)
        for who in (LANDLORD, RENTER, CONTRACTOR, OPS):
            got = await domain_events(live[who], len(TICKET_FLOW), "ticket.")
            assert [e["type"] for e in got] == TICKET_FLOW, who
            assert {e["data"]["ticketId"] for e in got} == {tid}
            assert {e["tenantId"] for e in got} == {"org-1"}
        created = (
            await asyncio.to_thread(any_portal.api, LANDLORD, "GET", f"/api/tickets/{tid}")
        ).json()
        assert created["status"] == "COMPLETED"
        for outsider in (LANDLORD2, RENTER2):
            assert await none_of(live[outsider], 2.0) == [], outsider


async def test_the_events_carry_the_pack_fields(any_portal: PortalServer) -> None:
    async with streams(any_portal, LANDLORD) as live:
        tid = await run_ticket_flow(any_portal)
        got = await domain_events(live[LANDLORD], len(TICKET_FLOW), "ticket.")
    created, triaged, quoted, approved, started, completed = (e["data"] for e in got)
    assert created["title"] == "Broken window" and created["status"] == "OPEN"
    assert (created["landlordId"], created["propertyId"], created["renterId"]) == (
        "org-1",
        "prop-1",
        "usr-tenant",
    )
    assert created["actorRole"] == "TENANT"
    assert (triaged["previousStatus"], triaged["newStatus"]) == ("OPEN", "TRIAGED")
    assert quoted["amount"] == 120 and quoted["contractorId"] == "usr-contractor"
    assert approved["approvedByUserId"] == "usr-landlord"
    assert (started["previousStatus"], started["newStatus"]) == ("APPROVED", "IN_PROGRESS")
    assert completed["contractorId"] == "usr-contractor"
    assert all(e["data"]["resources"] == [{"type": "ticket", "id": tid}] for e in got)


async def test_approve_again_with_its_key_emits_no_second_event(any_portal: PortalServer) -> None:
    async with streams(any_portal, LANDLORD) as live:
        ticket = await call(any_portal, RENTER, "POST", "/api/tickets", json={"title": "Door"})
        tid = ticket["id"]
        await call(
            any_portal, LANDLORD, "PATCH", f"/api/tickets/{tid}/status", json={"to": "TRIAGED"}
        )
        await call(any_portal, CONTRACTOR, "POST", f"/api/tickets/{tid}/quote", json={"amount": 5})
        key = {"Idempotency-Key": "approve-" + tid}
        for _ in range(3):
            await call(any_portal, LANDLORD, "POST", f"/api/tickets/{tid}/approve", headers=key)
        got = await domain_events(live[LANDLORD], 4, "ticket.")
        assert [e["type"] for e in got][-1] == "ticket.approved"
        assert await none_of(live[LANDLORD], 2.0, "ticket.") == []


def _signed_payment(
    portal: PortalServer, invoice: dict[str, Any], msg_id: str
) -> tuple[str, dict[str, str]]:
    data = json.dumps(
        {"invoiceId": invoice["id"], "amount": invoice["amount"], "paidAt": "2025-11-06T10:00:00Z"}
    )
    at = datetime.now(UTC)
    headers = {
        "webhook-id": msg_id,
        "webhook-timestamp": str(int(at.timestamp())),
        "webhook-signature": Webhook(portal.payment_secret).sign(msg_id, at, data),
        "content-type": "application/json",
    }
    return data, headers


async def test_invoice_events_reach_the_landlord_and_the_renter_only(
    any_portal: PortalServer,
) -> None:
    async with streams(any_portal, LANDLORD, RENTER, OPS, CONTRACTOR, LANDLORD2, RENTER2) as live:
        body = {
            "tenancyId": "ten-1",
            "issueDate": "2025-11-01",
            "dueDate": "2025-11-07",
            "lines": [{"description": "Rent", "qty": 1, "unitPrice": 1500}],
        }
        invoice = await call(any_portal, LANDLORD, "POST", "/api/finance/invoices", json=body)
        data, headers = _signed_payment(any_portal, invoice, "msg_" + secrets.token_hex(6))
        for _ in range(2):  # the redelivery emits nothing
            async with httpx.AsyncClient(base_url=any_portal.url) as http:
                answer = await http.post(
                    "/api/finance/payments/webhook", content=data, headers=headers
                )
            assert answer.status_code == 200, answer.text
        for who in (LANDLORD, RENTER):
            got = await domain_events(live[who], 2, "invoice.")
            assert [e["type"] for e in got] == ["invoice.created", "invoice.paid"], who
            assert {e["data"]["invoiceId"] for e in got} == {invoice["id"]}
            assert got[0]["data"]["number"] == invoice["number"]
            assert await none_of(live[who], 1.5, "invoice.") == [], who
        for who in (OPS, CONTRACTOR, LANDLORD2, RENTER2):
            assert await none_of(live[who], 1.0, "invoice.") == [], who
