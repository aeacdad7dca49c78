"""The probes' answers."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field


class Health(BaseModel):
    status: Literal["ok"]


class Ready(BaseModel):
    status: Literal["ready"]
    position: int = Field(description="the last log position offered to streams")
    connections: int = Field(ge=0, description="open streams")


class NotReady(BaseModel):
    status: Literal["unavailable"]
    detail: str
    tasks: list[str] = Field(description="supervised background tasks that are dead")
