"""Small shapes several areas answer."""

from __future__ import annotations

from pydantic import BaseModel, Field


class EventRef(BaseModel):
    """An event an operation appended to the log."""

    id: str
    position: int = Field(ge=1)


class Count(BaseModel):
    count: int = Field(ge=0)
