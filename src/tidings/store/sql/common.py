"""The SQL store's shared ground: the backend hooks and what every role uses.

What differs between databases is a :class:`Backend` (``sqlite.py``,
``postgres.py``): its engines, its append transaction (how commit order is
made position order), its retention lock, its entity index and its
insert-if-absent. Everything here calls those hooks and never asks which
database it runs on.

The roles of :mod:`tidings.store.ports` are one mixin each, in their own
modules (``directory.py``, ``log.py``, ``lifecycles.py``,
``catalog_types.py``, ``notifications.py``, ``integrations.py``), on
:class:`SQLRole`; ``store.py`` composes them into
:class:`~tidings.store.sql.SQLStore`. A mixin reaches the database only
through ``self.backend``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, ClassVar

import orjson
from sqlalchemy import Table, insert, update
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from sqlalchemy.pool import Pool, QueuePool
from sqlalchemy.sql.dml import Insert, UpdateBase
from sqlalchemy.sql.elements import ColumnElement

from tidings.core.triggers import RuleSet
from tidings.errors import Unavailable
from tidings.store.ports import JobQueue
from tidings.store.records import AppendOutcome, NewEvent, PoolUsage


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

    def pool_usage(self) -> list[PoolUsage]:
        engines = [("main", self.reader)]
        if self.writer is not self.reader:
            engines = [("reader", self.reader), ("writer", self.writer)]
        return [_usage(name, engine.sync_engine.pool) for name, engine in engines]

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

    @abstractmethod
    async def storage_bytes(self) -> int:
        """The database's size on disk, in bytes (the health page's)."""


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


def _usage(name: str, pool: Pool) -> PoolUsage:
    if not isinstance(pool, QueuePool):  # e.g. a static or null pool: nothing to run out of
        return PoolUsage(name, 0, 0, 0)
    # SQLAlchemy has no public reader of max_overflow; size() is the base size.
    capacity = pool.size() + max(0, pool._max_overflow)
    return PoolUsage(name, pool.checkedout(), pool.checkedin() + pool.checkedout(), capacity)
