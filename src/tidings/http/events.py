"""Stream tickets, history and its NDJSON export over HTTP
(:mod:`tidings.services.tickets`, :mod:`tidings.services.history`), and
the helpers every router shares.

History never fails on a stored row (see :mod:`tidings.services.history`);
an item that cannot be encoded is left out of its page with a logged error.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Mapping
from typing import Any

import orjson
from fastapi import APIRouter, Request
from starlette.responses import Response, StreamingResponse

from tidings.core.patterns import TypeFilter
from tidings.errors import InvalidInput, PayloadTooLarge
from tidings.http.models import answers, needs
from tidings.http.models.events import EventPage, Ticket, ndjson_answer
from tidings.http.params import ascii_int, declared_length, instant
from tidings.node import Tidings
from tidings.services.auth import Principal
from tidings.services.history import LogRequest
from tidings.services.ingest import parse_json

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
    tickets = node(request).tickets
    ticket = await tickets.issue(await principal_of(request))
    return json_response({"ticket": ticket, "expiresIn": int(tickets.ttl_s)}, 201)


def parse_time(value: str | None, name: str) -> float | None:
    return None if value is None else instant(value, name)


@router.get(
    "/api/events/log",
    summary="Event history (filters, cursor paging)",
    responses=answers(EventPage),
    openapi_extra=needs("events.read"),
)
async def history(request: Request) -> Response:
    history = node(request).history
    principal = await principal_of(request)
    params = request.query_params
    viewer = history.reader(principal, params.get("tenantId"))
    limit = ascii_int(params.get("limit", "100"), "limit", 1, 500)
    cursor = ascii_int(params.get("cursor") or None, "cursor")
    if params.get("order") not in (None, "asc", "desc"):
        raise InvalidInput("order must be asc or desc", field="order")
    newest_first = params.get("order", "desc") != "asc"
    wanted = log_request(params, cursor=cursor, limit=limit, newest_first=newest_first)
    page = await history.page(viewer, wanted)
    return _page(page.items, page.next_cursor)


@router.get(
    "/api/events/export",
    summary="Export the log as NDJSON (filters, resumable by position)",
    response_class=Response,
    responses=ndjson_answer(),
    openapi_extra=needs("events.read"),
)
async def export(request: Request) -> Response:
    """The log's events matching the filters of ``/api/events/log`` (same
    reader, same redaction), oldest first, one envelope per line, after
    ``after`` (a position; resume with the last line's ``position``)."""
    history = node(request).history
    params = request.query_params
    viewer = history.reader(await principal_of(request), params.get("tenantId"))
    after = ascii_int(params.get("after") or None, "after")
    wanted = log_request(params, cursor=after, limit=1, newest_first=False)
    return ndjson_response(history.export(viewer, wanted))


def log_request(
    params: Mapping[str, str], *, cursor: int | None, limit: int, newest_first: bool
) -> LogRequest:
    """The filters of a history or export request (``types``, ``entityType``,
    ``entityId``, ``entityIdContains``, ``since``, ``until``); 422 on bad ones."""
    return LogRequest(
        types=TypeFilter.parse(params.get("types")),
        entity_type=params.get("entityType"),
        entity_id=params.get("entityId"),
        entity_id_contains=params.get("entityIdContains") or None,
        since=parse_time(params.get("since"), "since"),
        until=parse_time(params.get("until"), "until"),
        cursor=cursor,
        limit=limit,
        newest_first=newest_first,
    )


NDJSON = "application/x-ndjson"


def ndjson_response(
    items: AsyncIterator[dict[str, Any]], headers: dict[str, str] | None = None
) -> StreamingResponse:
    """``items`` streamed as NDJSON, one line each, as they come (an item
    that cannot be encoded is left out with a logged error)."""
    return StreamingResponse(_lines(items), media_type=NDJSON, headers=headers)


async def _lines(items: AsyncIterator[dict[str, Any]]) -> AsyncIterator[bytes]:
    async for item in items:
        try:
            yield orjson.dumps(item, option=orjson.OPT_APPEND_NEWLINE)
        except TypeError:
            log.error("export: event at position %s cannot be encoded", item.get("position"))


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
