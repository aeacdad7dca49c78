"""The event log role in SQL: reads, history queries, retention (appends are
the backend's: ``sqlite.py``, ``postgres.py``)."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from sqlalchemy import delete, func, insert, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql.elements import ColumnElement

from tidings.core.audience import ALL_TENANTS
from tidings.core.envelope import Event, event_from_row
from tidings.store.append import IN_CHUNK
from tidings.store.records import AppendOutcome, LogQuery, NewEvent
from tidings.store.schema import events, jobs, log_horizons, outbox
from tidings.store.sql.common import SQLRole

FINISHED_JOB_STATES = ("succeeded", "discarded")


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

    async def count_events(self, query: LogQuery, *, cap: int | None = None) -> int:
        """How many events match; with ``cap``, counting stops there (the
        answer is at most ``cap``: bounded work on any size of log)."""
        stmt = select(func.count()).select_from(events).where(*self._log_conditions(query))
        if cap is not None:
            matching = select(events.c.position).where(*self._log_conditions(query)).limit(cap)
            stmt = select(func.count()).select_from(matching.subquery())
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
