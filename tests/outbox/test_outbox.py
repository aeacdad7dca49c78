"""The transactional outbox: ``add`` in the host's transaction, the relay
to the log (exactly once, in order), refused rows, bad input. Host
database and hub each on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, insert, select, text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession, create_async_engine
from sqlalchemy.orm import Session

from outbox_host import Host, database, new_tenant, open_host, ticket_event
from support import unique
from tidings.config import Settings
from tidings.errors import InvalidInput, PayloadTooLarge
from tidings.node import Tidings
from tidings.outbox import REFUSED, Outbox, OutboxRelay
from tidings.store.base import LogQuery


async def logged(hub: Tidings, tenant: str) -> list[str]:
    """The tenant's event ids in log order."""
    events = await hub.store.query_events(LogQuery(tenant_ids=[tenant], limit=10_000))
    return [e.id for e in events]


async def count(conn: AsyncConnection, table: Any) -> int:
    return int((await conn.execute(select(func.count()).select_from(table))).scalar_one())


async def add_tickets(host: Host, tenant: str, numbers: range) -> list[str]:
    """One host transaction: a ticket row and its event per number."""
    ids = []
    async with host.engine.begin() as conn:
        for n in numbers:
            await conn.execute(insert(host.tickets).values(id=n, title=f"Ticket {n}"))
            ids.append(await host.outbox.add_async(conn, ticket_event(tenant, n)))
    return ids


async def test_committed_rows_reach_the_log_once_in_sequence_order(
    host: Host, hub: Tidings
) -> None:
    tenant = await new_tenant(hub)
    ids = []
    for start in (1, 11, 21):
        ids += await add_tickets(host, tenant, range(start, start + 10))
    relay = OutboxRelay(host.engine, host.outbox, hub, batch_size=7)
    assert await relay.drain() == 30
    assert await logged(hub, tenant) == ids
    assert relay.stats.relayed == 30 and relay.stats.duplicates == 0
    async with host.engine.connect() as conn:
        assert await count(conn, host.outbox.table) == 0
        assert await count(conn, host.tickets) == 30
    assert await relay.drain() == 0  # nothing twice


async def test_a_rolled_back_transaction_leaves_neither_row_nor_event(
    host: Host, hub: Tidings
) -> None:
    tenant = await new_tenant(hub)
    with pytest.raises(RuntimeError):
        async with host.engine.begin() as conn:
            await conn.execute(insert(host.tickets).values(id=1, title="Lost"))
            await host.outbox.add_async(conn, ticket_event(tenant, 1))
            raise RuntimeError("the host's request failed after both writes")
    kept = await add_tickets(host, tenant, range(2, 3))
    relay = OutboxRelay(host.engine, host.outbox, hub)
    await relay.drain()
    assert await logged(hub, tenant) == kept
    async with host.engine.connect() as conn:
        titles = (await conn.execute(select(host.tickets.c.title))).scalars().all()
    assert titles == ["Ticket 2"]


async def test_sync_connection_and_session_and_async_session(host: Host, hub: Tidings) -> None:
    tenant = await new_tenant(hub)
    ids: list[str] = []
    async with host.engine.begin() as conn:  # a real sync Connection, in this transaction
        ids.append(await conn.run_sync(lambda sync: host.outbox.add(sync, ticket_event(tenant, 1))))
    async with AsyncSession(host.engine) as session, session.begin():
        session.add_all([])  # the ORM session's own transaction
        ids.append(await host.outbox.add_async(session, ticket_event(tenant, 2)))

        def in_sync_session(sync: Session) -> str:
            return host.outbox.add(sync, ticket_event(tenant, 3, id=f"ev-{tenant}-3"))

        ids.append(await session.run_sync(in_sync_session))
    assert ids[2] == f"ev-{tenant}-3"  # an id the caller chose is kept
    relay = OutboxRelay(host.engine, host.outbox, hub)
    await relay.drain()
    assert await logged(hub, tenant) == ids


async def test_a_crash_between_publish_and_delete_republishes_as_duplicates(
    host: Host, hub: Tidings
) -> None:
    tenant = await new_tenant(hub)
    ids = await add_tickets(host, tenant, range(1, 6))

    async def crash(published: Any) -> None:
        assert list(published) == ids  # the hub holds them; their rows are not deleted yet
        raise RuntimeError("the relay's process died here")

    with pytest.raises(RuntimeError):
        await OutboxRelay(host.engine, host.outbox, hub, after_publish=crash).drain()
    async with host.engine.connect() as conn:
        assert await count(conn, host.outbox.table) == 5  # the delete rolled back
    again = OutboxRelay(host.engine, host.outbox, hub)
    assert await again.drain() == 5
    assert again.stats.duplicates == 5 and again.stats.relayed == 0
    assert await logged(hub, tenant) == ids


async def test_a_refused_row_is_kept_with_its_error_and_blocks_nothing(
    host: Host, hub: Tidings
) -> None:
    tenant = await new_tenant(hub)
    later = unique("later")  # a tenant the hub does not know yet
    closed = await new_tenant(hub)  # a tenant that accepts no writes for now
    await hub.transition_tenant(closed, "ACTIVE")
    await hub.transition_tenant(closed, "SUSPENDED")
    async with host.engine.begin() as conn:
        first = await host.outbox.add_async(conn, ticket_event(tenant, 1))
        ghost = await host.outbox.add_async(conn, ticket_event(later, 2))
        typo = await host.outbox.add_async(
            conn, {**ticket_event(tenant, 3), "type": "ticket.creatd"}
        )
        held = await host.outbox.add_async(conn, ticket_event(closed, 4))
        last = await host.outbox.add_async(conn, ticket_event(tenant, 5))
    relay = OutboxRelay(host.engine, host.outbox, hub)
    assert await relay.drain() == 5
    assert await logged(hub, tenant) == [first, last]
    assert relay.stats.refused == 3 and relay.stats.relayed == 2
    refused = {r.event_id: r for r in await relay.refused()}
    assert set(refused) == {ghost, typo, held}
    assert "unknown tenant" in refused[ghost].error and "/tenantId" in refused[ghost].error
    assert "/type" in refused[typo].error
    assert "409" in refused[held].error and "SUSPENDED" in refused[held].error
    assert refused[typo].envelope["type"] == "ticket.creatd"

    await hub.store.put_tenant(later, "Later", {})
    await hub.transition_tenant(closed, "ACTIVE")
    before = await logged(hub, closed)  # its lifecycle events
    assert await relay.retry_refused() == 3
    assert await relay.drain() == 3
    assert await logged(hub, later) == [ghost]
    assert await logged(hub, closed) == [*before, held]
    (still,) = await relay.refused()
    assert (still.event_id, still.attempts) == (typo, 2)
    async with host.engine.connect() as conn:
        states = (await conn.execute(select(host.outbox.table.c.state))).scalars().all()
    assert states == [REFUSED]


def deep(levels: int) -> dict[str, Any]:
    node: dict[str, Any] = {}
    for _ in range(levels):
        node = {"n": node}
    return node


BAD = [
    (["not", "an", "object"], ""),
    ({"tenantId": "t1", "data": {}}, "/type"),
    ({"type": "ticket.created", "data": {}}, "/tenantId"),
    ({"type": "ticket.created", "tenantId": "t1", "data": {"when": object()}}, "/data/when"),
    ({"type": "ticket.created", "tenantId": "t1", "data": {"a": [1, {2}]}}, "/data/a/1"),
    (
        {"type": "ticket.created", "tenantId": "t1", "data": {"amount": Decimal("9.5")}},
        "/data/amount",
    ),
    ({"type": "ticket.created", "tenantId": "t1", "data": deep(40)}, "/data/n/n"),
    ({"type": "ticket.created", "tenantId": "t1", "id": "bad id!"}, "/id"),
    ({"type": "ticket.created", "tenantId": "t1", "colour": "red"}, "/colour"),
    ({"type": "ticket.created", "tenantId": "t1", "timestamp": "yesterday"}, "/timestamp"),
]


@pytest.mark.parametrize(("event", "field"), BAD)
async def test_bad_input_is_refused_naming_the_field_and_writes_nothing(
    host: Host, event: Any, field: str
) -> None:
    async with host.engine.begin() as conn:
        with pytest.raises(InvalidInput) as caught:
            await host.outbox.add_async(conn, event)
        assert await count(conn, host.outbox.table) == 0
    assert caught.value.field is not None and caught.value.field.startswith(field)


async def test_an_event_too_big_is_refused(host: Host) -> None:
    small = Outbox(host.outbox.table, max_event_bytes=1000)
    async with host.engine.begin() as conn:
        with pytest.raises(PayloadTooLarge):
            await small.add_async(conn, ticket_event("t1", 1, metadata={"pad": "x" * 1000}))
        assert await count(conn, host.outbox.table) == 0


async def test_with_the_hub_add_checks_the_catalog(host: Host, hub: Tidings) -> None:
    checked = Outbox(host.outbox.table, hub=hub)
    async with host.engine.begin() as conn:
        with pytest.raises(InvalidInput) as typo:
            await checked.add_async(conn, {**ticket_event("t1", 1), "type": "ticket.creatd"})
        with pytest.raises(InvalidInput) as schema:
            await checked.add_async(conn, {**ticket_event("t1", 1), "data": {"title": "x"}})
        assert await count(conn, host.outbox.table) == 0
    assert typo.value.field == "/type"
    assert (schema.value.field or "").startswith("/data")


async def test_the_running_relay_wakes_on_commit_and_polls_other_writers(
    host: Host, hub: Tidings, host_kind: str
) -> None:
    tenant = await new_tenant(hub)
    relay = OutboxRelay(host.engine, host.outbox, hub, poll_s=0.2)
    other = create_async_engine(host.url)  # another writer: it cannot wake this relay
    try:
        async with relay:
            woken = await add_tickets(host, tenant, range(1, 4))
            relay.wake()
            await until(lambda: logged(hub, tenant), woken)
            polled = []
            async with other.begin() as conn:
                polled.append(await host.outbox.add_async(conn, ticket_event(tenant, 9)))
            await until(lambda: logged(hub, tenant), woken + polled)
            assert relay.task_name not in hub.supervisor.dead()
        assert hub.supervisor.task(relay.task_name) is None  # stopped
    finally:
        await other.dispose()


async def until(read: Any, expected: list[str], timeout: float = 30.0) -> None:
    """Wait until ``await read()`` equals ``expected`` (speed is not the test)."""
    seen: list[str] = []
    async with asyncio.timeout(timeout):
        while (seen := await read()) != expected:
            await asyncio.sleep(0.05)
    assert seen == expected


async def test_two_relays_on_one_table_still_relay_once_in_order(host: Host, hub: Tidings) -> None:
    tenant = await new_tenant(hub)
    ids = []
    for start in range(1, 200, 20):
        ids += await add_tickets(host, tenant, range(start, start + 20))
    second = create_async_engine(host.url)
    try:
        relays = [
            OutboxRelay(host.engine, host.outbox, hub, batch_size=9),
            OutboxRelay(second, host.outbox, hub, batch_size=13),
        ]
        for _ in range(50):
            await asyncio.gather(*(r.drain() for r in relays))
            if await logged(hub, tenant) == ids:
                break
    finally:
        await second.dispose()
    assert await logged(hub, tenant) == ids
    async with host.engine.connect() as conn:
        assert await count(conn, host.outbox.table) == 0


@contextlib.asynccontextmanager
async def writes_blocked(host: Host) -> AsyncIterator[None]:
    """Another host transaction holds the outbox's write lock (SQLite: the
    database's one writer; PostgreSQL: the table's EXCLUSIVE lock, reads
    still allowed) until the block ends."""
    if host.engine.dialect.name == "sqlite":
        assert host.engine.url.database is not None
        blocker = sqlite3.connect(host.engine.url.database, isolation_level=None)
        blocker.execute("BEGIN IMMEDIATE")
        try:
            yield
        finally:
            blocker.execute("ROLLBACK")
            blocker.close()
        return
    async with host.engine.connect() as conn, conn.begin():
        await conn.execute(text(f"LOCK TABLE {host.outbox.table.name} IN EXCLUSIVE MODE"))
        yield


async def test_publishing_does_not_wait_for_the_hosts_write_lock(host: Host, hub: Tidings) -> None:
    tenant = await new_tenant(hub)
    first = await add_tickets(host, tenant, range(1, 4))
    relay = OutboxRelay(host.engine, host.outbox, hub, poll_s=0.05)
    async with relay:
        async with writes_blocked(host):
            # The rows reach the log while their delete waits for the lock.
            await until(lambda: logged(hub, tenant), first)
            await asyncio.sleep(0.5)  # more rounds: the waiting rows are not published again
        async with host.engine.connect() as conn:
            while await count(conn, host.outbox.table):  # settled once the lock is free
                await asyncio.sleep(0.05)
                await conn.rollback()
        later = await add_tickets(host, tenant, range(4, 6))
        relay.wake()
        await until(lambda: logged(hub, tenant), first + later)
    assert relay.stats.duplicates == 0 and relay.stats.relayed == 5


async def test_the_relay_starts_only_on_a_started_hub(host: Host, tmp_path: Path) -> None:
    hub = Tidings(Settings(database_url=f"sqlite:///{tmp_path / 'idle.db'}", run_jobs=False))
    relay = OutboxRelay(host.engine, host.outbox, hub)
    with pytest.raises(RuntimeError, match=r"hub\.start"):
        relay.start()
    assert hub.supervisor.task(relay.task_name) is None


async def test_the_loop_outlives_the_host_database_dropping_its_connections(
    hub: Tidings, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """PostgreSQL host (the failure SQLite has no form of): every connection
    to it is cut while the relay runs, as a restart or failover does."""
    host = await open_host(database("postgres", tmp_path, request, "host.db"))
    relay_engine = create_async_engine(host.url)
    tenant = await new_tenant(hub)
    try:
        relay = OutboxRelay(relay_engine, host.outbox, hub, poll_s=0.05, retry_s=0.1)
        async with relay:
            first = await add_tickets(host, tenant, range(1, 4))
            relay.wake()
            await until(lambda: logged(hub, tenant), first)
            async with host.engine.connect() as conn:
                await conn.execute(
                    text(
                        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                        "WHERE datname = current_database() AND pid <> pg_backend_pid()"
                    )
                )
            await host.engine.dispose()  # the test's own writes start on a fresh connection
            later = await add_tickets(host, tenant, range(4, 7))
            relay.wake()
            await until(lambda: logged(hub, tenant), first + later)
            assert relay.task_name not in hub.supervisor.dead()
        assert relay.stats.failures >= 1 and "Error" in relay.stats.last_error
        async with host.engine.connect() as conn:
            assert await count(conn, host.outbox.table) == 0
    finally:
        await relay_engine.dispose()
        await host.engine.dispose()


async def test_on_postgresql_the_log_has_the_hosts_commit_order(
    hub: Tidings, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """Two overlapping host transactions: the second writer waits at its
    insert until the first commits, so ``seq`` order is commit order and
    the log never holds the later commit first (``ordered``, the default)."""
    host = await open_host(database("postgres", tmp_path, request, "host.db"))
    tenant = await new_tenant(hub)
    try:
        async with host.engine.connect() as first, host.engine.connect() as second:
            await first.begin()
            early = await host.outbox.add_async(first, ticket_event(tenant, 1))
            await second.begin()
            late = asyncio.create_task(host.outbox.add_async(second, ticket_event(tenant, 2)))
            await asyncio.sleep(0.5)
            assert not late.done()  # it waits for the first transaction
            await first.commit()
            await late
            await second.commit()
        relay = OutboxRelay(host.engine, host.outbox, hub)
        assert await relay.drain() == 2
        assert await logged(hub, tenant) == [early, late.result()]
        unordered = Outbox(host.outbox.table, ordered=False)
        async with host.engine.connect() as first, host.engine.connect() as second:
            await first.begin()
            await unordered.add_async(first, ticket_event(tenant, 3))
            await second.begin()
            await asyncio.wait_for(unordered.add_async(second, ticket_event(tenant, 4)), 5)
            await second.rollback()  # it did not wait: seq order is insert order
            await first.rollback()
    finally:
        await host.engine.dispose()
