"""PostgreSQL's part of the SQL store: advisory locks, ``ON CONFLICT``, and
the ``NOTIFY`` that tells every process the log moved.

Commit order = position order: the append transaction takes a
transaction-scoped advisory lock before reading the head position, so the
next transaction to assign positions can only start after this one has
committed (see docs/ARCHITECTURE.md, "Positions"). Readers and writers
share one pool; row locks (``FOR UPDATE [SKIP LOCKED]``, written in the
common code, which SQLite's dialect leaves out) serialize the job queue.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

from sqlalchemy import Table, insert, text
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncConnection, create_async_engine
from sqlalchemy.sql.dml import Insert

from tidings.core.triggers import RuleSet
from tidings.store.append import (
    HEAD_SQL,
    OUTBOX_COLUMNS,
    ROW_COLUMNS,
    Existing,
    existing_queries,
    named,
    plan_append,
    record_existing,
)
from tidings.store.records import AppendOutcome, NewEvent
from tidings.store.schema import events, outbox
from tidings.store.sql.common import Backend, Step

APPEND_LOCK_KEY = 0x7469_6469  # "tidi": the advisory lock for appends
RETENTION_LOCK_KEY = 0x7469_7274  # "tirt": one process prunes at a time
LOG_CHANNEL = "tidings_log"  # NOTIFY payload: the new head position and origin
CONTROL_CHANNEL = "tidings_control"  # NOTIFY payload: a JSON control message
_HEAD = HEAD_SQL.format("GREATEST")
_APPEND_LOCK = f"SELECT pg_advisory_xact_lock({APPEND_LOCK_KEY})"
_RETENTION_LOCK = text(f"SELECT pg_try_advisory_xact_lock({RETENTION_LOCK_KEY})")
_NOTIFY = text("SELECT pg_notify(:channel, :head)")
_DATABASE_SIZE = text("SELECT pg_database_size(current_database())")


class PostgresBackend(Backend):
    is_sqlite: ClassVar[bool] = False

    def __init__(self, url: str, *, pool_size: int = 5, origin: str = "") -> None:
        # No pre-ping (a round trip per checkout): connections broken by an
        # outage fail once (503) and the pool discards them.
        engine = create_async_engine(url, pool_size=pool_size, max_overflow=pool_size)
        super().__init__(url, engine, engine)
        self.origin = origin  # names this process in log notifications

    async def append(
        self, new_events: Sequence[NewEvent], rules: RuleSet | None, before: Sequence[Step] = ()
    ) -> AppendOutcome:
        async with self.write() as conn:
            for step in before:
                changed = (await conn.execute(step.statement)).rowcount
                if changed != 1 and step.unless_one is not None:
                    raise step.unless_one
            return await self._append_in(conn, new_events, rules)

    async def _append_in(
        self, conn: AsyncConnection, new_events: Sequence[NewEvent], rules: RuleSet | None
    ) -> AppendOutcome:
        await conn.exec_driver_sql(_APPEND_LOCK)
        existing: Existing = {}
        for query, params in existing_queries(named(new_events)):
            record_existing(existing, await conn.execute(text(query), params))
        head = (await conn.exec_driver_sql(_HEAD)).scalar_one()
        plan = plan_append(new_events, existing, head, rules)
        if plan.rows:
            await conn.execute(
                insert(events), [dict(zip(ROW_COLUMNS, row, strict=True)) for row in plan.rows]
            )
        if plan.outbox_rows:
            await conn.execute(
                insert(outbox),
                [dict(zip(OUTBOX_COLUMNS, row, strict=True)) for row in plan.outbox_rows],
            )
        if plan.stored:
            # Delivered at commit, in commit order: wakes every process's
            # feed (the log stays the source of truth).
            await conn.execute(
                _NOTIFY,
                {"channel": LOG_CHANNEL, "head": f"{plan.stored[-1].position} {self.origin}"},
            )
        return plan.outcome()

    def insert_new(self, table: Table) -> Insert:
        return pg_insert(table).on_conflict_do_nothing()

    async def storage_bytes(self) -> int:
        async with self.read() as conn:
            size = (await conn.execute(_DATABASE_SIZE)).scalar_one()
        return int(size)

    async def retention_lock(self, conn: AsyncConnection) -> bool:
        return bool((await conn.execute(_RETENTION_LOCK)).scalar_one())
