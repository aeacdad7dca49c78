"""The admin API's answers: tenants, users, roles, API keys, lifecycles,
integrations, state machines and entity moves."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field, RootModel

from tidings.http.models.common import EventRef

Instant = str  # ISO-8601 UTC
Epoch = float  # seconds since 1970


class Tenant(BaseModel):
    id: str
    name: str
    state: str = Field(description="its lifecycle state")
    settings: dict[str, Any]
    createdAt: Epoch
    updatedAt: Epoch


class TenantList(BaseModel):
    items: list[Tenant]


class PermissionOverrides(BaseModel):
    grant: list[str]
    revoke: list[str]


class User(BaseModel):
    tenantId: str
    userId: str
    systemRole: str
    permissionOverrides: PermissionOverrides
    resources: list[str]
    platform: bool
    platformTenants: list[str] = Field(description='tenants a platform user sees; ["*"]: all')


class UserList(BaseModel):
    items: list[User]


class Role(BaseModel):
    role: str
    tenantId: str | None = Field(description="null: the global default")
    permissions: list[str]


class ApiKey(BaseModel):
    """A key as listed: never its secret nor the secret's hash."""

    id: str
    name: str
    scopes: list[str]
    tenantId: str | None
    createdAt: Instant | None
    lastUsedAt: Instant | None
    expiresAt: Instant | None
    revokedAt: Instant | None
    publishRate: float | None = Field(description="events per second; 0: not limited")


class NewApiKey(ApiKey):
    key: str = Field(description="the secret (tdk_...), shown this once")


class ApiKeyList(BaseModel):
    items: list[ApiKey]


class Move(BaseModel):
    """A lifecycle move: from and to which state, and the event it appended."""

    from_: str | None = Field(alias="from")
    to: str
    event: EventRef | None = Field(description="null when the move emits no event")


class TenantMove(Move):
    tenantId: str


class EntityMove(Move):
    entityType: str
    entityId: str


class LifecycleEntry(BaseModel):
    from_: str | None = Field(alias="from")
    to: str
    reason: str | None
    triggeredBy: str | None
    triggerSource: str | None
    eventId: str | None
    at: Epoch


class Lifecycle(BaseModel):
    items: list[LifecycleEntry]


class TimelineEntry(BaseModel):
    """Seed 004's timeline row (it also carries ``<entityType>Id``)."""

    id: str
    entityId: str
    eventType: str = Field(description="created or status_changed")
    actorId: str | None
    details: str = Field(description='JSON text: {"from", "to", "reason"}')
    triggerSource: str | None
    eventId: str | None
    createdAt: Epoch


class Machine(BaseModel):
    entityType: str
    states: list[str]


class Integration(BaseModel):
    name: str
    scheme: str
    mappings: dict[str, dict[str, Any]]


class InboundEntry(BaseModel):
    webhookId: str | None
    accepted: bool
    outcome: str | None
    type: str | None
    tenantId: str | None
    at: Epoch


class InboundLog(BaseModel):
    items: list[InboundEntry]


class InboundAnswer(BaseModel):
    status: str = Field(description="accepted or duplicate")
    webhookId: str | None
    outcome: str | None = None


class Timeline(RootModel[list[TimelineEntry]]):
    """An entity's timeline, oldest first."""
