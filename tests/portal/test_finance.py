"""Tenancies, invoices and the signed payment webhook over a real portal
server, on SQLite and PostgreSQL: invoice numbers gap-free per organisation
and year (also under concurrent creation), amounts from the lines with
tax, the webhook verified with the ``standardwebhooks`` library (unsigned,
badly signed and stale deliveries refused with nothing changed; a
redelivery changes nothing; a wrong amount is a 422)."""

from __future__ import annotations

import itertools
import json
import secrets
import threading
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from standardwebhooks.webhooks import Webhook

from portal_server import PortalServer

RENTER, LANDLORD, CONTRACTOR, OPS = (
    "tenant@example.com",
    "landlord@example.com",
    "contractor@example.com",
    "ops@example.com",
)
RENTER2, LANDLORD2 = "tenant2@example.com", "landlord2@example.com"
_years = itertools.count(2040, 2)  # a fresh year (and the next) per test


def invoice_body(year: int | None = None, **changes: Any) -> dict[str, Any]:
    year = year or 2025
    body = {
        "tenancyId": "ten-1",
        "issueDate": f"{year}-11-01",
        "dueDate": f"{year}-11-07",
        "lines": [
            {"description": f"Rent - November {year}", "qty": 1, "unitPrice": 1500.00, "taxRate": 0}
        ],
    }
    body.update(changes)
    return body


def new_invoice(portal: PortalServer, **changes: Any) -> dict[str, Any]:
    answer = portal.api(LANDLORD, "POST", "/api/finance/invoices", json=invoice_body(**changes))
    assert answer.status_code == 201, answer.text
    return dict(answer.json())


def signed(
    portal: PortalServer, body: dict[str, Any], *, msg_id: str | None = None, age_s: float = 0
) -> tuple[str, dict[str, str]]:
    data = json.dumps(body)
    msg_id = msg_id or "msg_" + secrets.token_hex(8)
    at = datetime.now(UTC) - timedelta(seconds=age_s)
    signature = Webhook(portal.payment_secret).sign(msg_id, at, data)
    headers = {
        "webhook-id": msg_id,
        "webhook-timestamp": str(int(at.timestamp())),
        "webhook-signature": signature,
        "content-type": "application/json",
    }
    return data, headers


def deliver(portal: PortalServer, data: str, headers: dict[str, str]) -> httpx.Response:
    return httpx.post(
        f"{portal.url}/api/finance/payments/webhook", content=data, headers=headers, timeout=30
    )


def payment(invoice: dict[str, Any], **changes: Any) -> dict[str, Any]:
    return {
        "invoiceId": invoice["id"],
        "amount": invoice["amount"],
        "paidAt": "2025-11-06T10:00:00Z",
        "providerRef": "ch_test_123456",
        "provider": "stripe",
        **changes,
    }


def status_of(portal: PortalServer, invoice_id: str) -> str:
    return str(portal.api(LANDLORD, "GET", f"/api/finance/invoices/{invoice_id}").json()["status"])


def test_tenancies_per_role(any_portal: PortalServer) -> None:
    def ids(who: str) -> list[str]:
        answer = any_portal.api(who, "GET", "/api/tenancies")
        assert answer.status_code == 200, answer.text
        return [t["id"] for t in answer.json()]

    assert ids(LANDLORD) == ["ten-1"] and ids(RENTER) == ["ten-1"]
    assert ids(LANDLORD2) == ["ten-2"] and ids(RENTER2) == ["ten-2"]
    assert set(ids(OPS)) >= {"ten-1", "ten-2"}
    (tenancy,) = any_portal.api(RENTER, "GET", "/api/tenancies").json()
    assert tenancy["propertyId"] == "prop-1" and tenancy["renterId"] == "usr-tenant"
    assert any_portal.api(CONTRACTOR, "GET", "/api/tenancies").status_code == 403


def test_an_invoice_has_seed_004s_shape(any_portal: PortalServer) -> None:
    year = next(_years)
    invoice = new_invoice(any_portal, year=year)
    assert invoice["number"] == f"INV-{year}-000001"
    assert (invoice["landlordId"], invoice["tenancyId"], invoice["status"]) == (
        "org-1",
        "ten-1",
        "SENT",
    )
    assert invoice["issueDate"] == f"{year}-11-01T00:00:00Z"
    assert invoice["dueDate"] == f"{year}-11-07T00:00:00Z"
    assert invoice["amount"] == 1500.0 and len(invoice["lines"]) == 1
    assert any_portal.api(RENTER, "GET", f"/api/finance/invoices/{invoice['id']}").json() == invoice
    assert invoice["id"] in [
        i["id"] for i in any_portal.api(RENTER, "GET", "/api/finance/invoices").json()
    ]


def test_the_amount_comes_from_the_lines_with_tax(any_portal: PortalServer) -> None:
    lines = [
        {"description": "Callout", "qty": 1, "unitPrice": 80, "taxRate": 20},
        {"description": "Parts", "qty": 3, "unitPrice": 12.35, "taxRate": 20},
        {"description": "Rent", "qty": 1, "unitPrice": 100},
    ]
    invoice = new_invoice(any_portal, lines=lines)
    # 96.00 + 44.46 (37.05 * 1.2) + 100.00
    assert invoice["amount"] == 240.46
    assert [line["amount"] for line in invoice["lines"]] == [96.0, 44.46, 100.0]


def test_numbers_are_gap_free_per_organisation_and_year(any_portal: PortalServer) -> None:
    year = next(_years)
    numbers = [new_invoice(any_portal, year=year)["number"] for _ in range(3)]
    assert numbers == [f"INV-{year}-00000{n}" for n in (1, 2, 3)]
    refused = any_portal.api(
        LANDLORD, "POST", "/api/finance/invoices", json=invoice_body(year=year, lines=[])
    )
    assert refused.status_code == 422
    other = any_portal.api(
        LANDLORD2, "POST", "/api/finance/invoices", json=invoice_body(year=year, tenancyId="ten-2")
    )
    assert other.status_code == 201 and other.json()["number"] == f"INV-{year}-000001"
    assert new_invoice(any_portal, year=year)["number"] == f"INV-{year}-000004"
    assert new_invoice(any_portal, year=year + 1)["number"] == f"INV-{year + 1}-000001"


def test_concurrent_invoices_take_distinct_consecutive_numbers(any_portal: PortalServer) -> None:
    year = next(_years)
    token = any_portal.login(LANDLORD)
    answers: list[httpx.Response] = []
    start = threading.Barrier(12)

    def create() -> None:
        start.wait()
        answers.append(
            httpx.post(
                f"{any_portal.url}/api/finance/invoices",
                json=invoice_body(year=year),
                headers={"Authorization": f"Bearer {token}"},
                timeout=60,
            )
        )

    threads = [threading.Thread(target=create) for _ in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert [a.status_code for a in answers] == [201] * 12, [a.text for a in answers]
    numbers = sorted(a.json()["number"] for a in answers)
    assert numbers == [f"INV-{year}-{n:06d}" for n in range(1, 13)]


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"tenancyId": "ten-2"}, "/tenancyId"),  # org-2's tenancy
        ({"tenancyId": "ten-nope"}, "/tenancyId"),
        ({"issueDate": "yesterday"}, "/issueDate"),
        ({"dueDate": "2025-10-01"}, "/dueDate"),
        ({"lines": []}, "/lines"),
        ({"lines": [{"description": "x", "qty": -1, "unitPrice": 1}]}, "/lines/0/qty"),
        (
            {"lines": [{"description": "x", "qty": 1, "unitPrice": 1, "taxRate": 101}]},
            "/lines/0/taxRate",
        ),
    ],
)
def test_bad_invoices_name_the_field_and_change_nothing(
    any_portal: PortalServer, changes: dict[str, Any], field: str
) -> None:
    before = any_portal.api(LANDLORD, "GET", "/api/finance/invoices").json()
    answer = any_portal.api(LANDLORD, "POST", "/api/finance/invoices", json=invoice_body(**changes))
    assert answer.status_code == 422, answer.text
    assert answer.json()["field"] == field
    assert any_portal.api(LANDLORD, "GET", "/api/finance/invoices").json() == before


def test_invoices_are_the_landlords_and_the_renters(any_portal: PortalServer) -> None:
    invoice = new_invoice(any_portal)
    for who in (RENTER, CONTRACTOR, OPS):
        assert (
            any_portal.api(who, "POST", "/api/finance/invoices", json=invoice_body()).status_code
            == 403
        )
    for who in (CONTRACTOR, OPS):
        assert any_portal.api(who, "GET", "/api/finance/invoices").status_code == 403
    for who in (LANDLORD2, RENTER2):
        assert (
            any_portal.api(who, "GET", f"/api/finance/invoices/{invoice['id']}").status_code == 404
        )
        listed = any_portal.api(who, "GET", "/api/finance/invoices").json()
        assert invoice["id"] not in [i["id"] for i in listed]


def test_a_signed_payment_marks_the_invoice_paid(any_portal: PortalServer) -> None:
    invoice = new_invoice(any_portal)
    answer = deliver(any_portal, *signed(any_portal, payment(invoice)))
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["success"] is True
    assert body["invoice"] == {"id": invoice["id"], "status": "PAID"}
    assert body["payment"]["invoiceId"] == invoice["id"] and body["payment"]["id"]
    assert (body["payment"]["amount"], body["payment"]["status"]) == (1500.0, "CONFIRMED")
    assert status_of(any_portal, invoice["id"]) == "PAID"


def test_the_same_webhook_id_again_changes_nothing(any_portal: PortalServer) -> None:
    invoice = new_invoice(any_portal)
    data, headers = signed(any_portal, payment(invoice))
    first = deliver(any_portal, data, headers)
    again = deliver(any_portal, data, headers)
    assert first.status_code == again.status_code == 200
    assert first.json() == again.json()
    # another delivery (another id) for the paid invoice is refused
    other = deliver(any_portal, *signed(any_portal, payment(invoice)))
    assert other.status_code == 409


def _bad_signature(portal: PortalServer, data: str, headers: dict[str, str]) -> dict[str, str]:
    wrong = Webhook("whsec_" + "A" * 32).sign(
        headers["webhook-id"], datetime.fromtimestamp(int(headers["webhook-timestamp"]), UTC), data
    )
    return {**headers, "webhook-signature": wrong}


@pytest.mark.parametrize("case", ["unsigned", "bad-signature", "tampered", "stale", "garbled"])
def test_an_unverified_payment_is_401_and_changes_nothing(
    any_portal: PortalServer, case: str
) -> None:
    invoice = new_invoice(any_portal)
    data, headers = signed(any_portal, payment(invoice), age_s=600 if case == "stale" else 0)
    if case == "unsigned":
        headers = {"content-type": "application/json"}
    elif case == "bad-signature":
        headers = _bad_signature(any_portal, data, headers)
    elif case == "tampered":
        data = data.replace("ch_test_123456", "ch_test_999999")
    elif case == "garbled":
        headers = {**headers, "webhook-signature": "v1"}
    answer = deliver(any_portal, data, headers)
    assert answer.status_code == 401, answer.text
    assert answer.headers["content-type"].startswith("application/problem+json")
    assert status_of(any_portal, invoice["id"]) == "SENT"


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"amount": 1499.99}, "/amount"),
        ({"invoiceId": "inv_nope"}, "/invoiceId"),
        ({"paidAt": "last tuesday"}, "/paidAt"),
    ],
)
def test_a_payment_that_does_not_match_is_422(
    any_portal: PortalServer, changes: dict[str, Any], field: str
) -> None:
    invoice = new_invoice(any_portal)
    answer = deliver(any_portal, *signed(any_portal, payment(invoice, **changes)))
    assert answer.status_code == 422 and answer.json()["field"] == field, answer.text
    assert status_of(any_portal, invoice["id"]) == "SENT"


def test_a_signed_body_without_a_field_names_it(any_portal: PortalServer) -> None:
    invoice = new_invoice(any_portal)
    body = payment(invoice)
    del body["amount"]
    answer = deliver(any_portal, *signed(any_portal, body))
    assert answer.status_code == 422 and answer.json()["field"] == "/amount"
    assert status_of(any_portal, invoice["id"]) == "SENT"
