"""A property of the relay: whatever the host commits or rolls back, with
rows the hub refuses among them, relayed in batches of any size by relays
that die (in-process) between publishing and settling at any round, the
log ends up holding every committed, publishable event once, in commit
order, and the outbox holds exactly the refused rows. Host on SQLite and
PostgreSQL, hub on SQLite."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import MetaData
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from outbox_host import database, new_tenant, open_hub, ticket_event
from tidings.node import Tidings
from tidings.outbox import Outbox, OutboxRelay, outbox_table
from tidings.store.base import LogQuery
from tidings.store.sql.store import normalize_url

Loop = asyncio.AbstractEventLoop


class Died(Exception):
    """The relay's process, dying between publish and settle."""


@pytest.fixture
def world(
    host_kind: str, tmp_path: Path, request: pytest.FixtureRequest
) -> Iterator[tuple[Loop, AsyncEngine, Tidings]]:
    loop = asyncio.new_event_loop()
    engine = create_async_engine(normalize_url(database(host_kind, tmp_path, request, "host.db")))
    hub = loop.run_until_complete(open_hub(f"sqlite:///{tmp_path / 'hub.db'}"))
    yield loop, engine, hub
    loop.run_until_complete(hub.stop())
    loop.run_until_complete(engine.dispose())
    loop.close()


TRANSACTION = st.tuples(
    st.lists(st.booleans(), min_size=1, max_size=4),  # per row: publishable?
    st.booleans(),  # committed?
    st.booleans(),  # a relay round after it?
)


@settings(
    max_examples=15,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    transactions=st.lists(TRANSACTION, min_size=1, max_size=8),
    batch=st.integers(min_value=1, max_value=5),
    deaths=st.sets(st.integers(min_value=0, max_value=12), max_size=4),
)
def test_every_committed_event_once_in_order_whatever_dies(
    world: tuple[Loop, AsyncEngine, Tidings],
    transactions: list[tuple[list[bool], bool, bool]],
    batch: int,
    deaths: set[int],
) -> None:
    loop, engine, hub = world
    loop.run_until_complete(scenario(engine, hub, transactions, batch, deaths))


async def scenario(
    engine: AsyncEngine,
    hub: Tidings,
    transactions: Sequence[tuple[list[bool], bool, bool]],
    batch: int,
    deaths: set[int],
) -> None:
    tenant = await new_tenant(hub)
    metadata = MetaData()
    outbox = Outbox(outbox_table(metadata, name=f"outbox_{tenant}"))
    async with engine.begin() as conn:
        await conn.run_sync(metadata.create_all)
    rounds = iter(range(1_000))

    async def maybe_die(_ids: Sequence[str]) -> None:
        if next(rounds) in deaths:
            raise Died

    async def relay(rounds_only: bool) -> None:
        """A new relay each time (a restarted process): one round, or until done."""
        worker = OutboxRelay(engine, outbox, hub, batch_size=batch, after_publish=maybe_die)
        while True:
            try:
                await (worker.relay_once() if rounds_only else worker.drain())
                return
            except Died:
                worker = OutboxRelay(engine, outbox, hub, batch_size=batch, after_publish=maybe_die)

    expected: list[str] = []
    kept: list[str] = []
    for n, (rows, committed, then_relay) in enumerate(transactions):
        ids = await write(engine, outbox, tenant, n, rows, committed)
        if committed:
            expected += [i for i, good in zip(ids, rows, strict=True) if good]
            kept += [i for i, good in zip(ids, rows, strict=True) if not good]
        if then_relay:
            await relay(rounds_only=True)
    await relay(rounds_only=False)

    events = await hub.store.query_events(LogQuery(tenant_ids=[tenant], limit=1_000))
    assert [e.id for e in events] == expected
    async with engine.connect() as conn:
        refused = await outbox.refused_async(conn)
    assert [r.event_id for r in refused] == kept


async def write(
    engine: AsyncEngine, outbox: Outbox, tenant: str, n: int, rows: list[bool], commit: bool
) -> list[str]:
    """One host transaction of ``rows`` events (a bad type where False)."""
    ids: list[str] = []
    async with engine.connect() as conn:
        transaction = await conn.begin()
        for i, good in enumerate(rows):
            extra: dict[str, Any] = {} if good else {"type": "ticket.unknown"}
            ids.append(await outbox.add_async(conn, {**ticket_event(tenant, n * 10 + i), **extra}))
        await (transaction.commit() if commit else transaction.rollback())
    return ids
