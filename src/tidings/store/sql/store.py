""":class:`SQLStore`: every role of :mod:`tidings.store.ports` on one SQL
database, the backend chosen by the URL (the only place that looks)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from tidings.core.envelope import DEFAULT_MAX_DEPTH
from tidings.store.jobs import SQLJobs
from tidings.store.records import PoolUsage
from tidings.store.sql.catalog_types import SQLCatalogTypes
from tidings.store.sql.common import Backend
from tidings.store.sql.directory import SQLDirectory
from tidings.store.sql.integrations import SQLIntegrations
from tidings.store.sql.lifecycles import SQLLifecycles
from tidings.store.sql.log import SQLEventLog
from tidings.store.sql.notifications import SQLNotifications
from tidings.store.sql.postgres import PostgresBackend
from tidings.store.sql.sqlite import SQLiteBackend

if TYPE_CHECKING:
    from tidings.store.ports import Store


def normalize_url(url: str) -> str:
    """Map user-facing URLs onto the async drivers."""
    if url.startswith("sqlite:///"):
        return "sqlite+aiosqlite:///" + url[len("sqlite:///") :]
    if url.startswith(("postgresql://", "postgres://")):
        return "postgresql+asyncpg://" + url.split("://", 1)[1]
    return url


def open_backend(
    url: str, *, pool_size: int = 5, sqlite_synchronous: str = "FULL", origin: str = ""
) -> Backend:
    """The backend for a (normalized) database URL."""
    if url.startswith("sqlite"):
        return SQLiteBackend(url, pool_size=pool_size, synchronous=sqlite_synchronous)
    return PostgresBackend(url, pool_size=pool_size, origin=origin)


class SQLStore(
    SQLEventLog, SQLDirectory, SQLNotifications, SQLIntegrations, SQLLifecycles, SQLCatalogTypes
):
    """:class:`~tidings.store.ports.Store` on SQLite or PostgreSQL."""

    jobs: SQLJobs

    def __init__(
        self,
        url: str,
        *,
        pool_size: int = 5,
        sqlite_synchronous: str = "FULL",
        origin: str = "",
        max_event_depth: int = DEFAULT_MAX_DEPTH,
    ) -> None:
        self.url = normalize_url(url)
        self.origin = origin  # names this process in log notifications
        self.max_event_depth = max_event_depth
        self.backend = open_backend(
            self.url, pool_size=pool_size, sqlite_synchronous=sqlite_synchronous, origin=origin
        )
        self.jobs = SQLJobs(self.backend)

    @property
    def is_sqlite(self) -> bool:
        """One process owns the database (the node's choice of signals)."""
        return self.backend.is_sqlite

    async def open(self) -> None:
        await self.ping()
        await self.backend.open()

    async def close(self) -> None:
        await self.backend.close()

    async def ping(self) -> None:
        async with self.backend.read() as conn:
            await conn.exec_driver_sql("SELECT 1")

    async def storage_bytes(self) -> int:
        """The database's size on disk (SQLite: its files; PostgreSQL:
        ``pg_database_size``)."""
        return await self.backend.storage_bytes()

    def pool_usage(self) -> list[PoolUsage]:
        """The connection pools' use now (in memory, no query)."""
        return self.backend.pool_usage()


if TYPE_CHECKING:  # mypy checks that the composite is every role

    def _is_a_store(store: SQLStore) -> Store:
        return store
