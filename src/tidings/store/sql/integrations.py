"""The inbound integrations role in SQL."""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

import orjson
from sqlalchemy import insert, select

from tidings.store.schema import inbound_log, integrations
from tidings.store.sql.common import SQLRole, dumps, upsert


class SQLIntegrations(SQLRole):
    async def put_integration(
        self, name: str, secret: str, scheme: str, mappings: Mapping[str, Any]
    ) -> None:
        values = {
            "secret": secret,
            "scheme": scheme,
            "mappings": dumps(dict(mappings)),
            "updated_at": time.time(),
        }
        async with self.backend.write() as conn:
            await upsert(conn, integrations, {"name": name}, values)

    async def get_integration(self, name: str) -> dict[str, Any] | None:
        async with self.backend.read() as conn:
            row = (
                await conn.execute(select(integrations).where(integrations.c.name == name))
            ).first()
        if row is None:
            return None
        return {
            "name": row.name,
            "secret": row.secret,
            "scheme": row.scheme,
            "mappings": orjson.loads(row.mappings),
        }

    async def list_integrations(self, limit: int = 500) -> list[dict[str, Any]]:
        """Integrations by name, without their secrets."""
        stmt = (
            select(
                integrations.c.name,
                integrations.c.scheme,
                integrations.c.mappings,
                integrations.c.updated_at,
            )
            .order_by(integrations.c.name)
            .limit(limit)
        )
        async with self.backend.read() as conn:
            rows = (await conn.execute(stmt)).all()
        return [
            {
                "name": r.name,
                "scheme": r.scheme,
                "mappings": orjson.loads(r.mappings),
                "updated_at": r.updated_at,
            }
            for r in rows
        ]

    async def record_inbound(
        self,
        integration: str,
        webhook_id: str | None,
        *,
        accepted: bool,
        outcome: str,
        external_type: str | None = None,
        tenant_id: str | None = None,
    ) -> None:
        async with self.backend.write() as conn:
            await conn.execute(
                insert(inbound_log).values(
                    integration=integration,
                    webhook_id=webhook_id,
                    accepted=accepted,
                    outcome=outcome,
                    external_type=external_type,
                    tenant_id=tenant_id,
                    created_at=time.time(),
                )
            )

    async def inbound_seen(self, integration: str, webhook_id: str) -> bool:
        """Was this webhook id already accepted (a replay)?"""
        stmt = select(inbound_log.c.id).where(
            inbound_log.c.integration == integration,
            inbound_log.c.webhook_id == webhook_id,
            inbound_log.c.accepted.is_(True),
        )
        async with self.backend.read() as conn:
            return (await conn.execute(stmt.limit(1))).first() is not None

    async def inbound_history(self, integration: str, limit: int = 100) -> list[dict[str, Any]]:
        stmt = (
            select(inbound_log)
            .where(inbound_log.c.integration == integration)
            .order_by(inbound_log.c.id.desc())
            .limit(limit)
        )
        async with self.backend.read() as conn:
            rows = (await conn.execute(stmt)).all()
        return [dict(r._mapping) for r in rows]
