"""The outbox tests' world: a host database (the app's own, SQLite or
PostgreSQL) with a tickets table and the outbox, and an embedded hub node
(SQLite or PostgreSQL) with one tenant."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Column, Integer, MetaData, String, Table
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from pg import PostgresServer
from support import ADMIN_KEY, unique
from tidings.config import Settings
from tidings.node import Tidings
from tidings.outbox import Outbox, outbox_table
from tidings.store.sql.store import normalize_url


@dataclass
class Host:
    """The host application's database: its own table and the outbox."""

    url: str  # the async SQLAlchemy URL
    engine: AsyncEngine
    metadata: MetaData
    tickets: Table
    outbox: Outbox


def host_schema() -> tuple[MetaData, Table, Table]:
    metadata = MetaData()
    tickets = Table(
        "tickets",
        metadata,
        Column("id", Integer, primary_key=True),
        Column("title", String(200), nullable=False),
    )
    return metadata, tickets, outbox_table(metadata)


def database(kind: str, tmp_path: Path, request: pytest.FixtureRequest, name: str) -> str:
    """A fresh, empty database URL (the user-facing form Tidings takes)."""
    if kind == "sqlite":
        return f"sqlite:///{tmp_path / name}"
    postgres: PostgresServer = request.getfixturevalue("postgres")
    return postgres.url(postgres.create_database())


def ticket_event(tenant: str, n: int, **extra: Any) -> dict[str, Any]:
    """The event of ticket ``n`` (seed 004's ``ticket.created``)."""
    return {
        "type": "ticket.created",
        "tenantId": tenant,
        "entityId": f"tk-{n}",
        "data": {"ticketId": f"tk-{n}", "title": f"Ticket {n}"},
        **extra,
    }


async def open_host(url: str, *, create: bool = True) -> Host:
    """The host's engine on ``url``; ``create``: its tables too (the host's ``create_all``)."""
    metadata, tickets, table = host_schema()
    engine = create_async_engine(normalize_url(url))
    if create:
        async with engine.begin() as conn:
            await conn.run_sync(metadata.create_all)
    return Host(normalize_url(url), engine, metadata, tickets, Outbox(table))


async def open_hub(url: str) -> Tidings:
    hub = Tidings(Settings(database_url=url, admin_key=ADMIN_KEY, run_jobs=False))
    await hub.start()
    return hub


async def new_tenant(hub: Tidings) -> str:
    tenant = unique("out")
    await hub.store.put_tenant(tenant, "Outbox tenant", {})
    return tenant
