"""Alembic environment: async engines, one lock, refuse newer schemas."""

from __future__ import annotations

import asyncio

from alembic import context
from sqlalchemy import pool
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine

from tidings.store.schema import SQLITE_PAGE_SIZE, metadata

MIGRATION_LOCK_KEY = 0x7469_6D67  # "timg"


def _run(connection: Connection) -> None:
    if connection.dialect.name == "postgresql":
        # Several processes may migrate at once: one runs, the others wait
        # and then find nothing to do.
        connection.exec_driver_sql(f"SELECT pg_advisory_lock({MIGRATION_LOCK_KEY})")
        connection.commit()
    elif connection.dialect.name == "sqlite":
        # Only a database without tables takes it (a no-op afterwards).
        connection.exec_driver_sql(f"PRAGMA page_size={SQLITE_PAGE_SIZE}")
        connection.commit()
    try:
        context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
        with context.begin_transaction():
            context.run_migrations()
    finally:
        if connection.dialect.name == "postgresql":
            connection.exec_driver_sql(f"SELECT pg_advisory_unlock({MIGRATION_LOCK_KEY})")
            connection.commit()


async def _main() -> None:
    url = context.config.get_main_option("sqlalchemy.url")
    engine = create_async_engine(str(url), poolclass=pool.NullPool)
    try:
        async with engine.connect() as connection:
            await connection.run_sync(_run)
    finally:
        await engine.dispose()


asyncio.run(_main())
