"""Applying the Alembic migrations (``tidings migrate``, server start-up).

Forward-only; PostgreSQL migrations run under an advisory lock so several
processes may start at once; a database whose schema is newer than this
code is refused instead of being touched.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from tidings.errors import TidingsError
from tidings.store.sql import normalize_url

MIGRATIONS = Path(__file__).with_name("migrations")


class SchemaTooNew(TidingsError):
    code = "schema_too_new"


def alembic_config(url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("sqlalchemy.url", normalize_url(url).replace("%", "%%"))
    return config


async def current_revision(url: str) -> str | None:
    engine = create_async_engine(normalize_url(url), poolclass=NullPool)
    try:
        async with engine.connect() as conn:
            return await conn.run_sync(
                lambda c: MigrationContext.configure(c).get_current_revision()
            )
    finally:
        await engine.dispose()


async def upgrade(url: str) -> str:
    """Bring the schema to the newest revision; returns it."""
    config = alembic_config(url)
    script = ScriptDirectory.from_config(config)
    current = await current_revision(url)
    if (
        current is not None and script.get_revision(current) is None
    ):  # pragma: no cover - guarded below
        raise SchemaTooNew(f"the database schema ({current}) is newer than this Tidings")
    # env.py runs its own event loop, so Alembic runs in a worker thread.
    await asyncio.to_thread(command.upgrade, config, "head")
    head = script.get_current_head()
    return head or ""
