"""The notifications API (seed 004, DESIGN §4)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, ConfigDict, Field
from starlette.responses import Response

from tidings.http.admin import ID, USER_ID
from tidings.http.events import json_response, node, principal_of
from tidings.http.models import answers, needs
from tidings.http.models.common import Count
from tidings.http.models.notifications import Notification, NotificationPage
from tidings.http.params import ascii_int
from tidings.services.notifications import notification_json

router = APIRouter(prefix="/api/notifications", tags=["notifications"])


class NotificationIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    tenantId: str | None = Field(default=None, pattern=ID)
    userId: str = Field(pattern=USER_ID)
    type: str = Field(min_length=1, max_length=128)
    title: str = Field(min_length=1, max_length=500)
    body: str = Field(default="", max_length=10_000)
    link: str | None = Field(default=None, max_length=2000)
    sourceEventId: str | None = Field(default=None, max_length=128)


class ReadIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    ids: list[str] = Field(min_length=1, max_length=1000)


@router.post(
    "",
    status_code=201,
    summary="Create a notification (service or admin key)",
    responses=answers(Notification, 201),
    openapi_extra=needs("notifications.create"),
)
async def create(request: Request, body: NotificationIn) -> Response:
    record = await node(request).notifications.send(
        await principal_of(request),
        body.tenantId,
        body.userId,
        type=body.type,
        title=body.title,
        body=body.body,
        link=body.link,
        source_event_id=body.sourceEventId,
    )
    return json_response(notification_json(record), 201)


@router.get(
    "",
    summary="The caller's notifications, newest first",
    responses=answers(NotificationPage),
    openapi_extra=needs("notifications.read"),
)
async def list_(
    request: Request,
    unread: bool = False,
    limit: str = Query(default="50", description="1 to 200"),
    cursor: str | None = Query(default=None, max_length=40),
) -> Response:
    page_size = ascii_int(limit, "limit", 1, 200)
    page = await node(request).notifications.page(
        await principal_of(request), unread_only=unread, before=cursor, limit=page_size
    )
    items: list[dict[str, Any]] = [notification_json(r) for r in page.items]
    return json_response({"items": items, "nextCursor": page.next_cursor})


@router.get(
    "/unread-count",
    summary="How many of the caller's notifications are unread",
    responses=answers(Count),
    openapi_extra=needs("notifications.read"),
)
async def unread_count(request: Request) -> Response:
    count = await node(request).notifications.unread(await principal_of(request))
    return json_response({"count": count})


@router.post(
    "/read",
    summary="Mark some of the caller's notifications read",
    responses=answers(Count),
    openapi_extra=needs("notifications.read"),
)
async def read(request: Request, body: ReadIn) -> Response:
    count = await node(request).notifications.read(await principal_of(request), body.ids)
    return json_response({"count": count})


@router.post(
    "/read-all",
    summary="Mark all of the caller's notifications read",
    responses=answers(Count),
    openapi_extra=needs("notifications.read"),
)
async def read_all(request: Request) -> Response:
    count = await node(request).notifications.read(await principal_of(request), None)
    return json_response({"count": count})
