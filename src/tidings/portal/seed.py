"""``seed_demo``: the demo's organisations, accounts, properties, tenancies
and some history. Idempotent: a second run finds everything and adds
nothing (the history goes only into a portal without tickets)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING

from sqlalchemy import Table, select
from sqlalchemy.ext.asyncio import AsyncConnection

from tidings.portal import accounts, finance, tables, tickets
from tidings.portal.accounts import CONTRACTOR, LANDLORD, OPS, TENANT

if TYPE_CHECKING:
    from tidings.portal.app import Portal

DEMO_PASSWORD = "password123"
ORGANISATIONS = {"org-1": "Northwind Lettings", "org-2": "Harbour Homes"}
PROPERTIES = {  # id -> (organisation, address)
    "prop-1": ("org-1", "12 Elm Street, Flat 3"),
    "prop-2": ("org-2", "8 Quay Road"),
}
# email -> (user id, name, role, organisation)
ACCOUNTS = {
    "tenant@example.com": ("usr-tenant", "Rita Renter", TENANT, "org-1"),
    "landlord@example.com": ("usr-landlord", "Lars Landlord", LANDLORD, "org-1"),
    "contractor@example.com": ("usr-contractor", "Cora Contractor", CONTRACTOR, "org-1"),
    "ops@example.com": ("usr-ops", "Otto Ops", OPS, None),
    "landlord2@example.com": ("usr-landlord2", "Lena Landlord", LANDLORD, "org-2"),
    "tenant2@example.com": ("usr-tenant2", "Tom Renter", TENANT, "org-2"),
}
# id -> (organisation, property, renter, start date, monthly rent in cents)
TENANCIES = {
    "ten-1": ("org-1", "prop-1", "usr-tenant", "2025-01-01", 150000),
    "ten-2": ("org-2", "prop-2", "usr-tenant2", "2025-03-01", 120000),
}


async def _insert_missing(
    conn: AsyncConnection, table: Table, rows: list[dict[str, object]]
) -> None:
    existing = {r for (r,) in (await conn.execute(select(table.c.id))).all()}
    fresh = [row for row in rows if row["id"] not in existing]
    if fresh:
        await conn.execute(table.insert(), fresh)


async def seed_places(portal: Portal) -> None:
    async with portal.engine.begin() as conn:
        await _insert_missing(
            conn,
            tables.organisations,
            [{"id": k, "name": v} for k, v in ORGANISATIONS.items()],
        )
        await _insert_missing(
            conn,
            tables.properties,
            [{"id": k, "organisation_id": o, "address": a} for k, (o, a) in PROPERTIES.items()],
        )
    for organisation_id, name in ORGANISATIONS.items():
        await portal.accounts.sync.organisation(organisation_id, name)


async def seed_tenancies(portal: Portal) -> None:
    async with portal.engine.begin() as conn:
        await _insert_missing(
            conn,
            tables.tenancies,
            [
                {
                    "id": k,
                    "organisation_id": o,
                    "property_id": p,
                    "renter_id": r,
                    "start_date": d,
                    "rent_cents": c,
                }
                for k, (o, p, r, d, c) in TENANCIES.items()
            ],
        )
    for _org, _prop, renter_id, _date, _rent in TENANCIES.values():
        await portal.accounts.resync(renter_id)  # the property becomes a resource


# (renter email, title, priority, the moves after creation: (who, target))
HISTORY = [
    (
        "tenant@example.com",
        "Leaking kitchen tap",
        "HIGH",
        [
            ("landlord", "TRIAGED"),
            ("contractor", "QUOTED"),
            ("landlord", "APPROVED"),
            ("contractor", "IN_PROGRESS"),
            ("contractor", "COMPLETED"),
        ],
    ),
    (
        "tenant@example.com",
        "Radiator valve stuck",
        "MEDIUM",
        [("landlord", "TRIAGED"), ("contractor", "QUOTED")],
    ),
    ("tenant@example.com", "Mould in the bathroom", "LOW", []),
    ("tenant2@example.com", "Front door lock sticks", "MEDIUM", []),
]


async def _user(portal: Portal, email: str) -> dict[str, object]:
    async with portal.engine.connect() as conn:
        return accounts.user_json(await accounts.find_by_email(conn, email))


async def _has_tickets(portal: Portal) -> bool:
    async with portal.engine.connect() as conn:
        return (await conn.execute(select(tables.tickets.c.id).limit(1))).first() is not None


async def seed_history(portal: Portal) -> None:
    """Tickets in several states (with their timelines and events), an
    invoice; the hub's rules add the notifications. Only into an empty
    portal, through the same use cases as the API."""
    if await _has_tickets(portal):
        return
    staff = {
        "landlord": await _user(portal, "landlord@example.com"),
        "contractor": await _user(portal, "contractor@example.com"),
    }
    for renter_email, title, priority, moves in HISTORY:
        renter = await _user(portal, renter_email)
        new = tickets.NewTicket(title=title, priority=priority, category="repairs")
        ticket_id = str((await tickets.create(portal, renter, new))["id"])
        for who, target in moves:
            actor = staff[who]
            if target == "QUOTED":
                await tickets.submit_quote(portal, actor, ticket_id, 12000, "Parts and labour")
            elif target == "APPROVED":
                await tickets.approve(portal, actor, ticket_id, None)
            else:
                await tickets.change_status(portal, actor, ticket_id, target)
    today = datetime.now(UTC).date()
    first = date(today.year, today.month, 1)
    rent = finance.Line(f"Rent {first:%B %Y}", Decimal(1), Decimal(1500))
    invoice = finance.NewInvoice("ten-1", first, first + timedelta(days=14), [rent])
    await finance.create_invoice(portal, staff["landlord"], invoice)


async def seed_demo(portal: Portal) -> None:
    """The six demo accounts (password ``password123``) and their world."""
    await seed_places(portal)
    for email, (user_id, name, role, organisation_id) in ACCOUNTS.items():
        await portal.accounts.create(
            email=email,
            name=name,
            role=role,
            organisation_id=organisation_id,
            password=DEMO_PASSWORD,
            user_id=user_id,
        )
    await seed_tenancies(portal)
    await seed_history(portal)
