"""The portal's HTTP API (seed 004's contract): thin routes over the use
cases in :mod:`tidings.portal.tickets` and :mod:`tidings.portal.finance`.

Errors are Tidings' problem+json (``tidings.errors`` raised, rendered by
``tidings.http.problems``); bodies are checked by pydantic models, whose
422s name the field.
"""

from __future__ import annotations

from datetime import UTC, date
from decimal import Decimal
from typing import Annotated, Any

from fastapi import APIRouter, Body, Header, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError

from tidings.errors import InvalidInput, Unauthorized
from tidings.portal import accounts, finance, tickets
from tidings.portal.auth import mint, password_matches, user_id_of

router = APIRouter(prefix="/api")


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class LoginIn(Strict):
    email: str = Field(min_length=3, max_length=320)
    password: str = Field(min_length=1, max_length=200)


class TicketIn(Strict):
    title: str = Field(min_length=1, max_length=200)
    propertyId: str | None = Field(default=None, max_length=64)
    category: str | None = Field(default=None, max_length=64)
    description: str | None = Field(default=None, max_length=5000)
    priority: str | None = Field(default=None, max_length=16)


class StatusIn(Strict):
    to: str = Field(min_length=1, max_length=32)
    reason: str | None = Field(default=None, max_length=500)


class QuoteIn(Strict):
    amount: Decimal = Field(gt=0, le=1_000_000)
    notes: str = Field(default="", max_length=2000)


class ApproveIn(Strict):
    pass


class LineIn(Strict):
    description: str = Field(min_length=1, max_length=500)
    qty: Decimal = Field(gt=0, le=100_000)
    unitPrice: Decimal = Field(ge=0, le=10_000_000)
    taxRate: Decimal = Field(default=Decimal(0), ge=0, le=100)  # percent


class InvoiceIn(Strict):
    tenancyId: str = Field(min_length=1, max_length=64)
    issueDate: date
    dueDate: date
    lines: list[LineIn] = Field(min_length=1, max_length=100)


class PaymentIn(BaseModel):
    """Seed 004's webhook body (other provider fields are ignored)."""

    invoiceId: str = Field(min_length=1, max_length=64)
    amount: Decimal = Field(gt=0)
    paidAt: AwareDatetime
    providerRef: str | None = Field(default=None, max_length=200)
    provider: str | None = Field(default=None, max_length=64)


def cents(amount: Decimal, field: str) -> int:
    """Exact cents of a money amount (more than two decimals is refused)."""
    scaled = amount * 100
    if scaled != scaled.to_integral_value():
        raise InvalidInput("an amount has at most two decimals", field=field)
    return int(scaled)


def portal_of(request: Request) -> Any:
    return request.app.state.portal


async def caller(request: Request) -> dict[str, Any]:
    """The portal user of the request's bearer token (401 otherwise)."""
    portal = portal_of(request)
    user_id = user_id_of(portal.settings.jwt_secret, request.headers.get("authorization"))
    async with portal.engine.connect() as conn:
        row = await accounts.get_user(conn, user_id)
    if row is None:
        raise Unauthorized("the token's user does not exist")
    return accounts.user_json(row)


@router.post("/auth/login")
async def login(request: Request, body: LoginIn) -> dict[str, Any]:
    portal = portal_of(request)
    async with portal.engine.connect() as conn:
        row = await accounts.find_by_email(conn, body.email)
    matches = await password_matches(row.password_hash if row else None, body.password)
    if not matches or row is None:
        raise Unauthorized("wrong email or password", field="/password")
    user = accounts.user_json(row)
    return {
        "accessToken": mint(portal.settings.jwt_secret, user, portal.settings.token_ttl_s),
        "tokenType": "Bearer",
        "user": user,
    }


@router.get("/me")
async def me(request: Request) -> dict[str, Any]:
    return await caller(request)


@router.post("/tickets", status_code=201)
async def create_ticket(request: Request, body: TicketIn) -> dict[str, Any]:
    new = tickets.NewTicket(
        title=body.title,
        property_id=body.propertyId,
        category=body.category,
        description=body.description,
        priority=body.priority,
    )
    return await tickets.create(portal_of(request), await caller(request), new)


@router.get("/tickets")
async def list_tickets(
    request: Request, status: Annotated[str | None, Query(max_length=32)] = None
) -> list[dict[str, Any]]:
    return await tickets.list_visible(portal_of(request), await caller(request), status)


@router.get("/tickets/{ticket_id}")
async def get_ticket(request: Request, ticket_id: str) -> dict[str, Any]:
    return await tickets.get(portal_of(request), await caller(request), ticket_id)


@router.get("/tickets/{ticket_id}/timeline")
async def ticket_timeline(request: Request, ticket_id: str) -> list[dict[str, Any]]:
    return await tickets.timeline(portal_of(request), await caller(request), ticket_id)


@router.patch("/tickets/{ticket_id}/status")
async def change_ticket_status(request: Request, ticket_id: str, body: StatusIn) -> dict[str, Any]:
    user = await caller(request)
    return await tickets.change_status(portal_of(request), user, ticket_id, body.to, body.reason)


@router.post("/tickets/{ticket_id}/quote")
async def quote_ticket(request: Request, ticket_id: str, body: QuoteIn) -> dict[str, Any]:
    user = await caller(request)
    amount = cents(body.amount, "/amount")
    return await tickets.submit_quote(portal_of(request), user, ticket_id, amount, body.notes)


@router.post("/tickets/{ticket_id}/approve")
async def approve_ticket(
    request: Request,
    ticket_id: str,
    body: Annotated[ApproveIn | None, Body()] = None,
    idempotency_key: Annotated[
        str | None, Header(alias="Idempotency-Key", min_length=1, max_length=200)
    ] = None,
) -> JSONResponse:
    user = await caller(request)
    answer = await tickets.approve(portal_of(request), user, ticket_id, idempotency_key)
    headers = {"Idempotent-Replayed": "true"} if answer.replayed else {}
    return JSONResponse(answer.body, headers=headers)


@router.get("/tenancies")
async def list_tenancies(request: Request) -> list[dict[str, Any]]:
    return await finance.list_tenancies(portal_of(request), await caller(request))


@router.post("/finance/invoices", status_code=201)
async def create_invoice(request: Request, body: InvoiceIn) -> dict[str, Any]:
    lines = [
        finance.Line(line.description, line.qty, line.unitPrice, line.taxRate)
        for line in body.lines
    ]
    new = finance.NewInvoice(body.tenancyId, body.issueDate, body.dueDate, lines)
    return await finance.create_invoice(portal_of(request), await caller(request), new)


@router.get("/finance/invoices")
async def list_invoices(request: Request) -> list[dict[str, Any]]:
    return await finance.list_invoices(portal_of(request), await caller(request))


@router.get("/finance/invoices/{invoice_id}")
async def get_invoice(request: Request, invoice_id: str) -> dict[str, Any]:
    return await finance.get_invoice(portal_of(request), await caller(request), invoice_id)


@router.post("/finance/payments/webhook")
async def payment_webhook(request: Request) -> dict[str, Any]:
    """The payment provider's signed callback (no user token: the
    Standard Webhooks signature is the credential)."""
    portal = portal_of(request)
    raw = await request.body()
    webhook_id = finance.verified_webhook_id(
        portal.settings.payment_secret, raw, dict(request.headers)
    )
    try:
        body = PaymentIn.model_validate_json(raw)
    except ValidationError as exc:
        raise RequestValidationError(
            [{**e, "loc": ("body", *e["loc"])} for e in exc.errors(include_url=False)]
        ) from None
    paid_at = body.paidAt.astimezone(UTC).isoformat().replace("+00:00", "Z")
    paid = finance.Payment(body.invoiceId, body.amount, paid_at, body.provider, body.providerRef)
    return await finance.record_payment(portal, webhook_id, paid)
