"""Events as clients read them: the wire envelope, history pages, stream
tickets, and the messages of the live streams (SSE and WebSocket)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class Envelope(BaseModel):
    """A stored event as it travels (history, SSE ``data:``, WebSocket
    text). Fields the reader may not see (the type's ``sensitive`` paths)
    are left out."""

    model_config = ConfigDict(title="Event")

    id: str
    type: str
    tenantId: str
    entityType: str | None = None
    entityId: str | None = None
    action: str | None = None
    timestamp: str | None = Field(default=None, description="ISO-8601, from the producer")
    actor: dict[str, Any] | None = None
    metadata: dict[str, Any] | None = None
    data: dict[str, Any] | None = None
    audiences: list[str] | None = None
    schema_: str | None = Field(default=None, alias="schema", description="payload schema id")
    position: int = Field(ge=1, description="its place in the log (the stream's resume point)")


class EventPage(BaseModel):
    items: list[Envelope]
    nextCursor: str | None = Field(description="cursor of the next page; null at the end")


def ndjson_answer() -> dict[int | str, dict[str, Any]]:
    """``responses=`` of a route answering NDJSON: one :class:`Envelope` a line
    (declare ``response_class=Response`` so FastAPI adds no JSON answer)."""
    return {
        200: {
            "description": "one envelope per line (application/x-ndjson), oldest first",
            "content": {
                "application/x-ndjson": {
                    "schema": {"$ref": "#/components/schemas/Envelope"},
                }
            },
        }
    }


class Ticket(BaseModel):
    ticket: str = Field(description="pass as ?ticket= to the stream, once")
    expiresIn: int = Field(ge=0, description="seconds")


class StreamControl(BaseModel):
    """A message of a live stream that is not an event. ``connected`` comes
    first; ``reset`` (too slow: resume from ``lastEventId``), ``reconnect``
    (shutdown, token expired: reconnect) and ``closed`` (user deleted,
    tenant suspended, key revoked: do not reconnect) come last."""

    type: Literal["connected", "reset", "reconnect", "closed"]
    data: dict[str, Any] | None = None
    tenantId: str | None = None
    userId: str | None = None
    position: int | None = Field(default=None, description="the log position when connected")
    reason: str | None = None
    lastEventId: str | None = Field(default=None, description="resume after this position")
