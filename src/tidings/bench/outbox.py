"""The transactional outbox: how fast the relay moves committed rows into
the log, beside publishing the same events directly.

In one process (the way a host embeds the hub), on throw-away databases:

1. ``direct``: ``hub.publish_many`` of N ``ticket.created`` events in
   batches of the relay's size, into an empty log: the ceiling.
2. ``relay_drain``: N events already committed to the host's outbox (10
   per host transaction, each next to its ticket row), then
   ``relay.drain()``: rows read, published, deleted.
3. ``live_saturated``: the host commits N more events back to back (10 per
   transaction, waking the relay after each commit) while the relay runs:
   the host's commit rate, events/s from the first commit to the last
   event durable in the log (the relay keeps up when they match), and each
   event's commit -> durable latency. (On SQLite the relay's deletes wait
   for the one write lock such a writer nearly always holds: they are
   settled in the background, so publishing does not wait with them.)
4. ``live_paced_200_per_s``: the same at an offered 200 events/s (20
   transactions/s), a host that is busy but not saturated.

The host's SQLite database runs in WAL mode, as docs/OUTBOX.md advises.
``ratio_drain_vs_direct`` is what relaying costs beside publishing: the
host's read and delete, and the hub's duplicate check (the relay's events
carry their ids, so each batch costs one indexed lookup that fresh ids
skip; on PostgreSQL the publish is most of a round: 1.1 of 1.4 s for 4,000
events in one profile). On
SQLite always; on PostgreSQL too (host and hub each on a fresh database)
with ``--database``. Printed, never asserted: there is no target.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from sqlalchemy import Column, Integer, MetaData, String, Table, insert
from sqlalchemy import event as sa_event
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from tidings.bench import postgres
from tidings.bench.stats import latency_summary
from tidings.config import Settings
from tidings.node import Tidings
from tidings.outbox import Outbox, OutboxRelay, outbox_table
from tidings.store.sql.store import normalize_url

TENANT = "bench-outbox"
BATCH = 200  # the relay's batch size, and the direct publisher's
PER_TRANSACTION = 10
PACED_RATE = 200.0  # events/s offered in the paced run (the portal bench asks for 50 ops/s)
PACED_EVENTS = 1_000


def event(n: int) -> dict[str, Any]:
    return {
        "type": "ticket.created",
        "tenantId": TENANT,
        "entityId": f"tk-{n}",
        "data": {"ticketId": f"tk-{n}", "title": f"Ticket {n}", "priority": "normal"},
    }


async def hub_on(url: str) -> Tidings:
    node = Tidings(Settings(database_url=url, run_jobs=False, poll_s=60.0, heartbeat_s=3600.0))
    await node.start()
    await node.store.put_tenant(TENANT, "Outbox bench", {})
    return node


class HostApp:
    """The host's database: a tickets table and the outbox beside it."""

    def __init__(self, url: str) -> None:
        self.metadata = MetaData()
        self.tickets = Table(
            "tickets",
            self.metadata,
            Column("id", Integer, primary_key=True),
            Column("title", String(200), nullable=False),
        )
        self.outbox = Outbox(outbox_table(self.metadata))
        self.engine: AsyncEngine = create_async_engine(normalize_url(url))
        if self.engine.dialect.name == "sqlite":
            sa_event.listen(self.engine.sync_engine, "connect", wal)

    async def create(self) -> None:
        async with self.engine.begin() as conn:
            await conn.run_sync(self.metadata.create_all)

    async def commit(self, numbers: Sequence[int]) -> list[str]:
        """One host transaction: each ticket row with its event; the event ids."""
        ids = []
        async with self.engine.begin() as conn:
            for n in numbers:
                await conn.execute(insert(self.tickets).values(id=n, title=f"Ticket {n}"))
                ids.append(await self.outbox.add_async(conn, event(n)))
        return ids


def wal(dbapi_connection: Any, _record: Any) -> None:
    """SQLite: readers never block the host's writers, commits need no fsync each."""
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def chunks(first: int, count: int, size: int) -> Iterator[range]:
    for start in range(first, first + count, size):
        yield range(start, min(start + size, first + count))


async def direct(hub_url: str, count: int) -> float:
    hub = await hub_on(hub_url)
    try:
        started = time.perf_counter()
        for numbers in chunks(0, count, BATCH):
            await hub.publish_many([event(n) for n in numbers])
        return count / (time.perf_counter() - started)
    finally:
        await hub.stop()


async def relayed(host_url: str, hub_url: str, count: int) -> dict[str, Any]:
    host = HostApp(host_url)
    await host.create()
    hub = await hub_on(hub_url)
    try:
        for numbers in chunks(0, count, PER_TRANSACTION):
            await host.commit(numbers)
        relay = OutboxRelay(host.engine, host.outbox, hub, batch_size=BATCH)
        started = time.perf_counter()
        await relay.drain()
        drain_rate = count / (time.perf_counter() - started)
        saturated = await live(host, hub, count, count, 0.0)
        paced = await live(host, hub, 2 * count, min(count, PACED_EVENTS), PACED_RATE)
    finally:
        await hub.stop()
        await host.engine.dispose()
    return {
        "relay_drain_events_per_s": round(drain_rate),
        "live_saturated": saturated,
        f"live_paced_{PACED_RATE:.0f}_per_s": paced,
    }


async def live(host: HostApp, hub: Tidings, first: int, count: int, rate: float) -> dict[str, Any]:
    """The host commits ``count`` events (back to back, or ``rate`` events/s)
    while the relay runs, waking it after each commit."""
    durable: dict[str, float] = {}  # event id -> when the log first held it

    async def stamp(ids: Sequence[str]) -> None:
        now = time.perf_counter()
        for event_id in ids:
            durable.setdefault(event_id, now)

    relay = OutboxRelay(host.engine, host.outbox, hub, batch_size=BATCH, after_publish=stamp)
    committed: dict[str, float] = {}  # event id -> when its transaction committed
    async with relay:
        started = time.perf_counter()
        for i, numbers in enumerate(chunks(first, count, PER_TRANSACTION)):
            if rate:  # the offered load: transaction i is due at i * 10 / rate
                due = started + i * PER_TRANSACTION / rate
                await asyncio.sleep(max(0.0, due - time.perf_counter()))
            ids = await host.commit(numbers)
            committed.update(dict.fromkeys(ids, time.perf_counter()))
            relay.wake()
        commit_rate = count / (max(committed.values()) - started)
        async with asyncio.timeout(300):
            while not committed.keys() <= durable.keys():
                await asyncio.sleep(0.01)
    relay_rate = count / (max(durable[i] for i in committed) - started)
    latencies = [durable[i] - at for i, at in committed.items()]
    return {
        "events": count,
        "host_commits_per_s": round(commit_rate),
        "relayed_per_s": round(relay_rate),
        "republished": relay.stats.duplicates,  # 0 unless a round repeats a settled batch
        "commit_to_durable": latency_summary(latencies),
    }


async def compare(host_url: str, direct_url: str, relay_url: str, count: int) -> dict[str, Any]:
    ceiling = await direct(direct_url, count)
    relay = await relayed(host_url, relay_url, count)
    drain = relay.pop("relay_drain_events_per_s")
    return {
        "direct_events_per_s": round(ceiling),
        "relay_drain_events_per_s": drain,
        "ratio_drain_vs_direct": round(drain / ceiling, 3),
        **relay,
    }


async def measure(quick: bool, pg_urls: Sequence[str] = ()) -> dict[str, Any]:
    """``pg_urls``: three fresh PostgreSQL databases (host, direct, relay), or none."""
    count = 2_000 if quick else 20_000
    result: dict[str, Any] = {"events": count, "batch": BATCH, "per_transaction": PER_TRANSACTION}
    with tempfile.TemporaryDirectory(prefix="tidings-bench-outbox-") as name:
        tmp = Path(name)
        result["sqlite"] = await compare(
            f"sqlite:///{tmp / 'host.db'}",
            f"sqlite:///{tmp / 'direct.db'}",
            f"sqlite:///{tmp / 'relay.db'}",
            count,
        )
    if pg_urls:
        host, direct_db, relay_db = pg_urls
        result["postgresql"] = await compare(host, direct_db, relay_db, count)
    return result


def run(quick: bool, pg: postgres.Postgres | None = None) -> dict[str, Any]:
    """The result as JSON-able data (``tidings bench --scenarios outbox``)."""
    with contextlib.ExitStack() as stack:  # created and dropped outside the event loop
        urls = [stack.enter_context(pg.fresh_database()) for _ in range(3)] if pg else []
        return asyncio.run(measure(quick, urls))


if __name__ == "__main__":
    print(json.dumps(run("--quick" in sys.argv), indent=2))
