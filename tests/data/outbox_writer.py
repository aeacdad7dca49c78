"""A host process for the outbox's kill -9 tests (started by
``tests/outbox/test_outbox_kill.py``, killed with SIGKILL at the moment a
mode names; it prints one line per step, flushed, for the test to wait on).

    python outbox_writer.py MODE HOST_URL HUB_URL TENANT COUNT [BATCH]

Every mode first commits COUNT tickets, each with its ``ticket.created``
event through the outbox in the same transaction (5 per transaction),
printing ``committed <ticket> <event id>`` after each commit. Then:

* ``commit``: opens one more transaction, writes a ticket and its event
  (never committed), prints ``uncommitted``, and waits to be killed. No
  relay ran.
* ``pause``: relays with the hub embedded; after the first batch is
  published and before its rows are deleted, prints ``published <n>`` and
  waits to be killed.
* ``live``: runs the relay loop and keeps committing tickets after the
  first COUNT, waking the relay after each commit, until killed.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from sqlalchemy import insert

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the tests' helpers

from outbox_host import Host, open_host, open_hub, ticket_event
from tidings.outbox import OutboxRelay

PER_TRANSACTION = 5


def say(line: str) -> None:
    print(line, flush=True)


async def commit(host: Host, tenant: str, first: int, count: int) -> None:
    """Tickets ``first .. first+count-1``, 5 per transaction, each with its event."""
    for start in range(first, first + count, PER_TRANSACTION):
        numbers = range(start, min(start + PER_TRANSACTION, first + count))
        written = []
        async with host.engine.begin() as conn:
            for n in numbers:
                await conn.execute(insert(host.tickets).values(id=n, title=f"Ticket {n}"))
                written.append((n, await host.outbox.add_async(conn, ticket_event(tenant, n))))
        for n, event_id in written:
            say(f"committed {n} {event_id}")


async def forever() -> None:
    await asyncio.Event().wait()


async def main(mode: str, host_url: str, hub_url: str, tenant: str, count: int, batch: int) -> None:
    host = await open_host(host_url, create=False)
    await commit(host, tenant, 1, count)
    if mode == "commit":
        async with host.engine.begin() as conn:
            await conn.execute(insert(host.tickets).values(id=10_000, title="Never"))
            await host.outbox.add_async(conn, ticket_event(tenant, 10_000))
            say("uncommitted")
            await forever()
    hub = await open_hub(hub_url)
    if mode == "pause":

        async def hold(published: Sequence[str]) -> None:
            say(f"published {len(published)}")
            await forever()

        relay = OutboxRelay(host.engine, host.outbox, hub, batch_size=batch, after_publish=hold)
        await relay.relay_once()
    elif mode == "live":
        relay = OutboxRelay(host.engine, host.outbox, hub, batch_size=batch, poll_s=0.05)
        relay.start()
        say("relaying")
        n = count + 1
        while True:
            await commit(host, tenant, n, PER_TRANSACTION)
            relay.wake()
            n += PER_TRANSACTION
            await asyncio.sleep(0)
    raise SystemExit(f"unknown mode {mode!r}")


def run(argv: list[str]) -> Any:
    mode, host_url, hub_url, tenant, count = argv[:5]
    batch = int(argv[5]) if len(argv) > 5 else 10
    asyncio.run(main(mode, host_url, hub_url, tenant, int(count), batch))


if __name__ == "__main__":
    run(sys.argv[1:])
