"""The SQL store, written once in SQLAlchemy Core for every backend.

What differs between databases is a :class:`Backend` (``sqlite.py``,
``postgres.py``): its engines, its append transaction (how commit order is
made position order), its retention lock, its entity index and its
insert-if-absent. Everything here calls those hooks and never asks which
database it runs on.

The roles of :mod:`tidings.store.ports` are one mixin each
(:class:`SQLDirectory`, :class:`SQLEventLog`, ...); ``store.py`` composes
them into :class:`~tidings.store.sql.SQLStore`. A mixin reaches the
database only through ``self.backend``.
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, ClassVar

import orjson
from sqlalchemy import Table, delete, func, insert, or_, select, update
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from sqlalchemy.sql.dml import Insert, UpdateBase
from sqlalchemy.sql.elements import ColumnElement

from tidings.core.audience import ALL_TENANTS, UserRecord
from tidings.core.envelope import Event, event_from_row
from tidings.core.triggers import RuleSet
from tidings.errors import Conflict, Unavailable
from tidings.store.append import IN_CHUNK
from tidings.store.ports import JobQueue
from tidings.store.records import (
    ApiKeyRecord,
    AppendOutcome,
    CatalogTypeRecord,
    LifecycleChange,
    LogQuery,
    NewEvent,
    NotificationRecord,
    TenantRecord,
)
from tidings.store.schema import (
    GLOBAL_SCOPE,
    api_keys,
    catalog_types,
    entity_states,
    events,
    inbound_log,
    integrations,
    jobs,
    lifecycle_log,
    log_horizons,
    notifications,
    outbox,
    roles,
    state_machines,
    stream_tickets,
    tenants,
    users,
)

FINISHED_JOB_STATES = ("succeeded", "discarded")


@dataclass(frozen=True, slots=True)
class Step:
    """A statement an append runs in its transaction before the events.
    With ``unless_one``, any rowcount but 1 aborts the whole transaction
    with that error (a compare-and-set that lost)."""

    statement: UpdateBase
    unless_one: Exception | None = None


class Backend(ABC):
    """One database: engines, transactions, and the hooks that differ.

    ``read()`` and ``write()`` give a connection (``write`` inside a
    transaction that serializes writers) and turn driver failures into
    :class:`~tidings.errors.Unavailable`.
    """

    is_sqlite: ClassVar[bool]  # for the node's choice of signals; store code never asks

    def __init__(self, url: str, reader: AsyncEngine, writer: AsyncEngine) -> None:
        self.url = url
        self.reader = reader
        self.writer = writer  # the reader itself where writes need no engine of their own

    @asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncConnection]:
        try:
            async with self.reader.connect() as conn:
                yield conn
        except (OperationalError, DBAPIError, OSError) as exc:
            raise Unavailable(f"database unavailable: {type(exc).__name__}") from exc

    @asynccontextmanager
    async def write(self) -> AsyncIterator[AsyncConnection]:
        try:
            async with self.writer.begin() as conn:
                yield conn
        except (OperationalError, DBAPIError, OSError) as exc:
            raise Unavailable(f"database unavailable: {type(exc).__name__}") from exc

    async def open(self) -> None:
        """After the first successful ping: catch up on derived state."""
        return None

    async def close(self) -> None:
        await self.reader.dispose()
        if self.writer is not self.reader:
            await self.writer.dispose()

    @abstractmethod
    async def append(
        self, new_events: Sequence[NewEvent], rules: RuleSet | None, before: Sequence[Step] = ()
    ) -> AppendOutcome:
        """Run ``before``, then append ``new_events`` (with the outbox rows
        of ``rules``), in one transaction that commits in position order."""

    @abstractmethod
    def insert_new(self, table: Table) -> Insert:
        """An INSERT that skips rows whose key is already there."""

    @abstractmethod
    async def retention_lock(self, conn: AsyncConnection) -> bool:
        """Take the prune lock in ``conn``'s transaction (False: another
        process is pruning)."""

    async def pruned(self, conn: AsyncConnection, tenant_id: str, rows: Sequence[Any]) -> None:
        """Events were deleted in ``conn``'s transaction (``rows``: their
        position, entity_type, entity_id): drop what derived from them."""
        return None

    def entity_positions(
        self, tenant_ids: list[str] | None, entity_type: str | None, entity_id: str | None
    ) -> ColumnElement[bool] | None:
        """A condition that narrows a history query to an entity's events
        by a derived index (None: the events table's own index does)."""
        return None

    async def index_entities(self) -> None:
        """Bring derived indexes up to the log's head now."""
        return None


def dumps(value: Any) -> str:
    return orjson.dumps(value).decode()


async def upsert(
    conn: AsyncConnection,
    table: Table,
    key: Mapping[str, Any],
    values: Mapping[str, Any],
    **on_insert: Any,
) -> None:
    """Update the row with this key, or insert it (with ``on_insert`` extras).
    Runs inside the caller's write transaction, which serializes writers."""
    where = [table.c[name] == value for name, value in key.items()]
    result = await conn.execute(update(table).where(*where).values(**values))
    if result.rowcount == 0:
        await conn.execute(insert(table).values(**key, **values, **on_insert))


class SQLRole:
    """What every role mixin reaches: the backend, and the job queue (whose
    rules in force appends read)."""

    backend: Backend
    jobs: JobQueue


# -- the directory ----------------------------------------------------------


class SQLDirectory(SQLRole):
    async def put_tenant(
        self, tenant_id: str, name: str, settings: Mapping[str, Any]
    ) -> TenantRecord:
        now = time.time()
        async with self.backend.write() as conn:
            row = (await conn.execute(select(tenants).where(tenants.c.id == tenant_id))).first()
            if row is None:
                await conn.execute(
                    insert(tenants).values(
                        id=tenant_id,
                        name=name,
                        state="CREATED",
                        settings=dumps(dict(settings)),
                        created_at=now,
                        updated_at=now,
                    )
                )
                await conn.execute(
                    insert(lifecycle_log).values(
                        entity_type="tenant",
                        tenant_id=tenant_id,
                        entity_id=tenant_id,
                        from_state=None,
                        to_state="CREATED",
                        trigger_source="user",
                        created_at=now,
                    )
                )
            else:
                await conn.execute(
                    update(tenants)
                    .where(tenants.c.id == tenant_id)
                    .values(name=name, settings=dumps(dict(settings)), updated_at=now)
                )
        record = await self.get_tenant(tenant_id)
        if record is None:  # deleted concurrently
            raise Unavailable(f"tenant {tenant_id!r} vanished while being written")
        return record

    async def get_tenant(self, tenant_id: str) -> TenantRecord | None:
        async with self.backend.read() as conn:
            row = (await conn.execute(select(tenants).where(tenants.c.id == tenant_id))).first()
        return None if row is None else _tenant(row)

    async def list_tenants(self) -> list[TenantRecord]:
        async with self.backend.read() as conn:
            rows = (await conn.execute(select(tenants).order_by(tenants.c.id))).all()
        return [_tenant(r) for r in rows]

    async def put_user(self, user: UserRecord) -> None:
        values = {
            "system_role": user.system_role,
            "grants": dumps(sorted(user.grants)),
            "revokes": dumps(sorted(user.revokes)),
            "resources": dumps(sorted(user.resources)),
            "platform": user.platform,
            "platform_tenants": dumps(list(user.platform_tenants)),
            "deleted_at": None,
            "updated_at": time.time(),
        }
        async with self.backend.write() as conn:
            await upsert(
                conn, users, {"tenant_id": user.tenant_id, "user_id": user.user_id}, values
            )

    async def get_user(self, tenant_id: str, user_id: str) -> UserRecord | None:
        async with self.backend.read() as conn:
            row = (
                await conn.execute(
                    select(users).where(
                        users.c.tenant_id == tenant_id,
                        users.c.user_id == user_id,
                        users.c.deleted_at.is_(None),
                    )
                )
            ).first()
        return None if row is None else _user(row)

    async def user_was_deleted(self, tenant_id: str, user_id: str) -> bool:
        async with self.backend.read() as conn:
            row = (
                await conn.execute(
                    select(users.c.deleted_at).where(
                        users.c.tenant_id == tenant_id, users.c.user_id == user_id
                    )
                )
            ).first()
        return row is not None and row[0] is not None

    async def delete_user(self, tenant_id: str, user_id: str) -> bool:
        # A tombstone, so reconnecting streams of a deleted user get 204.
        async with self.backend.write() as conn:
            result = await conn.execute(
                update(users)
                .where(
                    users.c.tenant_id == tenant_id,
                    users.c.user_id == user_id,
                    users.c.deleted_at.is_(None),
                )
                .values(deleted_at=time.time())
            )
        return bool(result.rowcount)

    async def list_users(self, tenant_id: str) -> list[UserRecord]:
        async with self.backend.read() as conn:
            rows = (
                await conn.execute(
                    select(users)
                    .where(users.c.tenant_id == tenant_id, users.c.deleted_at.is_(None))
                    .order_by(users.c.user_id)
                )
            ).all()
        return [_user(r) for r in rows]

    async def put_role(self, role: str, permissions: Sequence[str], tenant_id: str | None) -> None:
        scope = tenant_id or GLOBAL_SCOPE
        values = {"permissions": dumps(sorted(set(permissions))), "updated_at": time.time()}
        async with self.backend.write() as conn:
            await upsert(conn, roles, {"tenant_id": scope, "role": role}, values)

    async def role_defaults(self, tenant_id: str) -> dict[str, frozenset[str]]:
        """Global role defaults, overridden role by role for the tenant."""
        async with self.backend.read() as conn:
            rows = (
                await conn.execute(
                    select(roles.c.tenant_id, roles.c.role, roles.c.permissions).where(
                        roles.c.tenant_id.in_([GLOBAL_SCOPE, tenant_id])
                    )
                )
            ).all()
        merged: dict[str, frozenset[str]] = {}
        for scope in (GLOBAL_SCOPE, tenant_id):
            for row_scope, role, perms in rows:
                if row_scope == scope:
                    merged[role] = frozenset(orjson.loads(perms))
        return merged

    async def create_api_key(self, record: ApiKeyRecord) -> None:
        async with self.backend.write() as conn:
            await conn.execute(
                insert(api_keys).values(
                    id=record.id,
                    key_hash=record.key_hash,
                    name=record.name,
                    scopes=dumps(sorted(record.scopes)),
                    tenant_id=record.tenant_id,
                    created_at=record.created_at,
                    revoked_at=record.revoked_at,
                    expires_at=record.expires_at,
                    last_used_at=record.last_used_at,
                    publish_rate=record.publish_rate,
                )
            )

    async def get_api_key(self, key_hash: str) -> ApiKeyRecord | None:
        return await self._one_key(api_keys.c.key_hash == key_hash)

    async def get_api_key_by_id(self, key_id: str) -> ApiKeyRecord | None:
        return await self._one_key(api_keys.c.id == key_id)

    async def _one_key(self, condition: ColumnElement[bool]) -> ApiKeyRecord | None:
        async with self.backend.read() as conn:
            row = (await conn.execute(select(api_keys).where(condition))).first()
        return None if row is None else _api_key(row)

    async def list_api_keys(self, tenant_id: str | None) -> list[ApiKeyRecord]:
        """Keys of ``tenant_id`` (None: every key), newest first."""
        stmt = select(api_keys).order_by(api_keys.c.created_at.desc(), api_keys.c.id)
        if tenant_id is not None:
            stmt = stmt.where(api_keys.c.tenant_id == tenant_id)
        async with self.backend.read() as conn:
            rows = (await conn.execute(stmt)).all()
        return [_api_key(r) for r in rows]

    async def revoke_api_key(self, key_id: str, at: float) -> bool:
        async with self.backend.write() as conn:
            result = await conn.execute(
                update(api_keys)
                .where(api_keys.c.id == key_id, api_keys.c.revoked_at.is_(None))
                .values(revoked_at=at)
            )
        return bool(result.rowcount)

    async def mark_api_keys_used(self, used: Mapping[str, float]) -> None:
        """Record when keys were last used (a batch, off the request path)."""
        if not used:
            return
        async with self.backend.write() as conn:
            for key_id, at in used.items():
                await conn.execute(
                    update(api_keys).where(api_keys.c.id == key_id).values(last_used_at=at)
                )

    async def create_ticket(
        self,
        ticket_hash: str,
        tenant_id: str,
        user_id: str,
        expires_at: float,
        session_expires_at: float | None = None,
    ) -> None:
        async with self.backend.write() as conn:
            await conn.execute(
                delete(stream_tickets).where(stream_tickets.c.expires_at < time.time() - 3600)
            )
            await conn.execute(
                insert(stream_tickets).values(
                    ticket_hash=ticket_hash,
                    tenant_id=tenant_id,
                    user_id=user_id,
                    expires_at=expires_at,
                    session_expires_at=session_expires_at,
                )
            )

    async def consume_ticket(
        self, ticket_hash: str, now: float
    ) -> tuple[str, str, float | None] | None:
        async with self.backend.write() as conn:
            result = await conn.execute(
                update(stream_tickets)
                .where(
                    stream_tickets.c.ticket_hash == ticket_hash,
                    stream_tickets.c.used_at.is_(None),
                    stream_tickets.c.expires_at > now,
                )
                .values(used_at=now)
            )
            if result.rowcount != 1:
                return None
            row = (
                await conn.execute(
                    select(
                        stream_tickets.c.tenant_id,
                        stream_tickets.c.user_id,
                        stream_tickets.c.session_expires_at,
                    ).where(stream_tickets.c.ticket_hash == ticket_hash)
                )
            ).one()
        return row[0], row[1], row[2]


# -- the log ----------------------------------------------------------------


class SQLEventLog(SQLRole):
    max_event_depth: int  # rows nesting deeper are read truncated

    async def append_events(self, new_events: Sequence[NewEvent]) -> AppendOutcome:
        return await self.backend.append(new_events, self.jobs.rules)

    async def read_events(self, after: int, limit: int) -> list[Event]:
        async with self.backend.read() as conn:
            rows = await conn.execute(
                select(events.c.position, events.c.body)
                .where(events.c.position > after)
                .order_by(events.c.position)
                .limit(limit)
            )
            return [event_from_row(p, b, self.max_event_depth) for p, b in rows]

    async def query_events(self, query: LogQuery) -> list[Event]:
        order = events.c.position.desc() if query.newest_first else events.c.position
        stmt = (
            select(events.c.position, events.c.body)
            .where(*self._log_conditions(query))
            .order_by(order)
            .limit(query.limit)
        )
        async with self.backend.read() as conn:
            rows = await conn.execute(stmt)
            return [event_from_row(p, b, self.max_event_depth) for p, b in rows]

    async def events_by_id(self, tenant_id: str, ids: Sequence[str]) -> list[Event]:
        """The stored events of ``tenant_id`` with these ids (any order)."""
        found: list[Event] = []
        async with self.backend.read() as conn:
            for start in range(0, len(ids), IN_CHUNK):
                rows = await conn.execute(
                    select(events.c.position, events.c.body).where(
                        events.c.tenant_id == tenant_id,
                        events.c.id.in_(list(ids[start : start + IN_CHUNK])),
                    )
                )
                found.extend(event_from_row(p, b, self.max_event_depth) for p, b in rows)
        return found

    async def count_events(self, query: LogQuery) -> int:
        stmt = select(func.count()).select_from(events).where(*self._log_conditions(query))
        async with self.backend.read() as conn:
            return int((await conn.execute(stmt)).scalar_one())

    async def prune_events(self, tenant_id: str, before: float, batch: int = 1000) -> int:
        """Delete one batch of the tenant's events older than ``before``
        (epoch seconds) in a short transaction, and move its horizon.
        Returns how many were deleted (0: nothing left, or another process
        is pruning right now)."""
        async with self.backend.write() as conn:
            if not await self.backend.retention_lock(conn):
                return 0
            rows = (await conn.execute(_prunable(tenant_id, before, batch))).all()
            if not rows:
                return 0
            positions = [row.position for row in rows]
            await conn.execute(delete(events).where(events.c.position.in_(positions)))
            await self.backend.pruned(conn, tenant_id, rows)
            await _move_horizon(conn, tenant_id, max(positions))
        return len(positions)

    async def index_entities(self) -> None:
        """Bring derived indexes up to the log's head now (SQLite's entity
        index; they catch up by themselves within a second)."""
        await self.backend.index_entities()

    async def log_horizon(self, tenant_ids: Sequence[str] | None) -> int:
        """The highest pruned position among these tenants (all if None):
        history at or below it may be gone."""
        stmt = select(func.coalesce(func.max(log_horizons.c.pruned_through), 0))
        if tenant_ids is not None:
            stmt = stmt.where(log_horizons.c.tenant_id.in_(list(tenant_ids)))
        async with self.backend.read() as conn:
            return int((await conn.execute(stmt)).scalar_one())

    async def head_position(self) -> int:
        async with self.backend.read() as conn:
            value = (
                await conn.execute(select(func.coalesce(func.max(events.c.position), 0)))
            ).scalar_one()
        return int(value)

    def _log_conditions(self, query: LogQuery) -> list[ColumnElement[bool]]:
        conditions: list[ColumnElement[bool]] = []
        tenant_ids = None
        if query.tenant_ids is not None and ALL_TENANTS not in query.tenant_ids:
            tenant_ids = list(query.tenant_ids)
        by_entity = None
        if query.entity_type is not None or query.entity_id is not None:
            by_entity = self.backend.entity_positions(
                tenant_ids, query.entity_type, query.entity_id
            )
        if by_entity is not None:
            # The positions it yields are the tenants' own: no tenant term
            # out here, which a database might take for its index.
            conditions.append(by_entity)
        elif tenant_ids is not None:
            conditions.append(events.c.tenant_id.in_(tenant_ids))
        if query.types or query.type_prefixes:
            type_conditions: list[ColumnElement[bool]] = (
                [events.c.type.in_(list(query.types))] if query.types else []
            )
            type_conditions += [
                events.c.type.startswith(p, autoescape=True) for p in query.type_prefixes
            ]
            conditions.append(or_(*type_conditions))
        if query.entity_type is not None:
            conditions.append(events.c.entity_type == query.entity_type)
        if query.entity_id is not None:
            conditions.append(events.c.entity_id == query.entity_id)
        if query.since is not None:
            conditions.append(events.c.created_at >= query.since)
        if query.until is not None:
            conditions.append(events.c.created_at < query.until)
        if query.after is not None:
            conditions.append(events.c.position > query.after)
        if query.before is not None:
            conditions.append(events.c.position < query.before)
        return conditions


def _prunable(tenant_id: str, before: float, batch: int) -> Any:
    """The oldest ``batch`` events of the tenant before ``before`` that no
    unfinished job needs: an event whose jobs are pending, retrying or dead
    stays (dead letters must remain retryable, never vanish)."""
    unfinished = (
        select(jobs.c.id)
        .where(
            jobs.c.event_position == events.c.position,
            jobs.c.status.notin_(FINISHED_JOB_STATES),
        )
        .exists()
    )
    queued = select(outbox.c.event_position).where(outbox.c.event_position == events.c.position)
    return (
        select(events.c.position, events.c.entity_type, events.c.entity_id)
        .where(
            events.c.tenant_id == tenant_id,
            events.c.created_at < before,
            ~unfinished,
            ~queued.exists(),
        )
        .order_by(events.c.position)
        .limit(batch)
    )


async def _move_horizon(conn: AsyncConnection, tenant_id: str, pruned_through: int) -> None:
    """The tenant's horizon only moves forward."""
    current = (
        await conn.execute(
            select(log_horizons.c.pruned_through).where(log_horizons.c.tenant_id == tenant_id)
        )
    ).scalar_one_or_none()
    values = {"pruned_through": pruned_through, "pruned_at": time.time()}
    if current is None:
        await conn.execute(insert(log_horizons).values(tenant_id=tenant_id, **values))
    elif current < pruned_through:
        await conn.execute(
            update(log_horizons).where(log_horizons.c.tenant_id == tenant_id).values(**values)
        )


# -- lifecycles -------------------------------------------------------------


class SQLLifecycles(SQLRole):
    async def transition_tenant(
        self, tenant_id: str, from_state: str, change: LifecycleChange, event: NewEvent | None
    ) -> AppendOutcome:
        """Move a tenant from ``from_state`` (compare-and-set: a concurrent
        change raises Conflict), record the lifecycle row and append its
        event, all in one transaction."""
        now = time.time()
        cas = (
            update(tenants)
            .where(tenants.c.id == tenant_id, tenants.c.state == from_state)
            .values(state=change.to_state, updated_at=now)
        )
        return await self._transition(
            ("tenant", tenant_id, tenant_id), from_state, change, event, cas, now
        )

    async def transition_entity(
        self,
        entity: tuple[str, str, str],
        from_state: str,
        change: LifecycleChange,
        event: NewEvent | None,
        *,
        exists: bool,
    ) -> AppendOutcome:
        """The same for any machine-driven entity ``(type, tenant, id)``;
        ``exists`` False: it has no row yet (it is in its initial state)."""
        entity_type, tenant_id, entity_id = entity
        now = time.time()
        cas: UpdateBase
        if exists:
            cas = (
                update(entity_states)
                .where(
                    entity_states.c.entity_type == entity_type,
                    entity_states.c.tenant_id == tenant_id,
                    entity_states.c.entity_id == entity_id,
                    entity_states.c.state == from_state,
                )
                .values(state=change.to_state, updated_at=now)
            )
        else:  # created by whichever transition commits first
            cas = self.backend.insert_new(entity_states).values(
                entity_type=entity_type,
                tenant_id=tenant_id,
                entity_id=entity_id,
                state=change.to_state,
                updated_at=now,
            )
        return await self._transition(entity, from_state, change, event, cas, now)

    async def _transition(
        self,
        entity: tuple[str, str, str],
        from_state: str,
        change: LifecycleChange,
        event: NewEvent | None,
        cas: UpdateBase,
        now: float,
    ) -> AppendOutcome:
        """The one compare-and-set: ``cas`` must change exactly one row, or
        nothing commits and Conflict is raised."""
        entity_type, tenant_id, entity_id = entity
        history = insert(lifecycle_log).values(
            entity_type=entity_type,
            tenant_id=tenant_id,
            entity_id=entity_id,
            from_state=from_state,
            to_state=change.to_state,
            reason=change.reason,
            triggered_by=change.triggered_by,
            trigger_source=change.trigger_source,
            event_id=event.event.id if event is not None else None,
            created_at=now,
        )
        moved = Conflict(
            f"{entity_type} {entity_id!r} is no longer {from_state or 'new'}; reload and retry"
        )
        steps = (Step(cas, unless_one=moved), Step(history))
        return await self.backend.append(
            [event] if event is not None else [], self.jobs.rules, steps
        )

    async def entity_state(self, entity_type: str, tenant_id: str, entity_id: str) -> str | None:
        stmt = select(entity_states.c.state).where(
            entity_states.c.entity_type == entity_type,
            entity_states.c.tenant_id == tenant_id,
            entity_states.c.entity_id == entity_id,
        )
        async with self.backend.read() as conn:
            state: str | None = (await conn.execute(stmt)).scalar_one_or_none()
        return state

    async def put_state_machine(self, entity_type: str, spec: Mapping[str, Any]) -> None:
        values = {"spec": dumps(dict(spec)), "updated_at": time.time()}
        async with self.backend.write() as conn:
            await upsert(conn, state_machines, {"entity_type": entity_type}, values)

    async def get_state_machine(self, entity_type: str) -> dict[str, Any] | None:
        stmt = select(state_machines.c.spec).where(state_machines.c.entity_type == entity_type)
        async with self.backend.read() as conn:
            spec = (await conn.execute(stmt)).scalar_one_or_none()
        return None if spec is None else dict(orjson.loads(spec))

    async def lifecycle(
        self, entity_type: str, tenant_id: str, entity_id: str
    ) -> list[dict[str, Any]]:
        stmt = (
            select(lifecycle_log)
            .where(
                lifecycle_log.c.entity_type == entity_type,
                lifecycle_log.c.tenant_id == tenant_id,
                lifecycle_log.c.entity_id == entity_id,
            )
            .order_by(lifecycle_log.c.id)
        )
        async with self.backend.read() as conn:
            rows = (await conn.execute(stmt)).all()
        return [dict(r._mapping) for r in rows]


# -- catalog types ----------------------------------------------------------


class SQLCatalogTypes(SQLRole):
    async def put_catalog_type(self, record: CatalogTypeRecord) -> None:
        """Create or replace a tenant's type (its whole entry)."""
        values = {
            "spec": dumps(dict(record.spec)),
            "active": record.active,
            "updated_at": record.updated_at,
        }
        key = {"tenant_id": record.tenant_id, "name": record.name}
        async with self.backend.write() as conn:
            await upsert(conn, catalog_types, key, values, created_at=record.created_at)

    async def get_catalog_type(self, tenant_id: str, name: str) -> CatalogTypeRecord | None:
        async with self.backend.read() as conn:
            row = (
                await conn.execute(
                    select(catalog_types).where(
                        catalog_types.c.tenant_id == tenant_id, catalog_types.c.name == name
                    )
                )
            ).first()
        return None if row is None else _catalog_type(row)

    async def list_catalog_types(self, tenant_id: str | None = None) -> list[CatalogTypeRecord]:
        """One tenant's types, or every tenant's (None), by tenant and name."""
        stmt = select(catalog_types).order_by(catalog_types.c.tenant_id, catalog_types.c.name)
        if tenant_id is not None:
            stmt = stmt.where(catalog_types.c.tenant_id == tenant_id)
        async with self.backend.read() as conn:
            rows = (await conn.execute(stmt)).all()
        return [_catalog_type(r) for r in rows]


# -- notifications ----------------------------------------------------------


class SQLNotifications(SQLRole):
    async def create_notification(self, record: NotificationRecord) -> None:
        async with self.backend.write() as conn:
            await conn.execute(
                insert(notifications).values(
                    id=record.id,
                    tenant_id=record.tenant_id,
                    user_id=record.user_id,
                    type=record.type,
                    title=record.title,
                    body=record.body,
                    link=record.link,
                    source_event_id=record.source_event_id,
                    created_at=record.created_at,
                    read_at=record.read_at,
                )
            )

    async def list_notifications(
        self, tenant_id: str, user_id: str, *, unread_only: bool, before: str | None, limit: int
    ) -> list[NotificationRecord]:
        stmt = select(notifications).where(
            notifications.c.tenant_id == tenant_id, notifications.c.user_id == user_id
        )
        if unread_only:
            stmt = stmt.where(notifications.c.read_at.is_(None))
        if before is not None:
            stmt = stmt.where(notifications.c.id < before)
        stmt = stmt.order_by(notifications.c.id.desc()).limit(limit)
        async with self.backend.read() as conn:
            rows = (await conn.execute(stmt)).all()
        return [_notification(r) for r in rows]

    async def unread_count(self, tenant_id: str, user_id: str) -> int:
        stmt = select(func.count()).where(
            notifications.c.tenant_id == tenant_id,
            notifications.c.user_id == user_id,
            notifications.c.read_at.is_(None),
        )
        async with self.backend.read() as conn:
            return int((await conn.execute(stmt)).scalar_one())

    async def owned_notifications(
        self, tenant_id: str, user_id: str, ids: Sequence[str]
    ) -> set[str]:
        stmt = select(notifications.c.id).where(
            notifications.c.tenant_id == tenant_id,
            notifications.c.user_id == user_id,
            notifications.c.id.in_(list(ids)),
        )
        async with self.backend.read() as conn:
            return {row[0] for row in await conn.execute(stmt)}

    async def mark_read(self, tenant_id: str, user_id: str, ids: Sequence[str] | None) -> int:
        """Mark the user's notifications read (``ids`` None: all); returns
        how many changed."""
        stmt = (
            update(notifications)
            .where(
                notifications.c.tenant_id == tenant_id,
                notifications.c.user_id == user_id,
                notifications.c.read_at.is_(None),
            )
            .values(read_at=time.time())
        )
        if ids is not None:
            stmt = stmt.where(notifications.c.id.in_(list(ids)))
        async with self.backend.write() as conn:
            result = await conn.execute(stmt)
        return int(result.rowcount)


# -- inbound integrations ---------------------------------------------------


class SQLIntegrations(SQLRole):
    async def put_integration(
        self, name: str, secret: str, scheme: str, mappings: Mapping[str, Any]
    ) -> None:
        values = {
            "secret": secret,
            "scheme": scheme,
            "mappings": dumps(dict(mappings)),
            "updated_at": time.time(),
        }
        async with self.backend.write() as conn:
            await upsert(conn, integrations, {"name": name}, values)

    async def get_integration(self, name: str) -> dict[str, Any] | None:
        async with self.backend.read() as conn:
            row = (
                await conn.execute(select(integrations).where(integrations.c.name == name))
            ).first()
        if row is None:
            return None
        return {
            "name": row.name,
            "secret": row.secret,
            "scheme": row.scheme,
            "mappings": orjson.loads(row.mappings),
        }

    async def record_inbound(
        self,
        integration: str,
        webhook_id: str | None,
        *,
        accepted: bool,
        outcome: str,
        external_type: str | None = None,
        tenant_id: str | None = None,
    ) -> None:
        async with self.backend.write() as conn:
            await conn.execute(
                insert(inbound_log).values(
                    integration=integration,
                    webhook_id=webhook_id,
                    accepted=accepted,
                    outcome=outcome,
                    external_type=external_type,
                    tenant_id=tenant_id,
                    created_at=time.time(),
                )
            )

    async def inbound_seen(self, integration: str, webhook_id: str) -> bool:
        """Was this webhook id already accepted (a replay)?"""
        stmt = select(inbound_log.c.id).where(
            inbound_log.c.integration == integration,
            inbound_log.c.webhook_id == webhook_id,
            inbound_log.c.accepted.is_(True),
        )
        async with self.backend.read() as conn:
            return (await conn.execute(stmt.limit(1))).first() is not None

    async def inbound_history(self, integration: str, limit: int = 100) -> list[dict[str, Any]]:
        stmt = (
            select(inbound_log)
            .where(inbound_log.c.integration == integration)
            .order_by(inbound_log.c.id.desc())
            .limit(limit)
        )
        async with self.backend.read() as conn:
            rows = (await conn.execute(stmt)).all()
        return [dict(r._mapping) for r in rows]


# -- rows to records --------------------------------------------------------


def _notification(row: Any) -> NotificationRecord:
    return NotificationRecord(
        id=row.id,
        tenant_id=row.tenant_id,
        user_id=row.user_id,
        type=row.type,
        title=row.title,
        body=row.body,
        link=row.link,
        source_event_id=row.source_event_id,
        created_at=row.created_at,
        read_at=row.read_at,
    )


def _catalog_type(row: Any) -> CatalogTypeRecord:
    return CatalogTypeRecord(
        tenant_id=row.tenant_id,
        name=row.name,
        spec=orjson.loads(row.spec),
        active=bool(row.active),
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


def _tenant(row: Any) -> TenantRecord:
    return TenantRecord(
        id=row.id,
        name=row.name,
        state=row.state,
        settings=orjson.loads(row.settings),
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


def _api_key(row: Any) -> ApiKeyRecord:
    return ApiKeyRecord(
        id=row.id,
        key_hash=row.key_hash,
        name=row.name,
        scopes=frozenset(orjson.loads(row.scopes)),
        tenant_id=row.tenant_id,
        created_at=row.created_at,
        revoked_at=row.revoked_at,
        expires_at=row.expires_at,
        last_used_at=row.last_used_at,
        publish_rate=row.publish_rate,
    )


def _user(row: Any) -> UserRecord:
    return UserRecord(
        tenant_id=row.tenant_id,
        user_id=row.user_id,
        system_role=row.system_role,
        grants=frozenset(orjson.loads(row.grants)),
        revokes=frozenset(orjson.loads(row.revokes)),
        resources=frozenset(orjson.loads(row.resources)),
        platform=bool(row.platform),
        platform_tenants=tuple(orjson.loads(row.platform_tenants)),
    )
