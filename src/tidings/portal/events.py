"""The portal's domain events, written through the transactional outbox.

Every use case builds its event here and adds it with
:meth:`PortalEvents.add` on the connection of its own transaction, so the
row and its event commit together (or neither does); the outbox relay then
appends committed events to the hub's log, exactly once and in order.

The event shapes follow the catalog pack ``seed-004-portal`` (its
audiences decide who sees what: ``permission:tickets.read`` for the
organisation's staff, ``user:{renterId}``/``resource:{propertyId}`` for the
renter, ``permission:billing.read`` for invoices). No PII (seed 004).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import MetaData
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from tidings.node import Tidings
from tidings.outbox import Outbox, OutboxRelay, outbox_table


def now_iso() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def event(
    type_: str,
    tenant_id: str,
    *,
    entity_type: str,
    entity_id: str,
    actor_id: str,
    data: Mapping[str, Any],
) -> dict[str, Any]:
    """A Tidings event envelope (``None`` members of ``data`` dropped: the
    pack's optional fields are absent rather than null)."""
    return {
        "type": type_,
        "tenantId": tenant_id,
        "entityType": entity_type,
        "entityId": entity_id,
        "actor": {"userId": actor_id},
        "data": {k: v for k, v in data.items() if v is not None},
    }


class PortalEvents:
    """The outbox on the portal's MetaData and its relay into the node.

    The outbox checks each event against the hub's catalog when it is
    added, so a malformed event fails the use case's transaction instead
    of being refused later by the relay."""

    def __init__(self, metadata: MetaData, node: Tidings) -> None:
        self.node = node
        self.outbox = Outbox(outbox_table(metadata), hub=node)
        self.relay: OutboxRelay | None = None

    async def add(self, conn: AsyncConnection, new_event: dict[str, Any]) -> str:
        """Add ``new_event`` in the caller's transaction; its event id."""
        return await self.outbox.add_async(conn, new_event)

    def start(self, engine: AsyncEngine) -> None:
        """Relay committed events (call after the node started)."""
        self.relay = OutboxRelay(engine, self.outbox, self.node)
        self.relay.start()

    def committed(self) -> None:
        """Call after each commit that added events: the relay runs now
        (it also polls, so a missed wake only delays)."""
        if self.relay is not None:
            self.relay.wake()

    async def stop(self) -> None:
        if self.relay is not None:
            await self.relay.stop()
