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

import importlib
import logging
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import MetaData
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

log = logging.getLogger("tidings.portal")


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
    """The outbox on the portal's MetaData and its relay into the node."""

    def __init__(self, metadata: MetaData) -> None:
        # tidings.outbox lands from branch p15-outbox; until it is merged the
        # portal runs without relaying (a warning says so at start).
        try:
            module: Any = importlib.import_module("tidings.outbox")
        except ImportError:
            module = None
        self._module = module
        self.outbox: Any = None
        if module is not None:
            self.outbox = module.Outbox(module.outbox_table(metadata))
        self.relay: Any = None

    async def add(self, conn: AsyncConnection, new_event: dict[str, Any]) -> None:
        """Add ``new_event`` in the caller's transaction."""
        if self.outbox is not None:
            await self.outbox.add_async(conn, new_event)

    def start(self, engine: AsyncEngine, node: Any) -> None:
        if self._module is None:
            log.warning("tidings.outbox is not available: portal events are not relayed")
            return
        self.relay = self._module.OutboxRelay(engine, self.outbox, node)
        self.relay.start()

    def committed(self) -> None:
        """Call after each commit that added events: the relay runs now."""
        if self.relay is not None:
            self.relay.wake()

    async def stop(self) -> None:
        if self.relay is not None:
            await self.relay.stop()
