"""Invoices in real browsers: the landlord issues one through the form, the
renter's page shows it live, and a payment webhook signed per Standard
Webhooks (by the test, as the payment provider would) turns it PAID on both
pages without a reload; the renter's bell moves and marks read."""

from __future__ import annotations

import json
import secrets
from collections.abc import Callable
from datetime import UTC, datetime

import httpx
import pytest
from standardwebhooks.webhooks import Webhook

from browser_portal import Tab, browser_fixture, people_fixture  # noqa: F401
from portal_server import PortalServer

pytestmark = pytest.mark.browser


def pay(portal: PortalServer, invoice_id: str, amount: float) -> httpx.Response:
    """POST the provider's signed payment webhook for ``invoice_id``."""
    body = json.dumps(
        {
            "invoiceId": invoice_id,
            "amount": amount,
            "paidAt": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "providerRef": "ch_test_" + secrets.token_hex(6),
            "provider": "stripe",
        }
    )
    message_id = "msg_" + secrets.token_hex(8)
    sent_at = datetime.now(UTC)
    signature = Webhook(portal.payment_secret).sign(message_id, sent_at, body)
    return httpx.post(
        f"{portal.url}/api/finance/payments/webhook",
        content=body,
        headers={
            "content-type": "application/json",
            "webhook-id": message_id,
            "webhook-timestamp": str(int(sent_at.timestamp())),
            "webhook-signature": signature,
        },
        timeout=30,
    )


def unread(tab: Tab) -> int:
    return int(tab.page.locator(".bell-badge").get_attribute("data-count") or 0)


def test_invoice_issued_then_paid_turns_live_on_the_renters_page(
    people: Callable[..., Tab], portal: PortalServer
) -> None:
    renter = people("tenant@example.com", then="/invoices")
    landlord = people("landlord@example.com", then="/invoices")
    renter.page.wait_for_selector(".stats")
    renter.mark_document()
    landlord.mark_document()
    badge_before = unread(renter)

    # The landlord issues an invoice with two lines (one taxed).
    landlord.page.fill('[name="description"]', "Rent - test month")
    landlord.page.fill('[name="unitPrice"]', "1200")
    landlord.page.click("text=+ Add line")
    landlord.page.locator('[name="description"]').nth(1).fill("Boiler service")
    landlord.page.locator('[name="unitPrice"]').nth(1).fill("100")
    landlord.page.locator('[name="taxRate"]').nth(1).fill("20")
    assert landlord.page.locator("[data-total]").inner_text() == "£1,320.00"
    landlord.page.click('button:has-text("Issue invoice")')
    issued = landlord.page.locator('.alert-ok[role="status"]')
    issued.wait_for()
    number = issued.inner_text().split()[1]
    assert number.startswith(f"INV-{datetime.now(UTC).year}-")
    row = landlord.page.locator("tr[data-invoice-id]", has_text=number)
    row.wait_for()
    invoice_id = str(row.get_attribute("data-invoice-id"))
    landlord.shot("invoices-landlord")

    # The renter sees it arrive, due, with the right amount, and the bell moves.
    on_renter = renter.page.locator(f'tr[data-invoice-id="{invoice_id}"]')
    on_renter.wait_for()
    assert on_renter.locator("[data-status]").get_attribute("data-status") == "SENT"
    assert "£1,320.00" in on_renter.inner_text()
    renter.page.wait_for_function(
        "n => Number(document.querySelector('.bell-badge').dataset.count) > n", arg=badge_before
    )

    # The provider's signed webhook: PAID on both pages, no reload.
    answer = pay(portal, invoice_id, 1320.0)
    assert answer.status_code == 200, answer.text
    assert answer.json()["invoice"] == {"id": invoice_id, "status": "PAID"}
    for tab in (renter, landlord):
        tab.page.wait_for_selector(f'tr[data-invoice-id="{invoice_id}"] [data-status="PAID"]')
        tab.assert_not_reloaded()
    renter.shot("invoices")

    # The bell: the list opens, marking all read brings the badge to zero.
    renter.page.click(".bell-button")
    renter.page.wait_for_selector(".bell-list .note")
    renter.shot("notifications")
    renter.page.click("text=Mark all as read")
    renter.page.wait_for_selector('.bell-badge[data-count="0"]', state="attached")
