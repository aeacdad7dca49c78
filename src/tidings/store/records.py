"""The records the storage seam speaks in: plain values, frozen where they
can be (the protocols that take and return them: ``ports.py``)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import msgspec

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
    request_id: str | None = None  # the publish request's X-Request-ID, carried into its jobs


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
    request_id: str | None = None  # the request that published the event (X-Request-ID)
    history: tuple[AttemptRecord, ...] = ()


@dataclass(frozen=True, slots=True)
class JobResult:
    """How one claimed attempt ended, for :meth:`~tidings.store.ports.JobQueue.finish`."""

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


class JobRow(NamedTuple):
    """A job as written, in the ``jobs`` table's column order: the one form
    of a new job (made from the outbox, or by a replay)."""

    tenant_id: str
    rule_id: str
    event_position: int
    event_id: str
    event_type: str
    status: str
    attempts: int
    run_at: float
    created_at: float
    updated_at: float
    request_id: str | None = None  # the request that published the event (X-Request-ID)


@dataclass(frozen=True, slots=True)
class Delivery:
    """One attempt that reached (or tried to reach) a rule's endpoint."""

    rule_id: str
    ok: bool
    at: float  # when the attempt started
    detail: str = ""


@dataclass(frozen=True, slots=True)
class FailingRule:
    """A rule whose run of failed deliveries passed both limits."""

    rule_id: str
    failures: int
    since: float
    last_detail: str


@dataclass(frozen=True, slots=True)
class PoolUsage:
    """One connection pool of the store at one instant."""

    name: str  # "reader", "writer" (SQLite's one writer) or "main" (one shared pool)
    in_use: int  # connections checked out
    open: int  # connections the pool holds, in use or idle
    capacity: int  # the most it opens (size + overflow)
