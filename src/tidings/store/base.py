"""The storage seam: one interface, a SQLite and a PostgreSQL implementation.

Guarantees every implementation gives (pinned by ``tests/store/test_store.py``,
which runs against each backend):

* ``append_events`` is atomic: all events of one call commit together or
  none does. It returns only after the commit is durable.
* Positions are assigned in commit order: once ``read_events(after=P)`` has
  returned an event at position Q, no event with a position <= Q commits
  later. Positions of one call are consecutive and follow the call's order.
* Idempotency: an event whose ``(tenant_id, id)`` or ``(tenant_id,
  idempotency_key)`` is already stored is not stored again; its result is
  the original position with ``duplicate=True``.
* Database failures raise :class:`tidings.errors.Unavailable`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple, Protocol

import msgspec

from tidings.core.audience import UserRecord
from tidings.core.envelope import Event


@dataclass(frozen=True, slots=True)
class TenantRecord:
    id: str
    name: str
    state: str
    settings: Mapping[str, Any]
    created_at: float
    updated_at: float


@dataclass(frozen=True, slots=True)
class ApiKeyRecord:
    id: str
    key_hash: str
    name: str
    scopes: frozenset[str]
    tenant_id: str | None
    created_at: float
    revoked_at: float | None = None
    expires_at: float | None = None  # epoch seconds; past it the key is 401
    last_used_at: float | None = None  # recorded at most once a minute per key
    publish_rate: float | None = None  # events/s; None: the setting; 0: not limited


class NewEvent(msgspec.Struct, gc=False):
    """An event ready to append: everything resolved but its position (a
    struct: one is built per published event)."""

    event: Event  # position is ignored
    idempotency_key: str | None = None
    created_at: float = 0.0
    generated_id: bool = True  # False: the producer named it; check for a duplicate
    body: str = ""  # the stored JSON body, if already serialized (else built on append)


class AppendResult(NamedTuple):  # one per appended event: a tuple is cheapest
    id: str
    position: int
    duplicate: bool = False


@dataclass(frozen=True, slots=True)
class AppendOutcome:
    results: list[AppendResult]
    stored: list[Event]  # the newly committed events, in position order
    jobs: int = 0  # automation jobs enqueued with them


@dataclass(frozen=True, slots=True)
class CatalogTypeRecord:
    """A tenant-defined event type: its catalog entry (pack form, all
    versions) as stored."""

    tenant_id: str
    name: str
    spec: Mapping[str, Any]
    active: bool
    created_at: float
    updated_at: float


@dataclass(frozen=True, slots=True)
class LogQuery:
    """History filters. ``tenant_ids`` None means every tenant."""

    tenant_ids: Sequence[str] | None
    types: Sequence[str] = ()  # exact types; patterns are applied by the caller
    type_prefixes: Sequence[str] = ()
    entity_type: str | None = None
    entity_id: str | None = None
    since: float | None = None
    until: float | None = None
    after: int | None = None  # cursor: positions after this one
    before: int | None = None  # cursor: positions before this one (newest first)
    limit: int = 100
    newest_first: bool = False
    extra: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class LifecycleChange:
    to_state: str
    reason: str | None
    triggered_by: str | None
    trigger_source: str


@dataclass(frozen=True, slots=True)
class NotificationRecord:
    id: str
    tenant_id: str
    user_id: str
    type: str
    title: str
    body: str
    link: str | None
    source_event_id: str | None
    created_at: float
    read_at: float | None = None


@dataclass(frozen=True, slots=True)
class RuleRecord:
    id: str
    tenant_id: str | None  # None: a global rule
    name: str
    spec: Mapping[str, Any]  # trigger, action, retry as the API takes them
    priority: int
    enabled: bool
    author: str | None
    created_at: float
    updated_at: float
    disabled_reason: str | None = None
    deleted_at: float | None = None


@dataclass(frozen=True, slots=True)
class AttemptRecord:
    attempt: int
    started_at: float
    duration_ms: float
    outcome: str  # succeeded | failed | dead | abandoned
    status_code: int | None
    detail: str
    worker: str | None = None


@dataclass(frozen=True, slots=True)
class JobRecord:
    id: int
    tenant_id: str
    rule_id: str
    event_position: int
    event_id: str
    event_type: str
    status: str  # pending | running | failed (retry scheduled) | succeeded | dead | discarded
    attempts: int  # attempts in the current round (a manual retry starts a new one)
    run_at: float
    lease_until: float | None
    worker: str | None
    last_error: str | None
    discard_reason: str | None
    created_at: float
    updated_at: float
    history: tuple[AttemptRecord, ...] = ()


@dataclass(frozen=True, slots=True)
class JobResult:
    """How one claimed attempt ended, for :meth:`JobStore.finish`."""

    job_id: int
    worker: str
    attempt: AttemptRecord
    status: str  # succeeded | failed | dead
    run_at: float | None = None  # when failed: the next attempt
    error: str | None = None


@dataclass(frozen=True, slots=True)
class JobFilter:
    tenant_ids: Sequence[str] | None = None  # None: every tenant
    statuses: Sequence[str] = ()
    rule_id: str | None = None
    event_id: str | None = None
    event_type: str | None = None
    since: float | None = None
    until: float | None = None
    before_id: int | None = None  # cursor: newest first
    limit: int = 100


class Store(Protocol):
    async def open(self) -> None: ...
    async def close(self) -> None: ...
    async def ping(self) -> None: ...

    # tenants
    async def put_tenant(
        self, tenant_id: str, name: str, settings: Mapping[str, Any]
    ) -> TenantRecord: ...
    async def get_tenant(self, tenant_id: str) -> TenantRecord | None: ...
    async def list_tenants(self) -> list[TenantRecord]: ...

    # users and roles
    async def put_user(self, user: UserRecord) -> None: ...
    async def get_user(self, tenant_id: str, user_id: str) -> UserRecord | None: ...
    async def user_was_deleted(self, tenant_id: str, user_id: str) -> bool: ...
    async def delete_user(self, tenant_id: str, user_id: str) -> bool: ...
    async def list_users(self, tenant_id: str) -> list[UserRecord]: ...
    async def put_role(
        self, role: str, permissions: Sequence[str], tenant_id: str | None
    ) -> None: ...
    async def role_defaults(self, tenant_id: str) -> dict[str, frozenset[str]]: ...

    # credentials
    async def create_api_key(self, record: ApiKeyRecord) -> None: ...
    async def get_api_key(self, key_hash: str) -> ApiKeyRecord | None: ...
    async def get_api_key_by_id(self, key_id: str) -> ApiKeyRecord | None: ...
    async def list_api_keys(self, tenant_id: str | None) -> list[ApiKeyRecord]: ...
    async def revoke_api_key(self, key_id: str, at: float) -> bool: ...
    async def mark_api_keys_used(self, used: Mapping[str, float]) -> None: ...
    async def create_ticket(
        self,
        ticket_hash: str,
        tenant_id: str,
        user_id: str,
        expires_at: float,
        session_expires_at: float | None = None,
    ) -> None: ...
    async def consume_ticket(
        self, ticket_hash: str, now: float
    ) -> tuple[str, str, float | None] | None: ...

    # the log
    async def append_events(self, events: Sequence[NewEvent]) -> AppendOutcome: ...
    async def read_events(self, after: int, limit: int) -> list[Event]: ...
    async def query_events(self, query: LogQuery) -> list[Event]: ...
    async def events_by_id(self, tenant_id: str, ids: Sequence[str]) -> list[Event]: ...
    async def head_position(self) -> int: ...
    async def prune_events(self, tenant_id: str, before: float, batch: int = 1000) -> int: ...
    async def log_horizon(self, tenant_ids: Sequence[str] | None) -> int: ...

    # tenant-defined catalog types
    async def put_catalog_type(self, record: CatalogTypeRecord) -> None: ...
    async def get_catalog_type(self, tenant_id: str, name: str) -> CatalogTypeRecord | None: ...
    async def list_catalog_types(self, tenant_id: str | None = None) -> list[CatalogTypeRecord]: ...

    # notifications (each call is scoped to one user of one tenant)
    async def create_notification(self, record: NotificationRecord) -> None: ...
    async def list_notifications(
        self, tenant_id: str, user_id: str, *, unread_only: bool, before: str | None, limit: int
    ) -> list[NotificationRecord]: ...
    async def unread_count(self, tenant_id: str, user_id: str) -> int: ...
    async def mark_read(self, tenant_id: str, user_id: str, ids: Sequence[str] | None) -> int: ...
    async def owned_notifications(
        self, tenant_id: str, user_id: str, ids: Sequence[str]
    ) -> set[str]: ...

    # lifecycles
    async def transition_tenant(
        self, tenant_id: str, from_state: str, change: LifecycleChange, event: NewEvent | None
    ) -> AppendOutcome: ...
    async def lifecycle(
        self, entity_type: str, tenant_id: str, entity_id: str
    ) -> list[dict[str, Any]]: ...

    # inbound integrations
    async def put_integration(
        self, name: str, secret: str, scheme: str, mappings: Mapping[str, Any]
    ) -> None: ...
    async def get_integration(self, name: str) -> dict[str, Any] | None: ...
    async def record_inbound(
        self,
        integration: str,
        webhook_id: str | None,
        *,
        accepted: bool,
        outcome: str,
        external_type: str | None = None,
        tenant_id: str | None = None,
    ) -> None: ...
    async def inbound_seen(self, integration: str, webhook_id: str) -> bool: ...
    async def inbound_history(self, integration: str, limit: int = 100) -> list[dict[str, Any]]: ...

    # state machines of host entities
    async def transition_entity(
        self,
        entity: tuple[str, str, str],
        from_state: str,
        change: LifecycleChange,
        event: NewEvent | None,
        *,
        exists: bool,
    ) -> AppendOutcome: ...
    async def entity_state(
        self, entity_type: str, tenant_id: str, entity_id: str
    ) -> str | None: ...
    async def put_state_machine(self, entity_type: str, spec: Mapping[str, Any]) -> None: ...
    async def get_state_machine(self, entity_type: str) -> dict[str, Any] | None: ...
