"""The notifications API's answers."""

from __future__ import annotations

from pydantic import BaseModel, Field


class Notification(BaseModel):
    id: str
    tenantId: str
    userId: str
    type: str
    title: str
    body: str
    link: str | None
    sourceEventId: str | None
    createdAt: float
    readAt: float | None
    read: bool


class NotificationPage(BaseModel):
    items: list[Notification]
    nextCursor: str | None = Field(description="pass as ?cursor= for the next page")
