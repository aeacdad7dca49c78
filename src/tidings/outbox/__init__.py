"""The transactional outbox: a host application writes its own rows and
the events about them in ONE transaction of its own database; Tidings
relays the committed events to its log exactly once, in order.

    table = outbox_table(metadata)                   # on the host's MetaData
    outbox = Outbox(table)
    async with engine.begin() as conn:               # the host's transaction
        await conn.execute(insert(tickets).values(...))
        event_id = await outbox.add_async(conn, {"type": "ticket.created", ...})
    relay = OutboxRelay(engine, outbox, hub)         # hub: tidings.node.Tidings
    relay.start(); relay.wake(); await relay.stop()

See docs/OUTBOX.md for the guarantees and the recipes.
"""

from tidings.outbox.relay import OutboxRelay, RelayStats
from tidings.outbox.table import DEFAULT_TABLE_NAME, PENDING, REFUSED, outbox_table
from tidings.outbox.writer import Outbox, RefusedRow

__all__ = [
    "DEFAULT_TABLE_NAME",
    "PENDING",
    "REFUSED",
    "Outbox",
    "OutboxRelay",
    "RefusedRow",
    "RelayStats",
    "outbox_table",
]
