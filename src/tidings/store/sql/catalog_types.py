"""The catalog types role in SQL: tenant-defined event types."""

from __future__ import annotations

from typing import Any

import orjson
from sqlalchemy import select

from tidings.store.records import CatalogTypeRecord
from tidings.store.schema import catalog_types
from tidings.store.sql.common import SQLRole, dumps, upsert


class SQLCatalogTypes(SQLRole):
    async def put_catalog_type(self, record: CatalogTypeRecord) -> None:
        """Create or replace a tenant's type (its whole entry)."""
        values = {
            "spec": dumps(dict(record.spec)),
            "active": record.active,
            "updated_at": record.updated_at,
        }
        key = {"tenant_id": record.tenant_id, "name": record.name}
        async with self.backend.write() as conn:
            await upsert(conn, catalog_types, key, values, created_at=record.created_at)

    async def get_catalog_type(self, tenant_id: str, name: str) -> CatalogTypeRecord | None:
        async with self.backend.read() as conn:
            row = (
                await conn.execute(
                    select(catalog_types).where(
                        catalog_types.c.tenant_id == tenant_id, catalog_types.c.name == name
                    )
                )
            ).first()
        return None if row is None else _catalog_type(row)

    async def list_catalog_types(self, tenant_id: str | None = None) -> list[CatalogTypeRecord]:
        """One tenant's types, or every tenant's (None), by tenant and name."""
        stmt = select(catalog_types).order_by(catalog_types.c.tenant_id, catalog_types.c.name)
        if tenant_id is not None:
            stmt = stmt.where(catalog_types.c.tenant_id == tenant_id)
        async with self.backend.read() as conn:
            rows = (await conn.execute(stmt)).all()
        return [_catalog_type(r) for r in rows]


def _catalog_type(row: Any) -> CatalogTypeRecord:
    return CatalogTypeRecord(
        tenant_id=row.tenant_id,
        name=row.name,
        spec=orjson.loads(row.spec),
        active=bool(row.active),
        created_at=row.created_at,
        updated_at=row.updated_at,
    )
