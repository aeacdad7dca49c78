"""Tenancies, invoices and the payment webhook.

Guarantees:

* invoice numbers are ``INV-YYYY-NNNNNN``, unique and gap-free per
  organisation and year: the counter row (organisation, year) is
  incremented by an ``UPDATE ... RETURNING`` in the invoice's own
  transaction, so concurrent creations queue on that row (PostgreSQL's row
  lock; SQLite's write lock) and a rolled-back invoice gives its number back;
* an invoice's amount is computed from its lines (``qty * unitPrice``, plus
  ``taxRate`` percent), each line rounded half-up to the cent;
* a payment webhook is verified per Standard Webhooks (the
  ``standardwebhooks`` library: signature and a timestamp within five
  minutes) before anything is read; a ``webhook-id`` seen before gets the
  first answer again and changes nothing (the payments table's unique
  ``webhook_id``), so ``invoice.paid`` is emitted once; an amount that is
  not the invoice's is a 422 and changes nothing.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import date
from decimal import ROUND_HALF_UP, Decimal
from typing import TYPE_CHECKING, Any

from sqlalchemy import ColumnElement, Table, select, true, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from tidings.errors import Conflict, Forbidden, InvalidInput, NotFound, Unauthorized
from tidings.portal import tables
from tidings.portal.accounts import LANDLORD, OPS, TENANT
from tidings.portal.events import event, now_iso

if TYPE_CHECKING:
    from tidings.portal.app import Portal

CURRENCY = "GBP"
CENT = Decimal("0.01")
User = dict[str, Any]


@dataclass(frozen=True)
class Line:
    description: str
    qty: Decimal
    unit_price: Decimal
    tax_rate: Decimal = Decimal(0)  # percent

    def amount(self) -> Decimal:
        gross = self.qty * self.unit_price * (1 + self.tax_rate / 100)
        return gross.quantize(CENT, rounding=ROUND_HALF_UP)

    def json(self) -> dict[str, Any]:
        return {
            "description": self.description,
            "qty": float(self.qty),
            "unitPrice": float(self.unit_price),
            "taxRate": float(self.tax_rate),
            "amount": float(self.amount()),
        }


@dataclass(frozen=True)
class NewInvoice:
    tenancy_id: str
    issue_date: date
    due_date: date
    lines: list[Line]


@dataclass(frozen=True)
class Payment:
    invoice_id: str
    amount: Decimal
    paid_at: str
    provider: str | None = None
    provider_ref: str | None = None


# -- tenancies ------------------------------------------------------------------


def tenancy_json(row: Any) -> dict[str, Any]:
    return {
        "id": row.id,
        "landlordId": row.organisation_id,
        "propertyId": row.property_id,
        "renterId": row.renter_id,
        "startDate": row.start_date,
        "rent": row.rent_cents / 100,
        "currency": CURRENCY,
        "address": row.address,
    }


def _tenancies_of(user: User) -> ColumnElement[bool]:
    if user["role"] == TENANT:
        return tables.tenancies.c.renter_id == str(user["id"])
    if user["role"] == LANDLORD:
        return tables.tenancies.c.organisation_id == str(user["organisationId"])
    if user["role"] == OPS:
        return true()
    raise Forbidden("tenancies are the landlord's and the renter's")


async def list_tenancies(portal: Portal, user: User) -> list[dict[str, Any]]:
    query = (
        select(tables.tenancies, tables.properties.c.address)
        .join(tables.properties, tables.properties.c.id == tables.tenancies.c.property_id)
        .where(_tenancies_of(user))
        .order_by(tables.tenancies.c.id)
    )
    async with portal.engine.connect() as conn:
        return [tenancy_json(r) for r in (await conn.execute(query)).all()]


# -- invoices -------------------------------------------------------------------


def _day(value: str) -> str:
    return f"{value}T00:00:00Z"


def invoice_json(row: Any) -> dict[str, Any]:
    return {
        "id": row.id,
        "landlordId": row.organisation_id,
        "tenancyId": row.tenancy_id,
        "renterId": row.renter_id,
        "number": row.number,
        "issueDate": _day(row.issue_date),
        "dueDate": _day(row.due_date),
        "amount": row.amount_cents / 100,
        "currency": row.currency,
        "status": row.status,
        "lines": row.lines,
        "createdAt": row.created_at,
    }


def _invoices_of(user: User) -> ColumnElement[bool]:
    if user["role"] == TENANT:
        return tables.invoices.c.renter_id == str(user["id"])
    if user["role"] == LANDLORD:
        return tables.invoices.c.organisation_id == str(user["organisationId"])
    raise Forbidden("invoices are the landlord's and the renter's")


def _insert_ignoring_conflict(conn: AsyncConnection, table: Table, **values: Any) -> Any:
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    return dialect.insert(table).values(**values).on_conflict_do_nothing()


async def next_number(conn: AsyncConnection, organisation_id: str, year: int) -> str:
    """The organisation's next invoice number for ``year``, taken in the
    caller's transaction (gap-free: a rollback returns it)."""
    counters = tables.invoice_counters
    await conn.execute(
        _insert_ignoring_conflict(
            conn, counters, organisation_id=organisation_id, year=year, last=0
        )
    )
    taken = await conn.execute(
        update(counters)
        .where(counters.c.organisation_id == organisation_id, counters.c.year == year)
        .values(last=counters.c.last + 1)
        .returning(counters.c.last)
    )
    return f"INV-{year:04d}-{taken.scalar_one():06d}"


async def create_invoice(portal: Portal, user: User, new: NewInvoice) -> dict[str, Any]:
    """A SENT invoice for a tenancy of the landlord's organisation, and
    ``invoice.created``."""
    if user["role"] != LANDLORD:
        raise Forbidden("only the landlord issues invoices")
    if new.due_date < new.issue_date:
        raise InvalidInput("dueDate is before issueDate", field="/dueDate")
    amount = sum((line.amount() for line in new.lines), Decimal(0))
    if amount <= 0:
        raise InvalidInput("the lines add up to nothing", field="/lines")
    invoice_id = "inv_" + secrets.token_hex(6)
    async with portal.engine.begin() as conn:
        tenancy = (
            await conn.execute(
                select(tables.tenancies).where(
                    tables.tenancies.c.id == new.tenancy_id,
                    tables.tenancies.c.organisation_id == user["organisationId"],
                )
            )
        ).first()
        if tenancy is None:
            raise InvalidInput(f"no tenancy {new.tenancy_id!r} of yours", field="/tenancyId")
        number = await next_number(conn, tenancy.organisation_id, new.issue_date.year)
        lines = [line.json() for line in new.lines]
        await conn.execute(
            tables.invoices.insert().values(
                id=invoice_id,
                organisation_id=tenancy.organisation_id,
                tenancy_id=tenancy.id,
                renter_id=tenancy.renter_id,
                number=number,
                issue_date=new.issue_date.isoformat(),
                due_date=new.due_date.isoformat(),
                amount_cents=int(amount * 100),
                currency=CURRENCY,
                status="SENT",
                lines=lines,
                created_at=now_iso(),
            )
        )
        row = await _invoice(conn, invoice_id)
        await portal.events.add(
            conn,
            event(
                "invoice.created",
                row.organisation_id,
                entity_type="invoice",
                entity_id=invoice_id,
                actor_id=user["id"],
                data={
                    "invoiceId": invoice_id,
                    "number": number,
                    "tenancyId": row.tenancy_id,
                    "renterId": row.renter_id,
                    "issueDate": row.issue_date,  # the pack's format: date
                    "dueDate": row.due_date,
                    "amount": row.amount_cents / 100,
                    "currency": CURRENCY,
                    "status": "SENT",
                    "lines": [{k: v for k, v in line.items() if k != "amount"} for line in lines],
                },
            ),
        )
    portal.events.committed()
    return invoice_json(row)


async def _invoice(conn: AsyncConnection, invoice_id: str) -> Any:
    query = select(tables.invoices).where(tables.invoices.c.id == invoice_id)
    return (await conn.execute(query)).first()


async def list_invoices(portal: Portal, user: User) -> list[dict[str, Any]]:
    query = (
        select(tables.invoices)
        .where(_invoices_of(user))
        .order_by(tables.invoices.c.created_at.desc(), tables.invoices.c.id.desc())
    )
    async with portal.engine.connect() as conn:
        return [invoice_json(r) for r in (await conn.execute(query)).all()]


async def get_invoice(portal: Portal, user: User, invoice_id: str) -> dict[str, Any]:
    query = select(tables.invoices).where(tables.invoices.c.id == invoice_id, _invoices_of(user))
    async with portal.engine.connect() as conn:
        row = (await conn.execute(query)).first()
    if row is None:
        raise NotFound(f"no invoice {invoice_id!r}", field="/invoiceId")
    return invoice_json(row)


# -- the payment webhook --------------------------------------------------------


def verified_webhook_id(secret: str, body: bytes, headers: dict[str, str]) -> str:
    """The ``webhook-id`` of a correctly signed, fresh delivery; else 401."""
    try:
        Webhook(secret).verify(body, headers, json_parse=False)
    except (WebhookVerificationError, ValueError) as exc:  # ValueError: malformed headers
        raise Unauthorized(f"payment webhook refused: {exc}") from None
    return headers["webhook-id"]


def payment_answer(payment: Any, invoice_status: str) -> dict[str, Any]:
    return {
        "success": True,
        "payment": {
            "id": payment.id,
            "invoiceId": payment.invoice_id,
            "amount": payment.amount_cents / 100,
            "status": payment.status,
        },
        "invoice": {"id": payment.invoice_id, "status": invoice_status},
    }


async def _payment_of(conn: AsyncConnection, webhook_id: str) -> Any:
    query = select(tables.payments).where(tables.payments.c.webhook_id == webhook_id)
    return (await conn.execute(query)).first()


async def record_payment(portal: Portal, webhook_id: str, paid: Payment) -> dict[str, Any]:
    """Mark the invoice PAID once per ``webhook_id`` and emit ``invoice.paid``."""
    try:
        async with portal.engine.begin() as conn:
            seen = await _payment_of(conn, webhook_id)
            if seen is not None:  # a redelivery: the first answer, nothing changes
                return payment_answer(seen, "PAID")
            invoice = await _invoice(conn, paid.invoice_id)
            if invoice is None:
                raise InvalidInput(f"no invoice {paid.invoice_id!r}", field="/invoiceId")
            if paid.amount * 100 != invoice.amount_cents:
                raise InvalidInput(
                    f"amount {paid.amount} is not the invoice's {invoice.amount_cents / 100}",
                    field="/amount",
                )
            marked = await conn.execute(
                update(tables.invoices)
                .where(tables.invoices.c.id == invoice.id, tables.invoices.c.status == "SENT")
                .values(status="PAID")
            )
            if marked.rowcount != 1:
                raise Conflict(f"invoice {invoice.id!r} is already paid", field="/invoiceId")
            payment_id = "pay_" + secrets.token_hex(6)
            await conn.execute(
                tables.payments.insert().values(
                    id=payment_id,
                    invoice_id=invoice.id,
                    webhook_id=webhook_id,
                    amount_cents=invoice.amount_cents,
                    status="CONFIRMED",
                    provider=paid.provider,
                    provider_ref=paid.provider_ref,
                    paid_at=paid.paid_at,
                )
            )
            await portal.events.add(
                conn,
                event(
                    "invoice.paid",
                    invoice.organisation_id,
                    entity_type="invoice",
                    entity_id=invoice.id,
                    actor_id="payment-provider",
                    data={
                        "invoiceId": invoice.id,
                        "paymentId": payment_id,
                        "amount": invoice.amount_cents / 100,
                        "currency": invoice.currency,
                        "paidAt": paid.paid_at,
                        "provider": paid.provider,
                        "providerRef": paid.provider_ref,
                        "renterId": invoice.renter_id,
                    },
                ),
            )
            payment = await _payment_of(conn, webhook_id)
    except IntegrityError:  # the same webhook-id concurrently: the first one's answer
        async with portal.engine.connect() as conn:
            seen = await _payment_of(conn, webhook_id)
        if seen is None:
            raise
        return payment_answer(seen, "PAID")
    portal.events.committed()
    return payment_answer(payment, "PAID")
