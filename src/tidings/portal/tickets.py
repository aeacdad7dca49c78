"""Maintenance tickets: create, list, read, move through the state machine,
quote, approve; each change, its timeline row and its event in one
transaction of the portal's database (the event through the outbox).

The lifecycle is Tidings' ``TICKET_LIFECYCLE`` (seed 004: OPEN -> TRIAGED ->
QUOTED -> APPROVED -> IN_PROGRESS -> COMPLETED -> AUDITED; any ->
CANCELLED). Who may do what (decided here, documented in README.md):

* a renter (``TENANT``) creates tickets for its property and may cancel its
  own ticket while it is OPEN;
* the landlord triages, approves the quote (``/approve``), may start,
  complete, audit and cancel;
* a contractor of the organisation quotes a TRIAGED ticket (``/quote``),
  starts (IN_PROGRESS) and completes it (not another contractor's ticket);
* OPS reads every organisation's tickets and changes none.

Guarantees: a move the machine refuses is a 409 naming the ``allowed``
next states; a role not allowed is a 403; a ticket outside the caller's
reach is a 404 (never a 403: its existence is not revealed). A status
update is conditional on the status read (``WHERE status = old``), so two
concurrent moves from one state make one change and one event; the other
gets the 409. An approve with an ``Idempotency-Key`` stores its answer per
(user, key) in the same transaction: the key again returns that answer
and emits nothing.
"""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy import ColumnElement, Select, select, true, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from tidings.core.statemachine import TICKET_LIFECYCLE, StateMachine
from tidings.errors import Conflict, Forbidden, InvalidInput, NotFound
from tidings.portal import tables
from tidings.portal.accounts import CONTRACTOR, LANDLORD, OPS, TENANT
from tidings.portal.events import event, now_iso

if TYPE_CHECKING:
    from tidings.portal.app import Portal

MACHINE: StateMachine = TICKET_LIFECYCLE
PRIORITIES = ("LOW", "MEDIUM", "HIGH", "URGENT")
CURRENCY = "GBP"
# The machine's guards name permissions; a portal role holds these.
ROLE_PERMISSIONS: dict[str, frozenset[str]] = {
    LANDLORD: frozenset({"tickets.triage", "tickets.approve", "tickets.audit"}),
    CONTRACTOR: frozenset({"tickets.quote"}),
    TENANT: frozenset(),
    OPS: frozenset(),
}
# The targets each role may ask for with PATCH /status (quote and approve
# have their own endpoints).
STATUS_TARGETS: dict[str, frozenset[str]] = {
    LANDLORD: frozenset({"TRIAGED", "IN_PROGRESS", "COMPLETED", "AUDITED", "CANCELLED"}),
    CONTRACTOR: frozenset({"IN_PROGRESS", "COMPLETED"}),
    TENANT: frozenset({"CANCELLED"}),
    OPS: frozenset(),
}
# The timeline row each target writes (seed 004: created, status_changed, ...).
TIMELINE_TYPES = {"QUOTED": "quote_submitted", "APPROVED": "approved", "COMPLETED": "completed"}
User = dict[str, Any]


@dataclass(frozen=True)
class NewTicket:
    title: str
    property_id: str | None = None
    category: str | None = None
    description: str | None = None
    priority: str | None = None


def ticket_json(row: Any) -> dict[str, Any]:
    quote = None
    if row.quote_cents is not None:
        quote = {"amount": row.quote_cents / 100, "notes": row.quote_notes or ""}
    return {
        "id": row.id,
        "landlordId": row.organisation_id,
        "propertyId": row.property_id,
        "renterId": row.renter_id,
        "contractorId": row.contractor_id,
        "title": row.title,
        "category": row.category,
        "description": row.description,
        "priority": row.priority,
        "status": row.status,
        "quote": quote,
        "createdAt": row.created_at,
        "updatedAt": row.updated_at,
        **_names(row),
    }


def _names(row: Any) -> dict[str, Any]:
    """What every read of a ticket carries beside it (:func:`named_tickets`):
    its organisation's name and its property's address, for the pages."""
    return {"organisationName": row.organisation_name, "propertyAddress": row.property_address}


def named_tickets() -> Select[Any]:
    """Tickets with their organisation's name and property's address."""
    t, o, p = tables.tickets, tables.organisations, tables.properties
    return (
        select(t, o.c.name.label("organisation_name"), p.c.address.label("property_address"))
        .join(o, o.c.id == t.c.organisation_id)
        .join(p, p.c.id == t.c.property_id)
    )


def timeline_json(row: Any) -> dict[str, Any]:
    return {
        "id": row.id,
        "ticketId": row.ticket_id,
        "eventType": row.event_type,
        "actorId": row.actor_id,
        "details": row.details,
        "createdAt": row.created_at,
    }


def visible_to(user: User) -> ColumnElement[bool]:
    """The tickets a user may see: a renter its own, staff their
    organisation's, OPS every organisation's."""
    if user["role"] == OPS:
        return true()
    if user["role"] == TENANT:
        return tables.tickets.c.renter_id == str(user["id"])
    return tables.tickets.c.organisation_id == str(user["organisationId"])


async def _visible_ticket(conn: AsyncConnection, user: User, ticket_id: str) -> Any:
    query = named_tickets().where(tables.tickets.c.id == ticket_id, visible_to(user))
    row = (await conn.execute(query)).first()
    if row is None:
        raise NotFound(f"no ticket {ticket_id!r}", field="/ticketId")
    return row


async def _timeline_row(
    conn: AsyncConnection, ticket_id: str, kind: str, actor_id: str, details: dict[str, Any]
) -> None:
    await conn.execute(
        tables.timeline.insert().values(
            id="tl_" + secrets.token_hex(8),
            ticket_id=ticket_id,
            event_type=kind,
            actor_id=actor_id,
            details=json.dumps(details, separators=(",", ":")),
            created_at=now_iso(),
        )
    )


def _refs(row: Any) -> dict[str, Any]:
    """The fields every ticket event carries for its audiences."""
    return {
        "ticketId": row.id,
        "propertyId": row.property_id,
        "renterId": row.renter_id,
        "resources": [{"type": "ticket", "id": row.id}],
    }


async def _renter_property(conn: AsyncConnection, renter: User, wanted: str | None) -> str:
    query = select(tables.tenancies.c.property_id).where(
        tables.tenancies.c.renter_id == renter["id"]
    )
    properties = [p for (p,) in (await conn.execute(query.order_by(tables.tenancies.c.id))).all()]
    if wanted is None:
        if not properties:
            raise InvalidInput("you rent no property: name one", field="/propertyId")
        return str(properties[0])
    if wanted not in properties:
        raise InvalidInput(f"you do not rent property {wanted!r}", field="/propertyId")
    return wanted


async def create(portal: Portal, user: User, new: NewTicket) -> dict[str, Any]:
    """A renter's new OPEN ticket, its ``created`` row and ``ticket.created``."""
    if user["role"] != TENANT:
        raise Forbidden("only a renter creates tickets")
    priority = (new.priority or "MEDIUM").upper()
    if priority not in PRIORITIES:
        raise InvalidInput(f"priority must be one of {', '.join(PRIORITIES)}", field="/priority")
    at = now_iso()
    ticket_id = "tkt_" + secrets.token_hex(6)
    async with portal.engine.begin() as conn:
        property_id = await _renter_property(conn, user, new.property_id)
        await conn.execute(
            tables.tickets.insert().values(
                id=ticket_id,
                organisation_id=user["organisationId"],
                property_id=property_id,
                renter_id=user["id"],
                title=new.title,
                category=new.category or "general",
                description=new.description or "",
                priority=priority,
                status=MACHINE.initial,
                created_at=at,
                updated_at=at,
            )
        )
        row = await _visible_ticket(conn, user, ticket_id)
        await _timeline_row(
            conn, ticket_id, "created", user["id"], {"title": new.title, "priority": priority}
        )
        await portal.events.add(
            conn,
            event(
                "ticket.created",
                row.organisation_id,
                entity_type="ticket",
                entity_id=ticket_id,
                actor_id=user["id"],
                data={
                    **_refs(row),
                    "landlordId": row.organisation_id,
                    "title": row.title,
                    "category": row.category,
                    "priority": row.priority,
                    "status": row.status,
                    "actorRole": user["role"],
                    "createdAt": at,
                },
            ),
        )
    portal.events.committed()
    return ticket_json(row)


async def list_visible(
    portal: Portal, user: User, status: str | None = None
) -> list[dict[str, Any]]:
    query = named_tickets().where(visible_to(user))
    if status is not None:
        query = query.where(tables.tickets.c.status == status)
    query = query.order_by(tables.tickets.c.created_at.desc(), tables.tickets.c.id.desc())
    async with portal.engine.connect() as conn:
        return [ticket_json(r) for r in (await conn.execute(query)).all()]


async def get(portal: Portal, user: User, ticket_id: str) -> dict[str, Any]:
    async with portal.engine.connect() as conn:
        return ticket_json(await _visible_ticket(conn, user, ticket_id))


async def timeline(portal: Portal, user: User, ticket_id: str) -> list[dict[str, Any]]:
    async with portal.engine.connect() as conn:
        await _visible_ticket(conn, user, ticket_id)
        query = (
            select(tables.timeline)
            .where(tables.timeline.c.ticket_id == ticket_id)
            .order_by(tables.timeline.c.seq)
        )
        return [timeline_json(r) for r in (await conn.execute(query)).all()]


def _check_role_may_move(user: User, row: Any, to: str) -> None:
    role = user["role"]
    if to not in STATUS_TARGETS[role]:
        raise Forbidden(f"a {role} may not move a ticket to {to}")
    if role == TENANT and row.status != "OPEN":
        raise Forbidden("a renter may cancel its ticket only while it is OPEN")
    if role == CONTRACTOR and row.contractor_id not in (None, user["id"]):
        raise Forbidden("another contractor works on this ticket")


def _event_data(row: Any, to: str, user: User, at: str, **more: Any) -> dict[str, Any]:
    """The data of the event a move to ``to`` emits (the pack's fields)."""
    refs = {**_refs(row), "actorRole": user["role"]}
    if to == "COMPLETED":
        return {**refs, "contractorId": row.contractor_id, "completedAt": at}
    if to == "APPROVED":
        return {
            **refs,
            "quoteId": "qt_" + row.id,
            "approvedByUserId": user["id"],
            "contractorId": row.contractor_id,
            "approvedAt": at,
        }
    if to == "QUOTED":
        return {**refs, "quoteId": "qt_" + row.id, "currency": CURRENCY, "submittedAt": at, **more}
    return {
        **refs,
        "previousStatus": row.status,
        "newStatus": to,
        "contractorId": row.contractor_id,
        "reason": more.get("reason"),
        "changedAt": at,
    }


async def _move(
    portal: Portal,
    conn: AsyncConnection,
    user: User,
    row: Any,
    to: str,
    *,
    changes: dict[str, Any] | None = None,
    details: dict[str, Any] | None = None,
    event_more: dict[str, Any] | None = None,
) -> Any:
    """Record an accepted move in ``conn``'s transaction: the row (only if
    its status is still the one decided on), the timeline row, the event."""
    transition = MACHINE.decide(
        row.status,
        to,
        permissions=ROLE_PERMISSIONS[user["role"]],
        triggered_by=user["id"],
    )
    at = now_iso()
    done = await conn.execute(
        update(tables.tickets)
        .where(tables.tickets.c.id == row.id, tables.tickets.c.status == row.status)
        .values(status=to, updated_at=at, **(changes or {}))
    )
    if done.rowcount != 1:  # moved meanwhile by someone else
        current = await _visible_ticket(conn, user, row.id)
        raise Conflict(
            f"ticket cannot move from {current.status} to {to}",
            field="/to",
            state=current.status,
            allowed=MACHINE.allowed(current.status),
        )
    kind = TIMELINE_TYPES.get(to, "status_changed")
    await _timeline_row(
        conn, row.id, kind, user["id"], {"from": row.status, "to": to, **(details or {})}
    )
    if transition.event_type is not None:
        await portal.events.add(
            conn,
            event(
                transition.event_type,
                row.organisation_id,
                entity_type="ticket",
                entity_id=row.id,
                actor_id=user["id"],
                data=_event_data(row, to, user, at, **(event_more or {})),
            ),
        )
    return await _visible_ticket(conn, user, row.id)


async def change_status(
    portal: Portal, user: User, ticket_id: str, to: str, reason: str | None = None
) -> dict[str, Any]:
    if to not in MACHINE.states:
        raise InvalidInput(f"to must be one of {', '.join(sorted(MACHINE.states))}", field="/to")
    async with portal.engine.begin() as conn:
        row = await _visible_ticket(conn, user, ticket_id)
        _check_role_may_move(user, row, to)
        changes = {"contractor_id": user["id"]} if user["role"] == CONTRACTOR else None
        moved = await _move(
            portal,
            conn,
            user,
            row,
            to,
            changes=changes,
            details={"reason": reason} if reason else None,
            event_more={"reason": reason},
        )
    portal.events.committed()
    return ticket_json(moved)


async def submit_quote(
    portal: Portal, user: User, ticket_id: str, amount_cents: int, notes: str
) -> dict[str, Any]:
    """A contractor's quote: TRIAGED -> QUOTED, the contractor assigned."""
    if user["role"] != CONTRACTOR:
        raise Forbidden("only a contractor submits quotes")
    async with portal.engine.begin() as conn:
        row = await _visible_ticket(conn, user, ticket_id)
        if row.contractor_id not in (None, user["id"]):
            raise Forbidden("another contractor works on this ticket")
        moved = await _move(
            portal,
            conn,
            user,
            row,
            "QUOTED",
            changes={
                "contractor_id": user["id"],
                "quote_cents": amount_cents,
                "quote_notes": notes,
            },
            details={"amount": amount_cents / 100, "notes": notes},
            event_more={"contractorId": user["id"], "amount": amount_cents / 100, "notes": notes},
        )
    portal.events.committed()
    return ticket_json(moved)


async def _stored_answer(conn: AsyncConnection, user: User, key: str) -> Any:
    query = select(tables.idempotency).where(
        tables.idempotency.c.user_id == user["id"], tables.idempotency.c.key == key
    )
    return (await conn.execute(query)).first()


@dataclass(frozen=True)
class Answer:
    body: dict[str, Any]
    replayed: bool = False


def _replay(stored: Any, ticket_id: str) -> Answer:
    if stored.ticket_id != ticket_id:
        raise InvalidInput(
            "this Idempotency-Key was used for another ticket", field="Idempotency-Key"
        )
    return Answer(dict(stored.body), replayed=True)


async def approve(portal: Portal, user: User, ticket_id: str, key: str | None) -> Answer:
    """The landlord approves the quote: QUOTED -> APPROVED and
    ``ticket.approved``, once per (user, key)."""
    if user["role"] != LANDLORD:
        raise Forbidden("only the landlord approves a quote")
    try:
        async with portal.engine.begin() as conn:
            if key is not None and (stored := await _stored_answer(conn, user, key)):
                return _replay(stored, ticket_id)
            row = await _visible_ticket(conn, user, ticket_id)
            moved = await _move(portal, conn, user, row, "APPROVED")
            body = ticket_json(moved)
            if key is not None:
                await conn.execute(
                    tables.idempotency.insert().values(
                        user_id=user["id"], key=key, ticket_id=ticket_id, status_code=200, body=body
                    )
                )
    except (Conflict, IntegrityError):
        # A concurrent request with the same key won: answer what it stored.
        if key is not None:
            async with portal.engine.connect() as conn:
                stored = await _stored_answer(conn, user, key)
            if stored is not None:
                return _replay(stored, ticket_id)
        raise
    portal.events.committed()
    return Answer(body)
