"""The storage seam, split by role: one small protocol per thing the rest
of Tidings stores, and :class:`Store`, all of them together (what the node
holds). A service or a test that needs one role takes that role only.

Guarantees every implementation gives (pinned by ``tests/store/``, which
runs against each backend):

* ``append_events`` is atomic: all events of one call commit together or
  none does. It returns only after the commit is durable.
* Positions are assigned in commit order: once ``read_events(after=P)`` has
  returned an event at position Q, no event with a position <= Q commits
  later. Positions of one call are consecutive and follow the call's order.
  Positions are never reused, not even after retention emptied the log.
* Idempotency: an event whose ``(tenant_id, id)`` or ``(tenant_id,
  idempotency_key)`` is already stored is not stored again; its result is
  the original position with ``duplicate=True``.
* Jobs commit with their events: the append that stores an event matching
  the rules in force (:meth:`JobQueue.use_rules`) stores its jobs in the
  same transaction, so there is never one without the other.
* A lifecycle transition is a compare-and-set: its state change, its
  history row and its event commit together, or it raises
  :class:`tidings.errors.Conflict` and nothing changes.
* Database failures raise :class:`tidings.errors.Unavailable`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from tidings.core.audience import UserRecord
from tidings.core.envelope import Event
from tidings.core.triggers import RuleSet
from tidings.store.records import (
    ApiKeyRecord,
    AppendOutcome,
    CatalogTypeRecord,
    Delivery,
    FailingRule,
    JobFilter,
    JobRecord,
    JobResult,
    JobRow,
    LifecycleChange,
    LogQuery,
    NewEvent,
    NotificationRecord,
    RuleRecord,
    TenantRecord,
)


class EventLog(Protocol):
    """The log: append, read in position order, query history, prune."""

    async def append_events(self, events: Sequence[NewEvent]) -> AppendOutcome: ...
    async def read_events(self, after: int, limit: int) -> list[Event]: ...
    async def query_events(self, query: LogQuery) -> list[Event]: ...
    async def count_events(self, query: LogQuery) -> int: ...
    async def events_by_id(self, tenant_id: str, ids: Sequence[str]) -> list[Event]: ...
    async def head_position(self) -> int: ...
    async def prune_events(self, tenant_id: str, before: float, batch: int = 1000) -> int: ...
    async def log_horizon(self, tenant_ids: Sequence[str] | None) -> int: ...
    async def index_entities(self) -> None:
        """Bring derived indexes up to the head now (they catch up by
        themselves; answers are complete either way)."""


class Directory(Protocol):
    """Who is who: tenants, users, roles, API keys and stream tickets."""

    async def put_tenant(
        self, tenant_id: str, name: str, settings: Mapping[str, Any]
    ) -> TenantRecord: ...
    async def get_tenant(self, tenant_id: str) -> TenantRecord | None: ...
    async def list_tenants(self) -> list[TenantRecord]: ...

    async def put_user(self, user: UserRecord) -> None: ...
    async def get_user(self, tenant_id: str, user_id: str) -> UserRecord | None: ...
    async def user_was_deleted(self, tenant_id: str, user_id: str) -> bool: ...
    async def delete_user(self, tenant_id: str, user_id: str) -> bool: ...
    async def list_users(self, tenant_id: str) -> list[UserRecord]: ...
    async def put_role(
        self, role: str, permissions: Sequence[str], tenant_id: str | None
    ) -> None: ...
    async def role_defaults(self, tenant_id: str) -> dict[str, frozenset[str]]: ...

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


class NotificationStore(Protocol):
    """In-app notifications; each call is scoped to one user of one tenant."""

    async def create_notification(self, record: NotificationRecord) -> None: ...
    async def list_notifications(
        self, tenant_id: str, user_id: str, *, unread_only: bool, before: str | None, limit: int
    ) -> list[NotificationRecord]: ...
    async def unread_count(self, tenant_id: str, user_id: str) -> int: ...
    async def mark_read(self, tenant_id: str, user_id: str, ids: Sequence[str] | None) -> int: ...
    async def owned_notifications(
        self, tenant_id: str, user_id: str, ids: Sequence[str]
    ) -> set[str]: ...


class Integrations(Protocol):
    """Inbound integrations, what they received, and replay detection."""

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


class Lifecycles(Protocol):
    """States of tenants and machine-driven entities, and their history."""

    async def transition_tenant(
        self, tenant_id: str, from_state: str, change: LifecycleChange, event: NewEvent | None
    ) -> AppendOutcome: ...
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
    async def lifecycle(
        self, entity_type: str, tenant_id: str, entity_id: str
    ) -> list[dict[str, Any]]: ...


class CatalogTypes(Protocol):
    """Tenant-defined event types (their catalog entries)."""

    async def put_catalog_type(self, record: CatalogTypeRecord) -> None: ...
    async def get_catalog_type(self, tenant_id: str, name: str) -> CatalogTypeRecord | None: ...
    async def list_catalog_types(self, tenant_id: str | None = None) -> list[CatalogTypeRecord]: ...


class JobQueue(Protocol):
    """Automation: rules, the outbox turned into jobs, claims under a
    lease, attempts, and what operators do with jobs."""

    @property
    def rules(self) -> RuleSet | None:
        """The rules in force: appends enqueue the jobs they match."""

    def use_rules(self, rules: RuleSet | None) -> None: ...

    async def put_rule(self, record: RuleRecord) -> None: ...
    async def get_rule(self, rule_id: str) -> RuleRecord | None: ...
    async def list_rules(self, *, include_deleted: bool = False) -> list[RuleRecord]: ...
    async def record_deliveries(
        self, deliveries: Sequence[Delivery], *, failures: int, window_s: float
    ) -> list[FailingRule]: ...
    async def disable_rule(self, rule_id: str, reason: str, now: float) -> RuleRecord | None: ...
    async def rules_version(self) -> tuple[int, float]: ...

    async def materialize(
        self, now: float, delays: Mapping[str, float] | None = None, limit: int = 2000
    ) -> int: ...
    async def claim(
        self,
        worker: str,
        limit: int,
        lease_s: float,
        now: float,
        delays: Mapping[str, float] | None = None,
    ) -> list[tuple[JobRecord, str | None]]: ...
    async def expired(self, now: float, limit: int = 100) -> list[JobRecord]: ...
    async def finish(self, results: Sequence[JobResult]) -> int: ...

    async def list_jobs(self, query: JobFilter, *, history: bool = False) -> list[JobRecord]: ...
    async def count_jobs(self, query: JobFilter) -> dict[str, int]: ...
    async def get_job(self, job_id: int) -> JobRecord | None: ...
    async def retry_jobs(
        self, ids: Sequence[int], now: float, tenant_ids: Sequence[str] | None = None
    ) -> int: ...
    async def discard_jobs(
        self, ids: Sequence[int], reason: str, now: float, tenant_ids: Sequence[str] | None = None
    ) -> int: ...
    async def enqueue(self, rows: Sequence[JobRow], *, force: bool, now: float) -> int: ...
    async def existing_jobs(self, positions: Sequence[int]) -> dict[tuple[int, str], str]: ...
    async def queued_for(self, event_id: str, tenant_ids: Sequence[str] | None) -> int: ...
    async def backlog(
        self, now: float, tenant_ids: Sequence[str] | None
    ) -> tuple[int, float | None]: ...
    async def prune_jobs(self, before: float, batch: int = 1000) -> int: ...


class Store(
    EventLog, Directory, NotificationStore, Integrations, Lifecycles, CatalogTypes, Protocol
):
    """Every role of one database, and its connection's life (the node's)."""

    @property
    def jobs(self) -> JobQueue: ...

    async def open(self) -> None: ...
    async def close(self) -> None: ...
    async def ping(self) -> None: ...
    async def storage_bytes(self) -> int: ...
