"""The portal's database (SQLite file or PostgreSQL): ``read()`` and
``write()`` transactions.

On SQLite (WAL) a read never waits for a writer, and there is one writer
at a time:

* ``write()`` transactions begin ``IMMEDIATE`` (the write lock first), so a
  read-then-write transaction never fails with "database is locked"
  halfway; in this process they queue in order on an asyncio lock rather
  than in SQLite's busy handler, which sleeps up to 100 ms between tries
  (at 50 writes/s that sleeping, not the work, made most of the latency).
* ``read()`` transactions begin ``DEFERRED``: a snapshot, no lock taken.

A transaction begun on ``engine`` without either helper begins
``IMMEDIATE`` (the safe default), unqueued.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from tidings.portal.tables import metadata

SQLITE_BUSY_TIMEOUT_S = 30
_DEFERRED = "portal_deferred"  # execution option: a read transaction


def async_url(url: str) -> str:
    if url.startswith("sqlite:///"):
        return "sqlite+aiosqlite:///" + url[len("sqlite:///") :]
    if url.startswith(("postgresql://", "postgres://")):
        return "postgresql+asyncpg://" + url.split("://", 1)[1]
    return url


def open_engine(url: str) -> AsyncEngine:
    full = async_url(url)
    if not full.startswith("sqlite"):
        return create_async_engine(full, pool_size=10, pool_pre_ping=True)
    engine = create_async_engine(full, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_S})

    @event.listens_for(engine.sync_engine, "connect")
    def _connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # SQLAlchemy emits BEGIN itself
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _begin(conn: Any) -> None:
        deferred = conn.get_execution_options().get(_DEFERRED, False)
        conn.exec_driver_sql("BEGIN" if deferred else "BEGIN IMMEDIATE")

    return engine


class Database:
    """The engine and its two kinds of transaction (see the module)."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        sqlite = engine.dialect.name == "sqlite"
        #: The engine for reading (SQLite: deferred transactions); also the
        #: outbox relay's, whose rounds only read and whose settling
        #: statements each begin by writing.
        self.reader = engine.execution_options(**{_DEFERRED: True}) if sqlite else engine
        self._writers = asyncio.Lock() if sqlite else None

    @classmethod
    def open(cls, url: str) -> Database:
        return cls(open_engine(url))

    def read(self) -> contextlib.AbstractAsyncContextManager[AsyncConnection]:
        """A connection whose transaction only reads."""
        return self.reader.connect()

    @contextlib.asynccontextmanager
    async def write(self) -> AsyncIterator[AsyncConnection]:
        """A write transaction, committed on exit (rolled back on error)."""
        async with self._writers or contextlib.nullcontext(), self.engine.begin() as conn:
            yield conn


async def create_tables(engine: AsyncEngine) -> None:
    async with engine.begin() as conn:
        await conn.run_sync(metadata.create_all)
