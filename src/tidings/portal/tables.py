"""The portal's own tables (its database, not the hub's).

Money is stored in integer cents (exact on every backend); times as
ISO-8601 UTC strings (``2025-11-06T09:00:00Z``: portable, and they sort).
The timeline's ``seq`` orders a ticket's rows; the invoice counter row is
what makes numbers gap-free (see :mod:`tidings.portal.finance`).
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    Column,
    ForeignKey,
    Integer,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
    UniqueConstraint,
)

metadata = MetaData()

organisations = Table(
    "portal_organisations",
    metadata,
    Column("id", String(64), primary_key=True),  # = the Tidings tenant id
    Column("name", String(200), nullable=False),
)

users = Table(
    "portal_users",
    metadata,
    Column("id", String(64), primary_key=True),  # = the Tidings user id
    Column("email", String(320), nullable=False, unique=True),
    Column("name", String(200), nullable=False),
    Column("role", String(16), nullable=False),  # TENANT | LANDLORD | CONTRACTOR | OPS
    Column("organisation_id", String(64), ForeignKey("portal_organisations.id")),
    Column("password_hash", String(200), nullable=False),
)

properties = Table(
    "portal_properties",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("organisation_id", String(64), ForeignKey("portal_organisations.id"), nullable=False),
    Column("address", String(300), nullable=False),
)

tenancies = Table(
    "portal_tenancies",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("organisation_id", String(64), ForeignKey("portal_organisations.id"), nullable=False),
    Column("property_id", String(64), ForeignKey("portal_properties.id"), nullable=False),
    Column("renter_id", String(64), ForeignKey("portal_users.id"), nullable=False),
    Column("start_date", String(10), nullable=False),
    Column("rent_cents", Integer, nullable=False),
)

tickets = Table(
    "portal_tickets",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("organisation_id", String(64), ForeignKey("portal_organisations.id"), nullable=False),
    Column("property_id", String(64), ForeignKey("portal_properties.id"), nullable=False),
    Column("renter_id", String(64), ForeignKey("portal_users.id")),
    Column("contractor_id", String(64), ForeignKey("portal_users.id")),
    Column("title", String(200), nullable=False),
    Column("category", String(64), nullable=False),
    Column("description", Text, nullable=False),
    Column("priority", String(16), nullable=False),
    Column("status", String(16), nullable=False),
    Column("quote_cents", Integer),
    Column("quote_notes", Text),
    Column("created_at", String(32), nullable=False),
    Column("updated_at", String(32), nullable=False),
)

timeline = Table(
    "portal_ticket_timeline",
    metadata,
    Column("seq", Integer, primary_key=True, autoincrement=True),
    Column("id", String(64), nullable=False, unique=True),
    Column("ticket_id", String(64), ForeignKey("portal_tickets.id"), nullable=False, index=True),
    Column("event_type", String(32), nullable=False),
    Column("actor_id", String(64)),
    Column("details", Text, nullable=False),  # JSON text, as seed 004 shows it
    Column("created_at", String(32), nullable=False),
)

# An approve's answer per (user, Idempotency-Key): the same key again gets it back.
idempotency = Table(
    "portal_idempotency",
    metadata,
    Column("user_id", String(64), nullable=False),
    Column("key", String(200), nullable=False),
    Column("ticket_id", String(64), nullable=False),
    Column("status_code", Integer, nullable=False),
    Column("body", JSON, nullable=False),
    PrimaryKeyConstraint("user_id", "key"),
)

invoice_counters = Table(
    "portal_invoice_counters",
    metadata,
    Column("organisation_id", String(64), nullable=False),
    Column("year", Integer, nullable=False),
    Column("last", Integer, nullable=False),
    PrimaryKeyConstraint("organisation_id", "year"),
)

invoices = Table(
    "portal_invoices",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("organisation_id", String(64), ForeignKey("portal_organisations.id"), nullable=False),
    Column("tenancy_id", String(64), ForeignKey("portal_tenancies.id"), nullable=False),
    Column("renter_id", String(64), ForeignKey("portal_users.id"), nullable=False),
    Column("number", String(32), nullable=False),
    Column("issue_date", String(32), nullable=False),
    Column("due_date", String(32), nullable=False),
    Column("amount_cents", Integer, nullable=False),
    Column("currency", String(3), nullable=False),
    Column("status", String(8), nullable=False),  # SENT | PAID
    Column("lines", JSON, nullable=False),
    Column("created_at", String(32), nullable=False),
    UniqueConstraint("organisation_id", "number"),
)

payments = Table(
    "portal_payments",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("invoice_id", String(64), ForeignKey("portal_invoices.id"), nullable=False),
    Column("webhook_id", String(200), nullable=False, unique=True),  # replays change nothing
    Column("amount_cents", Integer, nullable=False),
    Column("status", String(16), nullable=False),
    Column("provider", String(64)),
    Column("provider_ref", String(200)),
    Column("paid_at", String(32), nullable=False),
)
