"""Publishing, stream tickets and history over HTTP.

History never fails on a stored row: rows are read in a form that can be
encoded (:func:`tidings.core.envelope.event_from_row`: too-deep members
truncated, unreadable rows shown to nobody), and an item that still cannot
be redacted or encoded is left out of its page with a logged error.
"""

from __future__ import annotations

import logging
import time
from dataclasses import replace
from typing import Any

import orjson
from fastapi import APIRouter, Request
from starlette.responses import Response

from tidings.core.audience import Viewer, can_see
from tidings.core.envelope import Event
from tidings.core.patterns import TypeFilter
from tidings.core.redaction import redact, variant_for
from tidings.errors import InvalidInput, PayloadTooLarge
from tidings.http.models import answers, needs
from tidings.http.models.events import EventPage, Ticket
from tidings.http.params import ascii_int, declared_length, instant
from tidings.hub.resume import tenant_scope
from tidings.node import Tidings
from tidings.services.access import authorize, authorized_user
from tidings.services.auth import Principal, hash_secret, new_ticket
from tidings.services.ingest import parse_json
from tidings.store.base import LogQuery

router = APIRouter(tags=["events"])
log = logging.getLogger("tidings.http")


def node(request: Request) -> Tidings:
    return request.app.state.tidings  # type: ignore[no-any-return]


def json_response(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(
        orjson.dumps(body), status_code=status, media_type="application/json", headers=headers
    )


async def principal_of(request: Request) -> Principal:
    return await node(request).auth.authenticate(request.headers.get("authorization"))


async def read_json(request: Request, limit: int) -> tuple[Any, int]:
    """A JSON request body of at most ``limit`` bytes, and its size."""
    body = await read_raw(request, limit)
    return parse_json(body), len(body)


async def read_raw(request: Request, limit: int) -> bytes:
    """The request body, refused past ``limit`` bytes."""
    declared_length(request.headers.get("content-length"), limit)
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise PayloadTooLarge(f"the body is over the limit of {limit} bytes", field="")
    return bytes(body)


@router.post(
    "/api/events/tickets",
    summary="Get a single-use stream ticket (browsers)",
    status_code=201,
    responses=answers(Ticket, 201),
    openapi_extra=needs("events.ticket"),
)
async def create_ticket(request: Request) -> Response:
    tidings = node(request)
    principal = await principal_of(request)
    user = authorized_user(principal, "events.ticket")
    ticket = new_ticket()
    ttl = tidings.settings.ticket_ttl_s
    await tidings.store.create_ticket(
        hash_secret(ticket),
        user.tenant_id,
        user.user_id,
        time.time() + ttl,
        session_expires_at=principal.expires_at,
    )
    return json_response({"ticket": ticket, "expiresIn": int(ttl)}, 201)


def viewer_of(principal: Principal, tenant_id: str | None) -> Viewer:
    """Who reads: a user as stored, or an operator of the credential's
    tenant (or of ``tenant_id``, which must be in its scope)."""
    authorize(principal, "events.read", tenant_id, scoped=False)
    if principal.viewer is not None:
        return principal.viewer
    if tenant_id is not None:
        authorize(principal, "events.read", tenant_id, field="tenantId")
    return Viewer.operator(principal.tenant_id or tenant_id)


def parse_time(value: str | None, name: str) -> float | None:
    return None if value is None else instant(value, name)


@router.get(
    "/api/events/log",
    summary="Event history (filters, cursor paging)",
    responses=answers(EventPage),
    openapi_extra=needs("events.read"),
)
async def history(request: Request) -> Response:
    tidings = node(request)
    principal = await principal_of(request)
    params = request.query_params
    viewer = viewer_of(principal, params.get("tenantId"))
    types = TypeFilter.parse(params.get("types"))
    limit = ascii_int(params.get("limit", "100"), "limit", 1, 500)
    cursor = ascii_int(params.get("cursor") or None, "cursor")
    newest_first = params.get("order", "desc") != "asc"
    if params.get("order") not in (None, "asc", "desc"):
        raise InvalidInput("order must be asc or desc", field="order")
    exact = [p for p in types.patterns if "*" not in p and "?" not in p]
    prefixes = [
        p[:-1] for p in types.patterns if p.endswith("*") and "*" not in p[:-1] and "?" not in p
    ]
    query = LogQuery(
        tenant_ids=tenant_scope(viewer),
        types=exact if len(exact) + len(prefixes) == len(types.patterns) else (),
        type_prefixes=prefixes if len(exact) + len(prefixes) == len(types.patterns) else (),
        entity_type=params.get("entityType"),
        entity_id=params.get("entityId"),
        since=parse_time(params.get("since"), "since"),
        until=parse_time(params.get("until"), "until"),
        after=cursor if not newest_first else None,
        before=cursor if newest_first else None,
        limit=limit,
        newest_first=newest_first,
    )
    items: list[dict[str, Any]] = []
    next_cursor: int | None = None
    scanned = 0
    while True:
        rows = await tidings.store.query_events(query)
        scanned += len(rows)
        for event in rows:
            next_cursor = event.position
            if can_see(viewer, event.tenant_id, event.audiences) and types.matches(event.type):
                try:
                    items.append(_visible_wire(tidings, event, viewer))
                except Exception:
                    log.exception("history: event at position %d left out", event.position)
                    continue
                if len(items) == limit:
                    return _page(items, next_cursor)
        if len(rows) < query.limit:
            return _page(items, None)  # the log is exhausted
        if scanned >= limit * 20:
            return _page(items, next_cursor)  # bounded work per request
        query = _advance(query, next_cursor)


def _visible_wire(tidings: Tidings, event: Event, viewer: Viewer) -> dict[str, Any]:
    sensitive = tidings.sensitive_for(event.tenant_id, event.type)
    return redact(event.to_wire(), sensitive, variant_for(viewer, sensitive))


def _page(items: list[dict[str, Any]], cursor: int | None) -> Response:
    next_cursor = None if cursor is None else str(cursor)
    try:
        return json_response({"items": items, "nextCursor": next_cursor})
    except TypeError:  # one item cannot be encoded: leave out only that one
        return json_response({"items": _encodable(items), "nextCursor": next_cursor})


def _encodable(items: list[dict[str, Any]]) -> list[orjson.Fragment]:
    kept = []
    for item in items:
        try:
            kept.append(orjson.Fragment(orjson.dumps(item)))
        except TypeError:
            log.error("history: event at position %s cannot be encoded", item.get("position"))
    return kept


def _advance(query: LogQuery, position: int | None) -> LogQuery:
    if query.newest_first:
        return replace(query, before=position)
    return replace(query, after=position)
